import XCTest
import LucidCore
@testable import LucidOptics

final class BrightfieldTests: XCTestCase {
    /// A weak sinusoidal phase grating `ε·cos(2πf₀x)` under coherent light: invisible in focus,
    /// intensity `1 + 2ε·sin θ·cos(2πf₀x)` at distance z, θ = 2πz(n/λ − √((n/λ)² − f₀²)).
    func testWeakPhaseGratingFollowsTheDefocusTransferFunction() throws {
        let (ny, nx, period) = (8, 64, 16), eps: Float = 0.01
        var phase = Tensor(shape: [ny, nx], repeating: 0)
        phase.withUnsafeMutableBufferPointer { p in
            for y in 0..<ny { for x in 0..<nx { p[y * nx + x] = eps * cos(2 * .pi * Float(x) / Float(period)) } }
        }
        let zero = Tensor(shape: [ny, nx], repeating: 0)
        let optics = BrightfieldOptics(wavelength: 0.5, mediumIndex: 1.33, objectiveNA: 0.9, condenserNA: 0, pixelSize: 0.1)
        let f0 = 1 / (Double(period) * optics.pixelSize), k = optics.mediumIndex / optics.wavelength
        for z in [0.0, 0.5, 1.5, -1.0] {
            let image = try optics.image(phase: phase, absorption: zero, defocus: z)
            let theta = 2 * Double.pi * z * (k - (k * k - f0 * f0).squareRoot())
            let amplitude = 2 * Double(eps) * sin(theta)
            image.withUnsafeBufferPointer { v in
                for x in 0..<nx {
                    let expected = 1 + amplitude * cos(2 * .pi * Double(x) / Double(period))
                    XCTAssertEqual(Double(v[3 * nx + x]), expected, accuracy: 4e-4, "z \(z) x \(x)")
                }
            }
        }
    }

    /// An absorbing object is seen in focus: intensity exp(−2a) where the pupil passes it all.
    func testUniformAbsorptionDimsByItsSquare() throws {
        let phase = Tensor(shape: [16, 16], repeating: 0.7)
        let absorption = Tensor(shape: [16, 16], repeating: 0.1)
        let image = try BrightfieldOptics(condenserNA: 0.3).image(phase: phase, absorption: absorption, defocus: 3)
        for v in image.scalars { XCTAssertEqual(v, exp(-0.2), accuracy: 1e-5) }
    }

    /// Multislice: a stack whose only non-empty slice is the first images plane k like the thin
    /// specimen at distance k·spacing + defocus, whatever the illumination.
    func testStackOfOneLayerMatchesThinImagesAtEachDistance() throws {
        var rng = RandomGenerator(seed: 4)
        let (nz, ny, nx) = (4, 24, 20)
        let layer = Tensor.randomUniform([ny, nx], low: 0, high: 1, rng: &rng)
        let layerAbsorption = Tensor.randomUniform([ny, nx], low: 0, high: 0.2, rng: &rng)
        var phase = Tensor(shape: [nz, ny, nx], repeating: 0), absorption = phase
        phase.withUnsafeMutableBufferPointer { p in layer.withUnsafeBufferPointer { p.baseAddress!.update(from: $0.baseAddress!, count: $0.count) } }
        absorption.withUnsafeMutableBufferPointer { p in layerAbsorption.withUnsafeBufferPointer { p.baseAddress!.update(from: $0.baseAddress!, count: $0.count) } }
        let optics = BrightfieldOptics(condenserNA: 0.3, pixelSize: 0.2, sourcePoints: 5)
        let stack = try optics.stack(phase: phase, absorption: absorption, sliceSpacing: 0.7, defocus: 0.4)
        let s = stack.scalars
        for k in 0..<nz {
            let thin = try optics.image(phase: layer, absorption: layerAbsorption, defocus: Double(k) * 0.7 + 0.4).scalars
            for i in 0..<(ny * nx) { XCTAssertEqual(s[k * ny * nx + i], thin[i], accuracy: 2e-4, "plane \(k)") }
        }
    }

    /// Source points are summed in a fixed order: the image does not depend on the thread count.
    func testImageIsTheSameWhateverTheThreadCount() throws {
        var rng = RandomGenerator(seed: 8)
        let phase = Tensor.randomUniform([3, 16, 24], rng: &rng), absorption = Tensor.randomUniform([3, 16, 24], high: 0.1, rng: &rng)
        let saved = Threads.count
        defer { Threads.count = saved }
        var images: [[Float]] = []
        for threads in [1, 3] {
            Threads.count = threads
            images.append(try BrightfieldOptics(sourcePoints: 7).stack(phase: phase, absorption: absorption, sliceSpacing: 0.5, defocus: 1).scalars)
        }
        XCTAssertEqual(images[0], images[1])
    }

    func testImpossibleOpticsAreRefused() {
        let t = Tensor(shape: [8, 8], repeating: 0)
        for (optics, word) in [(BrightfieldOptics(objectiveNA: 1.4), "objective NA"),
                               (BrightfieldOptics(condenserNA: 0.6), "condenser NA"),
                               (BrightfieldOptics(pixelSize: 0), "pixel size"),
                               (BrightfieldOptics(wavelength: -1), "wavelength")] {
            XCTAssertThrowsError(try optics.image(phase: t, absorption: t, defocus: 0)) { XCTAssertTrue("\($0)".contains(word), "\($0)") }
        }
        XCTAssertThrowsError(try BrightfieldOptics().image(phase: t, absorption: Tensor(shape: [8, 9], repeating: 0), defocus: 0))
    }
}
