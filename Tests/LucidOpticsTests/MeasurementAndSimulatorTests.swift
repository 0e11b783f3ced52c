import XCTest
import LucidCore
@testable import LucidOptics

/// A point-sampled Gaussian spot of height `amplitude` at a sub-pixel `center` added into `t`.
func addSpot(_ t: inout Tensor, center: [Double], sigma: [Double], amplitude: Float) {
    let s = FFTGrid.promote(t.shape)
    let c = [Double](repeating: 0, count: 3 - center.count) + center
    let sg = [Double](repeating: 1, count: 3 - sigma.count) + sigma
    t.withUnsafeMutableBufferPointer { p in
        for z in 0..<s[0] { for y in 0..<s[1] { for x in 0..<s[2] {
            let q = pow((Double(z) - c[0]) / sg[0], 2) + pow((Double(y) - c[1]) / sg[1], 2) + pow((Double(x) - c[2]) / sg[2], 2)
            p[(z * s[1] + y) * s[2] + x] += amplitude * Float(exp(-0.5 * q))
        }}}
    }
}

final class MeasurementTests: XCTestCase {
    func testFWHMOfAnOffCentreGaussianWithBackground() throws {
        var t = Tensor(shape: [21, 25, 27], repeating: 10)
        let sigma = [2.5, 1.6, 1.9]
        addSpot(&t, center: [10.3, 12.4, 12.8], sigma: sigma, amplitude: 500)
        let m = try PSFMeasurement.measure(t)
        let f = 2 * (2 * log(2.0)).squareRoot()
        for a in 0..<3 {
            XCTAssertEqual(m.fwhm[a], f * sigma[a], accuracy: 0.01 * f * sigma[a], "axis \(a)")
        }
        XCTAssertEqual(m.center[0], 10.3, accuracy: 0.02)
        XCTAssertEqual(m.center[1], 12.4, accuracy: 0.02)
        XCTAssertEqual(m.center[2], 12.8, accuracy: 0.02)
        XCTAssertEqual(m.peak, 500, accuracy: 5)
    }

    func testAveragingBeadsRecoversThePSF() throws {
        var stack = Tensor(shape: [24, 64, 64], repeating: 5)
        let sigma = [2.0, 1.3, 1.3]
        var rng = RandomGenerator(seed: 11)
        let centers: [[Double]] = [[11.2, 12.3, 13.7], [12.6, 40.1, 15.4], [11.9, 20.8, 45.5], [12.4, 47.6, 48.2]]
        for c in centers { addSpot(&stack, center: c, sigma: sigma, amplitude: 200 + 100 * rng.uniform()) }
        let (psf, beads) = try PSFMeasurement.averageBeads(stack, box: [15, 15, 15])
        XCTAssertEqual(beads.count, 4)
        XCTAssertEqual(psf.shape, [15, 15, 15])
        XCTAssertEqual(psf.scalars.reduce(0.0) { $0 + Double($1) }, 1, accuracy: 1e-4)
        let m = try PSFMeasurement.measure(psf)
        let f = 2 * (2 * log(2.0)).squareRoot()
        for a in 0..<3 {
            // Linear re-centring widens the average slightly.
            XCTAssertEqual(m.fwhm[a] / (f * sigma[a]), 1, accuracy: 0.08, "axis \(a)")
            XCTAssertEqual(m.center[a], 7, accuracy: 0.15)
        }
        for c in centers {
            XCTAssertTrue(beads.contains { b in zip(b.center, c).allSatisfy { abs($0 - $1) < 0.05 } }, "bead at \(c) found")
        }
        XCTAssertThrowsError(try PSFMeasurement.averageBeads(stack, box: [14, 15, 15])) { e in
            XCTAssertEqual("\(e)", "PSFMeasurement.averageBeads: invalid argument: box [14, 15, 15] must be odd, ≥ 3 and fit in stack [24, 64, 64] per axis")
        }
    }
}

