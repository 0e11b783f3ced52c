import Foundation
import LucidCore
@testable import LucidOptics
import LucidTestSupport
import XCTest

/// Lucid's Born–Wolf and Gibson–Lanni PSFs against psfmodels' `scalar` model (Aguet's
/// implementation of Gibson & Lanni), with the same parameters; skipped, saying why, when
/// `python3 -c "import numpy, psfmodels"` fails (`pip install psfmodels`).
final class PSFInteropTests: XCTestCase {
    /// psfmodels' `make_psf(nz, nxy, …, model="scalar")` as `[nz][nxy][nxy]` doubles.
    func psfmodels(nz: Int, nxy: Int, dxy: Double, dz: Double, na: Double, wavelength: Double, ni: Double,
                   ns: Double, pz: Double) throws -> [Double] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("lucid-psfmodels-\(getpid()).f64")
        defer { try? FileManager.default.removeItem(at: file) }
        try requirePython("numpy, psfmodels")
        let script = """
            import psfmodels
            p = psfmodels.make_psf(\(nz), \(nxy), dxy=\(dxy), dz=\(dz), pz=\(pz), NA=\(na), wvl=\(wavelength),
                                   ns=\(ns), ni=\(ni), ni0=\(ni), model="scalar")
            p.astype("<f8").tofile("\(file.path)")
            """
        try python(script)
        let data = try Data(contentsOf: file)
        return data.withUnsafeBytes { raw in (0..<(data.count / 8)).map { Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self))) } }
    }

    /// The psfmodels-style parameters: NA 1.4, λ 0.52 µm, oil (1.518) into water (1.33)
    /// 2 µm deep, 65² × 41 at 0.05 / 0.1 µm; and the same objective without mismatch.
    func testGibsonLanniAndBornWolfMatchPsfmodels() throws {
        let cases: [(String, PSFModel, Double, Double, Int, Int)] = [
            ("Gibson–Lanni ns 1.33, pz 2", .gibsonLanni, 1.33, 2, 65, 41),
            ("Born–Wolf (psfmodels matched)", .bornWolf, 1.518, 0, 33, 31),
        ]
        for (label, model, ns, pz, nxy, nz) in cases {
            let reference = try psfmodels(nz: nz, nxy: nxy, dxy: 0.05, dz: 0.1, na: 1.4, wavelength: 0.52, ni: 1.518, ns: ns, pz: pz)
            let lucid = try PSFConfig(model: model, na: 1.4, wavelength: 0.52, ni: 1.518, ns: ns, pz: pz,
                                      dxy: 0.05, dz: 0.1, nxy: nxy, nz: nz).generate()
            XCTAssertEqual(reference.count, lucid.count)
            let ncc = normalizedCrossCorrelation(lucid.scalars.map(Double.init), reference)
            let ml = try PSFMeasurement.measure(lucid)
            let mr = try PSFMeasurement.measure(try Tensor(shape: lucid.shape, scalars: reference.map(Float.init)))
            print(String(format: "%@ vs psfmodels: NCC %.6f, lateral FWHM %.4f vs %.4f µm, axial %.4f vs %.4f µm, peak plane %.2f vs %.2f",
                         label, ncc, ml.fwhm[2] * 0.05, mr.fwhm[2] * 0.05, ml.fwhm[0] * 0.1, mr.fwhm[0] * 0.1, ml.center[0], mr.center[0]))
            XCTAssertGreaterThanOrEqual(ncc, 0.99, label)
            XCTAssertLessThan(abs(ml.fwhm[2] / mr.fwhm[2] - 1), 0.03, label)
            XCTAssertLessThan(abs(ml.fwhm[0] / mr.fwhm[0] - 1), 0.05, label)
            XCTAssertEqual(ml.center[0], mr.center[0], accuracy: 0.25, label)
        }
    }
}
