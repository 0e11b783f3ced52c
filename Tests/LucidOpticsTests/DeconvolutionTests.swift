import XCTest
import LucidCore
@testable import LucidOptics

func psnr(_ a: Tensor, _ truth: Tensor) -> Double {
    let t = truth.scalars
    let range = Double(t.max()! - t.min()!)
    let mse = zip(a.scalars, t).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) } / Double(t.count)
    return 10 * log10(range * range / mse)
}

/// Random bright blobs and bars on a dim background.
func phantom(_ shape: [Int], seed: UInt64) -> Tensor {
    var rng = RandomGenerator(seed: seed)
    var t = Tensor(shape: shape, repeating: 0.05)
    let s = FFTGrid.promote(shape)
    t.withUnsafeMutableBufferPointer { p in
        for _ in 0..<12 {
            let cz = Double(rng.int(below: s[0])), cy = Double(rng.int(below: s[1])), cx = Double(rng.int(below: s[2]))
            let r = 1.0 + 2.5 * Double(rng.uniform()), v = Float(0.3 + 0.7 * Double(rng.uniform()))
            for z in 0..<s[0] { for y in 0..<s[1] { for x in 0..<s[2] {
                let d = (pow(Double(z) - cz, 2) + pow(Double(y) - cy, 2) + pow(Double(x) - cx, 2)).squareRoot()
                if d <= r { p[(z * s[1] + y) * s[2] + x] += v }
            }}}
        }
    }
    return t
}

final class DeconvolutionTests: XCTestCase {
    func blurredNoisy(_ truth: Tensor, _ psf: Tensor, boundary: Boundary, noise: Float, seed: UInt64) throws -> Tensor {
        var rng = RandomGenerator(seed: seed)
        var y = try fftConvolve(truth, psf, boundary: boundary)
        y.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] = max(0, p[i] + noise * rng.normal()) } }
        return y
    }

    func testRichardsonLucyKeepsFluxAndRaisesPSNR3D() throws {
        let truth = phantom([16, 32, 32], seed: 3)
        let psf = try PSFConfig(model: .gaussian, dxy: 1, dz: 1, nxy: 9, nz: 9, sigmaXY: 1.2, sigmaZ: 1.8).generate()
        let y = try blurredNoisy(truth, psf, boundary: .periodic, noise: 0.005, seed: 4)
        let r = try Deconvolution.richardsonLucy(y, psf: psf, options: RichardsonLucyOptions(iterations: 30, boundary: .periodic))
        let fluxIn = y.scalars.reduce(0.0) { $0 + Double($1) }, fluxOut = r.image.scalars.reduce(0.0) { $0 + Double($1) }
        XCTAssertEqual(fluxOut / fluxIn, 1, accuracy: 1e-3, "RL conserves total flux on a periodic grid")
        XCTAssertGreaterThanOrEqual(r.image.scalars.min()!, 0)
        XCTAssertGreaterThan(psnr(r.image, truth), psnr(y, truth) + 1.5)
        XCTAssertEqual(r.iterations, 30)
    }

    func testRichardsonLucyWithReflectPaddingAndTV2D() throws {
        let truth = phantom([48, 40], seed: 5)
        let psf = try PSFConfig(model: .gaussian, dxy: 1, nxy: 11, sigmaXY: 1.5).generate()
        let y = try blurredNoisy(truth, psf, boundary: .reflect, noise: 0.01, seed: 6)
        let plain = try Deconvolution.richardsonLucy(y, psf: psf, options: RichardsonLucyOptions(iterations: 25))
        let tv = try Deconvolution.richardsonLucy(y, psf: psf, options: RichardsonLucyOptions(iterations: 25, tv: 0.002))
        let fluxIn = y.scalars.reduce(0.0) { $0 + Double($1) }
        XCTAssertEqual(plain.image.scalars.reduce(0.0) { $0 + Double($1) } / fluxIn, 1, accuracy: 0.02)
        XCTAssertGreaterThan(psnr(plain.image, truth), psnr(y, truth) + 1)
        XCTAssertGreaterThan(psnr(tv.image, truth), psnr(y, truth) + 1)
        XCTAssertNotEqual(maxAbsDifference(tv.image, plain.image), 0, "the TV term changes the result")
    }

    func testRichardsonLucyStopsOnRelativeChange() throws {
        let truth = phantom([32, 32], seed: 7)
        let psf = try PSFConfig(model: .gaussian, dxy: 1, nxy: 7, sigmaXY: 1).generate()
        let y = try fftConvolve(truth, psf, boundary: .reflect)
        let r = try Deconvolution.richardsonLucy(y, psf: psf, options: RichardsonLucyOptions(iterations: 500, tolerance: 1e-2))
        XCTAssertLessThan(r.iterations, 500)
        XCTAssertLessThan(r.lastChange, 1e-2)
    }

    func testTikhonovRaisesPSNR() throws {
        let truth = phantom([40, 44], seed: 8)
        let psf = try PSFConfig(model: .gaussian, dxy: 1, nxy: 11, sigmaXY: 1.5).generate()
        let y = try blurredNoisy(truth, psf, boundary: .reflect, noise: 0.005, seed: 9)
        for reg in [TikhonovRegularizer.identity, .laplacian] {
            let x = try Deconvolution.tikhonov(y, psf: psf, regularization: reg == .identity ? 1e-2 : 1e-2, regularizer: reg)
            XCTAssertGreaterThan(psnr(x, truth), psnr(y, truth) + 0.5, "\(reg)")
        }
    }

    func testBadArgumentsAreRefused() {
        let y = Tensor(ones: [8, 8])
        XCTAssertThrowsError(try Deconvolution.richardsonLucy(y, psf: Tensor(zeros: [3, 3]))) { e in
            XCTAssertEqual("\(e)", "Deconvolution.richardsonLucy: invalid argument: PSF of shape [3, 3] has sum 0.0; it must be positive")
        }
        XCTAssertThrowsError(try Deconvolution.richardsonLucy(y, psf: Tensor(ones: [3, 3]), options: RichardsonLucyOptions(iterations: 0))) { e in
            XCTAssertEqual("\(e)", "Deconvolution.richardsonLucy: invalid argument: iterations 0 must be at least 1")
        }
        XCTAssertThrowsError(try Deconvolution.tikhonov(y, psf: Tensor(ones: [3, 3]), regularization: 0)) { e in
            XCTAssertEqual("\(e)", "Deconvolution.tikhonov: invalid argument: regularization 0.0 must be positive")
        }
    }
}
