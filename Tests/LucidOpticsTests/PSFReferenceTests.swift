import Foundation
import LucidCore
@testable import LucidOptics
import XCTest

/// Born–Wolf and Gibson–Lanni against the independent reference integration (`ReferencePSF`):
/// normalized cross-correlation of the whole stack, FWHM through the peak laterally and axially,
/// and the peak's plane.
final class PSFReferenceTests: XCTestCase {
    /// Compares one configuration; `zs` are the reference's focal positions of Lucid's planes.
    func assertAgrees(_ config: PSFConfig, _ optics: ReferencePSF.Optics, label: String,
                      file: StaticString = #filePath, line: UInt = #line) throws {
        let nz = config.nz!
        let offsets = (0..<nz).map { Double($0 - nz / 2) * config.dz }
        let zs = optics.gibsonLanni ? offsets.map { $0 + optics.pz } : offsets
        let lucid = try config.generate()
        let reference = ReferencePSF.stack(optics, zs: zs, dxy: config.dxy, nxy: config.nxy, oversample: config.oversample)
        let ncc = normalizedCrossCorrelation(lucid.scalars.map(Double.init), reference)
        let ml = try PSFMeasurement.measure(lucid)
        let mr = try PSFMeasurement.measure(try Tensor(shape: lucid.shape, scalars: reference.map(Float.init)))
        let lateral = ml.fwhm[2] / mr.fwhm[2] - 1, axial = ml.fwhm[0] / mr.fwhm[0] - 1
        print(String(format: "%@: NCC %.6f, lateral FWHM %.4f vs %.4f µm (%+.2f%%), axial %.4f vs %.4f µm (%+.2f%%), peak plane %.2f vs %.2f",
                     label, ncc, ml.fwhm[2] * config.dxy, mr.fwhm[2] * config.dxy, 100 * lateral,
                     ml.fwhm[0] * config.dz, mr.fwhm[0] * config.dz, 100 * axial, ml.center[0], mr.center[0]))
        XCTAssertGreaterThanOrEqual(ncc, 0.999, label, file: file, line: line)
        XCTAssertLessThan(abs(lateral), 0.03, label, file: file, line: line)
        XCTAssertLessThan(abs(ml.fwhm[1] / mr.fwhm[1] - 1), 0.03, label, file: file, line: line)
        XCTAssertLessThan(abs(axial), 0.05, label, file: file, line: line)
        XCTAssertEqual(ml.center[0], mr.center[0], accuracy: 0.25, label, file: file, line: line)
    }

    func testBornWolfMatchesDirectIntegrationOilAndWater() throws {
        try assertAgrees(PSFConfig(model: .bornWolf, na: 1.4, wavelength: 0.52, ni: 1.518, dxy: 0.05, dz: 0.1, nxy: 33, nz: 31),
                         ReferencePSF.Optics(na: 1.4, wavelength: 0.52, ni: 1.518), label: "Born–Wolf oil NA 1.4")
        try assertAgrees(PSFConfig(model: .bornWolf, na: 1.2, wavelength: 0.6, ni: 1.33, dxy: 0.06, dz: 0.15, nxy: 33, nz: 31, oversample: 2),
                         ReferencePSF.Optics(na: 1.2, wavelength: 0.6, ni: 1.33), label: "Born–Wolf water NA 1.2")
    }

    func testGibsonLanniWithoutMismatchMatchesDirectIntegration() throws {
        let config = PSFConfig(model: .gibsonLanni, na: 1.4, wavelength: 0.52, ni: 1.518, ns: 1.518, pz: 3,
                               dxy: 0.05, dz: 0.1, nxy: 33, nz: 31)
        var optics = ReferencePSF.Optics(na: 1.4, wavelength: 0.52, ni: 1.518, ns: 1.518, pz: 3)
        optics.gibsonLanni = true
        try assertAgrees(config, optics, label: "Gibson–Lanni matched, pz 3")
        // Matched optics: the source depth changes nothing, the peak is on the centre plane.
        XCTAssertEqual(try PSFMeasurement.measure(try config.generate()).center[0], 15, accuracy: 0.01)
    }

    func testGibsonLanniWithIndexMismatchMatchesDirectIntegration() throws {
        // Oil objective into water 2 µm deep: NA above ns, so the outer pupil is evanescent.
        var optics = ReferencePSF.Optics(na: 1.4, wavelength: 0.52, ni: 1.518, ns: 1.33, pz: 2)
        optics.gibsonLanni = true
        try assertAgrees(PSFConfig(model: .gibsonLanni, na: 1.4, wavelength: 0.52, ni: 1.518, ns: 1.33, pz: 2,
                                   dxy: 0.05, dz: 0.1, nxy: 33, nz: 41),
                         optics, label: "Gibson–Lanni ns 1.33, pz 2")
        // Wrong immersion oil, thinner coverslip, glycerol-like sample 5 µm deep.
        optics = ReferencePSF.Optics(na: 1.3, wavelength: 0.6, ni: 1.512, ni0: 1.518, ns: 1.45, ng: 1.52, tg: 160, tg0: 170,
                                     ti0: 150, pz: 5, gibsonLanni: true)
        try assertAgrees(PSFConfig(model: .gibsonLanni, na: 1.3, wavelength: 0.6, ni: 1.512, ni0: 1.518, ns: 1.45, ng: 1.52,
                                   ti0: 150, tg: 160, tg0: 170, pz: 5, dxy: 0.06, dz: 0.15, nxy: 33, nz: 41, oversample: 2),
                         optics, label: "Gibson–Lanni ni 1.512/1.518, tg 160/170, ns 1.45, pz 5")
    }

    /// In focus, the Born–Wolf PSF is the Airy pattern (a uniformly filled pupil).
    func testBornWolfFocalPlaneIsTheAiryPattern() throws {
        let bw = try PSFConfig(model: .bornWolf, na: 1.4, wavelength: 0.52, ni: 1.518, dxy: 0.04, nxy: 41).generate()
        let airy = try PSFConfig(model: .airy, na: 1.4, wavelength: 0.52, dxy: 0.04, nxy: 41).generate()
        XCTAssertGreaterThan(normalizedCrossCorrelation(bw.scalars.map(Double.init), airy.scalars.map(Double.init)), 0.99999)
    }
}