final class SimulatorTests: XCTestCase {
    func testNoiseFollowsThePoissonGaussianMeanVarianceLine() throws {
        // Five flat regions at known fractions of the peak.
        let levels: [Float] = [0.1, 0.25, 0.5, 0.75, 1.0]
        let per = 40_000
        var clean = Tensor(uninitialized: [levels.count * 200, 200])
        clean.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] = levels[i / per] } }
        let (gain, offset, read, photons) = (2.0, 100.0, 3.0, 80.0)
        let sim = try DegradationSimulator(config: SimulationConfig(photons: photons, readNoise: read, gain: gain, offset: offset, bits: nil))
        var rng = RandomGenerator(seed: 5)
        let noisy = try sim.degrade(clean, rng: &rng).scalars
        var means: [Double] = [], variances: [Double] = []
        for r in 0..<levels.count {
            let v = noisy[(r * per)..<((r + 1) * per)].map(Double.init)
            let m = v.reduce(0, +) / Double(per)
            means.append(m)
            variances.append(v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(per - 1))
            XCTAssertEqual(m, gain * photons * Double(levels[r]) + offset, accuracy: 0.01 * m)
        }
        // Least-squares line var = slope·mean + intercept.
        let mm = means.reduce(0, +) / 5, mv = variances.reduce(0, +) / 5
        let slope = zip(means, variances).reduce(0) { $0 + ($1.0 - mm) * ($1.1 - mv) } / means.reduce(0) { $0 + ($1 - mm) * ($1 - mm) }
        let intercept = mv - slope * mm
        XCTAssertEqual(slope, gain, accuracy: 0.04 * gain)
        let expectedIntercept = gain * gain * read * read - gain * offset
        XCTAssertEqual(intercept, expectedIntercept, accuracy: 6, "intercept \(intercept) vs \(expectedIntercept)")
    }

    func testPoissonSamplerMoments() {
        var rng = RandomGenerator(seed: 9)
        for lambda in [0.5, 4.0, 15.0, 300.0] {
            let n = 60_000
            let xs = (0..<n).map { _ in Double(DegradationSimulator.poisson(lambda, &rng)) }
            let m = xs.reduce(0, +) / Double(n)
            let v = xs.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(n - 1)
            XCTAssertEqual(m, lambda, accuracy: 5 * (lambda / Double(n)).squareRoot())
            XCTAssertEqual(v / lambda, 1, accuracy: 0.04, "λ = \(lambda)")
        }
    }

    func testBlurDownsampleAndQuantize() throws {
        var clean = Tensor(shape: [9, 32, 32], repeating: 0.1)
        addSpot(&clean, center: [4, 16, 16], sigma: [1, 1, 1], amplitude: 1)
        let json = #"{"psf": {"model": "gaussian", "dxy": 0.1, "dz": 0.2, "nxy": 9, "nz": 5, "sigma_xy": 0.15, "sigma_z": 0.3}, "photons": 50, "read_noise": 1.5, "gain": 1, "offset": 10, "downsample": {"z": 2, "xy": 2}, "bits": 8}"#
        let config = try JSONDecoder().decode(SimulationConfig.self, from: Data(json.utf8))
        XCTAssertEqual(config.downsample, Downsample(z: 2, xy: 2))
        XCTAssertEqual(config.readNoise, 1.5)
        let sim = try DegradationSimulator(config: config)
        XCTAssertEqual(sim.psf?.shape, [5, 9, 9])
        var rng = RandomGenerator(seed: 1)
        let (input, target) = try sim.pair(clean, rng: &rng)
        XCTAssertEqual(input.shape, [5, 16, 16])
        XCTAssertEqual(target.shape, clean.shape)
        for v in input.scalars { XCTAssertEqual(v, v.rounded()); XCTAssertTrue((0...255).contains(v)) }
        var again = RandomGenerator(seed: 1)
        XCTAssertEqual(try sim.degrade(clean, rng: &again).scalars, input.scalars, "seeded runs repeat exactly")
        XCTAssertEqual(try JSONDecoder().decode(Downsample.self, from: Data("3".utf8)), Downsample(z: 3))
        XCTAssertThrowsError(try DegradationSimulator(config: SimulationConfig(photons: 0))) { e in
            XCTAssertEqual("\(e)", "simulate: invalid argument: photons 0.0 must be positive")
        }
    }
}
