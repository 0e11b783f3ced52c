import Foundation
import LucidTestSupport
import XCTest

/// End-to-end runs of the built `lucid` binary (next to the test bundle in the build folder).
final class CommandLineTests: XCTestCase {
    /// Runs `lucid args` in `dir`; stdout and stderr together.
    @discardableResult
    func lucid(_ args: [String], in dir: URL) throws -> (status: Int32, output: String) {
        let r = try runLucid(args, in: dir)
        return (r.status, r.out + r.err)
    }

    func testSimulateBrightfieldWritesPairsAndManifest() throws {
        guard lucidBinary != nil else { throw XCTSkip("the lucid binary is not built next to the tests") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lucid-brightfield-cli-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var r = try lucid(["simulate", "brightfield", "--output", "ds", "--count", "5", "--shape", "8,32,32", "--seed", "2"], in: dir)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("wrote 5 pairs [8, 32, 32] to ds (pairs.csv: 4 train, 1 test)"), r.output)
        let csv = try String(contentsOf: dir.appendingPathComponent("ds/pairs.csv"), encoding: .utf8)
        XCTAssertTrue(csv.hasPrefix("signal,target,split\nsignal/000.tif,target/000.tif,train\n"), csv)
        XCTAssertTrue(csv.hasSuffix("signal/004.tif,target/004.tif,test\n"), csv)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("ds/target/004.tif").path))
        r = try lucid(["simulate", "brightfield", "--output", "bad", "--shape", "64"], in: dir)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("--shape 64 must be Y,X or Z,Y,X"), r.output)
    }

    func testPSFSimulateDeconvolveMeasure() throws {
        guard lucidBinary != nil else { throw XCTSkip("the lucid binary is not built next to the tests") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lucid-optics-cli-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        var r = try lucid(["psf", "born-wolf", "--na", "1.4", "--wavelength", "0.52", "--ni", "1.518", "--dxy", "0.05",
                           "--dz", "0.1", "--nxy", "33", "--nz", "21", "-o", "psf.tif"], in: dir)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("born-wolf PSF [21, 33, 33]"), r.output)
        r = try lucid(["psf", "measure", "psf.tif"], in: dir)
        XCTAssertEqual(r.status, 0, r.output)
        // Lateral FWHM of this model at NA 1.4: ≈ 0.18 µm (0.51 λ/NA = 0.19 µm, narrower at high NA).
        let x = r.output.components(separatedBy: "FWHM x ").dropFirst().first.flatMap { Double($0.prefix(6)) }
        XCTAssertEqual(x ?? 0, 0.18, accuracy: 0.015, r.output)
        r = try lucid(["simulate", "psf.tif", "--psf", "psf.tif", "--photons", "50", "--read-noise", "1", "-o", "sim.tif"], in: dir)
        XCTAssertEqual(r.status, 0, r.output)
        r = try lucid(["deconvolve", "sim.tif", "--psf", "psf.tif", "--iterations", "5", "--tv", "0.001", "-o", "dec.tif"], in: dir)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("Richardson–Lucy: 5 iterations"), r.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("dec.tif").path))
        for model in [["airy"], ["gaussian", "--nz", "9"], ["gibson-lanni", "--ns", "1.33", "--pz", "5", "--nz", "9"],
                      ["confocal", "--pinhole", "1", "--nz", "9"]] {
            r = try lucid(["psf"] + model + ["--nxy", "17", "-o", "m.tif"], in: dir)
            XCTAssertEqual(r.status, 0, "\(model): \(r.output)")
        }
        r = try lucid(["psf", "born-wolf", "--na", "1.6", "-o", "bad.tif"], in: dir)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("na 1.6 must be below the immersion index ni 1.518"), r.output)
    }
}
