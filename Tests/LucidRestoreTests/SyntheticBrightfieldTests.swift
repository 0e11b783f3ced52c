import XCTest
import LucidCore
import LucidImaging
import LucidOptics
@testable import LucidRestore

final class SyntheticBrightfieldTests: XCTestCase {
    /// Standard deviation over mean.
    private func contrast(_ t: Tensor) -> Double {
        let v = t.scalars.map(Double.init)
        let mean = v.reduce(0, +) / Double(v.count)
        return (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count)).squareRoot() / mean
    }

    private func pearson(_ a: Tensor, _ b: Tensor) -> Double {
        let x = a.scalars.map(Double.init), y = b.scalars.map(Double.init)
        let mx = x.reduce(0, +) / Double(x.count), my = y.reduce(0, +) / Double(y.count)
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in x.indices { sxy += (x[i] - mx) * (y[i] - my); sxx += (x[i] - mx) * (x[i] - mx); syy += (y[i] - my) * (y[i] - my) }
        return sxy / (sxx * syy).squareRoot()
    }

    func testSameSeedSamePairAndShapes() throws {
        let a = try SyntheticBrightfield(shape: [64, 80], seed: 5).render()
        let b = try SyntheticBrightfield(shape: [64, 80], seed: 5).render()
        let c = try SyntheticBrightfield(shape: [64, 80], seed: 6).render()
        XCTAssertEqual(a.signal.scalars, b.signal.scalars)
        XCTAssertEqual(a.target.scalars, b.target.scalars)
        XCTAssertNotEqual(a.signal.scalars, c.signal.scalars)
        XCTAssertEqual(a.signal.shape, [64, 80])
        XCTAssertEqual(a.target.shape, [64, 80])
        let volume = try SyntheticBrightfield(shape: [12, 40, 48], seed: 1).render()
        XCTAssertEqual(volume.signal.shape, [12, 40, 48])
        XCTAssertEqual(volume.target.shape, [12, 40, 48])
        XCTAssertEqual(volume.expected.shape, [12, 40, 48])
    }

    /// A transparent specimen is (nearly) invisible in focus; defocus turns its phase into
    /// intensity contrast that grows with the distance.
    func testPhaseSpecimenAppearsWithDefocus() throws {
        var contrasts: [Double] = []
        for d in [0.0, 1, 2, 4] {
            var g = SyntheticBrightfield(shape: [128, 128], seed: 2)
            g.absorption = 0; g.shading = 0; g.defocus = d
            contrasts.append(contrast(try g.render().expected))
        }
        XCTAssertLessThan(contrasts[0], 0.25 * contrasts[2], "\(contrasts)")
        XCTAssertLessThan(contrasts[0], 0.01, "\(contrasts)")
        for i in 1..<contrasts.count { XCTAssertGreaterThan(contrasts[i], contrasts[i - 1], "\(contrasts)") }
    }

    /// Absorption darkens the nuclei (where the target is bright), not the empty background.
    func testAbsorptionDarkensWhereTheTargetIs() throws {
        var g = SyntheticBrightfield(shape: [128, 128], seed: 1)
        g.defocus = 0; g.shading = 0; g.absorption = 0
        let clear = try g.render()
        g.absorption = 0.05
        let dark = try g.render()
        var inside: [Double] = [], outside: [Double] = []
        for i in 0..<clear.target.count {
            let ratio = Double(dark.expected.scalars[i] / clear.expected.scalars[i])
            if clear.target.scalars[i] > 0.5 { inside.append(ratio) } else if clear.target.scalars[i] < 0.01 { outside.append(ratio) }
        }
        XCTAssertFalse(inside.isEmpty)
        XCTAssertLessThan(inside.reduce(0, +) / Double(inside.count), 0.85)
        XCTAssertGreaterThan(outside.reduce(0, +) / Double(outside.count), 0.98)
    }

    /// The illumination varies across the field by the configured peak-to-peak amount.
    func testShadingVariesTheFieldByTheConfiguredAmount() throws {
        var blank = SyntheticBrightfield(shape: [64, 96], seed: 3)
        blank.indexContrast = 0; blank.absorption = 0; blank.shading = 0.3
        let e = try blank.render().expected.scalars.map(Double.init)
        let mean = e.reduce(0, +) / Double(e.count)
        XCTAssertEqual((e.max()! - e.min()!) / mean, 0.3, accuracy: 0.005)
        XCTAssertEqual(mean, blank.photons, accuracy: 1e-3 * blank.photons)

        // With cells and noise: 4×4 block means of the signal spread by far more with shading.
        func blockRange(_ shading: Double) throws -> Double {
            var g = SyntheticBrightfield(shape: [128, 128], seed: 3)
            g.shading = shading
            let v = try g.render().signal.scalars
            var means: [Double] = []
            for by in 0..<4 { for bx in 0..<4 {
                var acc = 0.0
                for y in 0..<32 { for x in 0..<32 { acc += Double(v[(by * 32 + y) * 128 + bx * 32 + x]) } }
                means.append(acc / 1024)
            }}
            return (means.max()! - means.min()!) / (means.reduce(0, +) / 16)
        }
        let shaded = try blockRange(0.3), flat = try blockRange(0)
        XCTAssertGreaterThan(shaded, 0.15)
        XCTAssertLessThan(shaded, 0.35)
        XCTAssertLessThan(flat, 0.3 * shaded)
    }

    /// Signal − expected has Poisson variance (the expected electrons) plus the read noise².
    func testNoiseIsPoissonAtTheConfiguredPhotons() throws {
        var g = SyntheticBrightfield(shape: [128, 128], seed: 4)
        g.photons = 500; g.readNoise = 3
        let pair = try g.render()
        var ratio = 0.0, mean = 0.0
        for i in 0..<pair.signal.count {
            let e = Double(pair.expected.scalars[i]), d = Double(pair.signal.scalars[i]) - e
            ratio += d * d / (e + 9)
            mean += e
        }
        XCTAssertEqual(ratio / Double(pair.signal.count), 1, accuracy: 0.05)
        XCTAssertEqual(mean / Double(pair.signal.count), 500, accuracy: 25)
    }

    /// The target is the specimen's nuclei, blurred, in [0, 1].
    func testTargetIsTheBlurredNuclei() throws {
        let g = SyntheticBrightfield(shape: [10, 48, 48], seed: 6)
        let target = try g.render().target
        XCTAssertEqual(target.scalars.max()!, 1, accuracy: 1e-6)
        XCTAssertGreaterThanOrEqual(target.scalars.min()!, 0)
        XCTAssertGreaterThan(pearson(target, try g.specimen.structures().nuclei), 0.9)
        let other = try SyntheticSpecimen(shape: [10, 48, 48], seed: 7).structures().nuclei
        XCTAssertLessThan(pearson(target, other), 0.5)
    }

    func testBadParametersAreRefusedByName() {
        func check(_ change: (inout SyntheticBrightfield) -> Void, _ word: String) {
            var g = SyntheticBrightfield(shape: [32, 32], seed: 0)
            change(&g)
            XCTAssertThrowsError(try g.render()) { XCTAssertTrue("\($0)".contains(word), "\($0)") }
        }
        check({ $0.specimen.shape = [4, 32] }, "shape")
        check({ $0.photons = 0 }, "photons")
        check({ $0.shading = 1 }, "shading")
        check({ $0.readNoise = -1 }, "read noise")
        check({ $0.zStep = 0 }, "z step")
        check({ $0.optics.condenserNA = 0.8 }, "condenser NA")
        check({ $0.optics.objectiveNA = 1.4 }, "objective NA")
        check({ $0.absorption = -0.1 }, "absorption")
        XCTAssertThrowsError(try SyntheticBrightfield(shape: [32, 32]).writeDataset(to: "/nonexistent-lucid", count: 0)) {
            XCTAssertTrue("\($0)".contains("count 0"), "\($0)")
        }
    }

    func testWritesADatasetWithAPairsManifest() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lucid-brightfield-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let split = try SyntheticBrightfield(shape: [32, 40], seed: 9).writeDataset(to: dir.path, count: 6)
        XCTAssertEqual(split.train, 5)
        XCTAssertEqual(split.test, 1)
        let csv = try String(contentsOf: dir.appendingPathComponent("pairs.csv"), encoding: .utf8)
        let rows = csv.split(separator: "\n").map(String.init)
        XCTAssertEqual(rows.first, "signal,target,split")
        XCTAssertEqual(rows[1], "signal/000.tif,target/000.tif,train")
        XCTAssertEqual(rows.last, "signal/005.tif,target/005.tif,test")
        let signal = try Image.read(dir.appendingPathComponent("signal/002.tif").path)
        let target = try Image.read(dir.appendingPathComponent("target/002.tif").path)
        XCTAssertEqual(signal.data.shape, [32, 40])
        XCTAssertEqual(signal.pixelSize ?? 0, 0.25, accuracy: 1e-6)
        // Pair i has seed + i.
        XCTAssertEqual(target.data.scalars, try SyntheticBrightfield(shape: [32, 40], seed: 11).render().target.scalars)
    }
}
