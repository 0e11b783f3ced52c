import Foundation
import LucidCore
import XCTest
@testable import LucidImaging

final class VarianceStabilizationTests: XCTestCase {
    /// A ramp of intensities `offset + gain · photons + read noise` with Poisson photons.
    private func camera(gain: Double, offset: Double, readNoise: Double, seed: UInt64) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        let (h, w) = (128, 256)
        var v = [Float](repeating: 0, count: h * w)
        for y in 0..<h {
            for x in 0..<w {
                let mean = 1 + 30 * Double(x) / Double(w)          // photons, flat along Y
                v[y * w + x] = Float(offset + gain * Double(poisson(mean, &rng)) + readNoise * Double(rng.normal()))
            }
        }
        return try! Tensor(shape: [1, h, w], scalars: v)
    }

    private func poisson(_ mean: Double, _ rng: inout RandomGenerator) -> Int {
        // Knuth's method (means here are ≤ 31).
        let limit = Foundation.exp(-mean)
        var k = 0, p = 1.0
        repeat { k += 1; p *= Double(rng.uniform()) } while p > limit
        return k - 1
    }

    func testRoundTripIsExact() throws {
        let model = GeneralizedAnscombe(gain: 2.5, intercept: 9)
        let z = try Tensor(shape: [6], scalars: [-3, 0, 1.5, 10, 250, 4000])
        let back = model.inverse(model.forward(z)).scalars
        for (a, b) in zip(z.scalars, back) { XCTAssertEqual(a, b, accuracy: 1e-3 * max(1, abs(a))) }
        // Without signal-dependent noise the transform is a scaling.
        let gaussian = GeneralizedAnscombe(gain: 0, intercept: 4)
        XCTAssertEqual(gaussian.forward(z).scalars, z.scalars.map { $0 / 2 })
        XCTAssertEqual(gaussian.inverse(gaussian.forward(z)).scalars, z.scalars)
    }

    func testMeanVarianceFitFindsTheCameraAndStabilizes() throws {
        let (gain, offset, read) = (3.0, 100.0, 4.0)
        let z = camera(gain: gain, offset: offset, readNoise: read, seed: 1)
        let model = try GeneralizedAnscombe.estimate([z])
        XCTAssertEqual(model.gain, gain, accuracy: 0.1 * gain)
        // var = gain · (z − offset) + read² = gain · z + (read² − gain · offset)
        XCTAssertEqual(model.intercept, read * read - gain * offset, accuracy: 0.1 * gain * offset)
        XCTAssertTrue(model.summary.contains("gain"), model.summary)
        // After the transform the noise's variance is about 1 at dim and bright columns alike.
        let f = model.forward(z).scalars
        for x in [24, 128, 240] {
            let column = (0..<128).map { Double(f[$0 * 256 + x]) }
            let m = column.reduce(0, +) / 128
            let v = column.map { ($0 - m) * ($0 - m) }.reduce(0, +) / 127
            XCTAssertEqual(v, 1, accuracy: 0.3, "column \(x)")
        }
        // Gaussian noise alone is recognised as such.
        var rng = RandomGenerator(seed: 2)
        let flat = try Tensor(shape: [1, 128, 128], scalars: (0..<(128 * 128)).map { i in Float(i % 128) * 0.01 + 0.5 * rng.normal() })
        let g = try GeneralizedAnscombe.estimate([flat])
        XCTAssertEqual(g.gain, 0)
        XCTAssertEqual(g.intercept.squareRoot(), 0.5, accuracy: 0.05)
        XCTAssertThrowsError(try GeneralizedAnscombe.estimate([Tensor(zeros: [1, 16, 16])]))
    }

    /// The unbiased inverse maps the mean of f(z) back to the mean of z, where the algebraic
    /// inverse is biased low at a few photons.
    func testUnbiasedInverseOfTheExpectedTransform() throws {
        let model = GeneralizedAnscombe(gain: 1, intercept: 0)
        var rng = RandomGenerator(seed: 5)
        for mean in [3.0, 10.0] {
            let n = 40_000
            let samples = try Tensor(shape: [n], scalars: (0..<n).map { _ in Float(poisson(mean, &rng)) })
            let f = model.forward(samples).scalars
            let expected = try Tensor(shape: [1], scalars: [f.reduce(0, +) / Float(n)])
            XCTAssertEqual(Double(model.unbiasedInverse(expected).scalars[0]), mean, accuracy: 0.03 * mean)
            XCTAssertLessThan(Double(model.inverse(expected).scalars[0]), mean - 0.1)
        }
    }
}
