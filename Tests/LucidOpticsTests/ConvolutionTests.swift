import XCTest
import LucidCore
@testable import LucidOptics

/// Direct `same` convolution (kernel centre (k−1)/2, like scipy) with the image extended by `boundary`.
func directConvolve(_ x: Tensor, _ k: Tensor, boundary: Boundary) -> Tensor {
    let s = FFTGrid.promote(x.shape), ks = FFTGrid.promote(k.shape)
    let c = ks.map { ($0 - 1) / 2 }
    func source(_ i: Int, _ n: Int) -> Int? {
        if i >= 0 && i < n { return i }
        switch boundary {
        case .zero: return nil
        case .periodic: return ((i % n) + n) % n
        case .reflect:
            if n == 1 { return 0 }
            let period = 2 * n - 2
            let m = ((i % period) + period) % period
            return m < n ? m : period - m
        }
    }
    let xs = x.scalars, kv = k.scalars
    var out = [Float](repeating: 0, count: xs.count)
    for z in 0..<s[0] { for y in 0..<s[1] { for xx in 0..<s[2] {
        var acc = 0.0
        for a in 0..<ks[0] { for b in 0..<ks[1] { for d in 0..<ks[2] {
            guard let sz = source(z + c[0] - a, s[0]), let sy = source(y + c[1] - b, s[1]),
                  let sx = source(xx + c[2] - d, s[2]) else { continue }
            acc += Double(xs[(sz * s[1] + sy) * s[2] + sx]) * Double(kv[(a * ks[1] + b) * ks[2] + d])
        }}}
        out[(z * s[1] + y) * s[2] + xx] = Float(acc)
    }}}
    return try! Tensor(shape: x.shape, scalars: out)
}

func maxAbsDifference(_ a: Tensor, _ b: Tensor) -> Float {
    zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0
}

func dot(_ a: Tensor, _ b: Tensor) -> Double {
    zip(a.scalars, b.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
}

final class ConvolutionTests: XCTestCase {
    let cases: [([Int], [Int])] = [([13], [4]), ([7, 9], [3, 5]), ([9, 6], [4, 7]), ([5, 7, 6], [3, 2, 5]),
                                   ([4, 5, 3], [5, 3, 3]), ([6, 11], [9, 13])]

    func testFFTConvolutionMatchesDirectConvolution() throws {
        var rng = RandomGenerator(seed: 1)
        for (shape, kshape) in cases {
            let x = Tensor.randomUniform(shape, rng: &rng)
            let k = Tensor.randomUniform(kshape, rng: &rng)
            for boundary in Boundary.allCases {
                let fft = try fftConvolve(x, k, boundary: boundary)
                let direct = directConvolve(x, k, boundary: boundary)
                let scale = direct.scalars.map(abs).max()!
                XCTAssertLessThan(maxAbsDifference(fft, direct) / scale, 1e-5, "\(shape) ⊛ \(kshape), \(boundary)")
            }
        }
    }

    func testAdjointIdentity() throws {
        var rng = RandomGenerator(seed: 2)
        for (shape, kshape) in cases {
            let k = Tensor.randomUniform(kshape, rng: &rng)
            for boundary in Boundary.allCases {
                let h = try FFTConvolver(kernel: k, imageShape: shape, boundary: boundary)
                let x = Tensor.randomNormal(shape, rng: &rng), y = Tensor.randomNormal(shape, rng: &rng)
                let lhs = dot(try h.apply(x), y), rhs = dot(x, try h.adjoint(y))
                XCTAssertLessThan(abs(lhs - rhs) / max(abs(lhs), 1e-3), 1e-5, "\(shape) \(kshape) \(boundary): \(lhs) vs \(rhs)")
            }
        }
    }

    func testBadShapesAreRefused() throws {
        let x = Tensor(zeros: [4, 5])
        XCTAssertThrowsError(try fftConvolve(x, Tensor(zeros: [3]))) { e in
            XCTAssertEqual("\(e)", "FFTConvolver: shape mismatch: kernel [3] must have the rank of image [4, 5] and positive extents")
        }
        let h = try FFTConvolver(kernel: Tensor(ones: [3, 3]), imageShape: [4, 5])
        XCTAssertThrowsError(try h.apply(Tensor(zeros: [5, 4]))) { e in
            XCTAssertEqual("\(e)", "FFTConvolver.apply: shape mismatch: input [5, 4] vs convolver image shape [4, 5]")
        }
        XCTAssertThrowsError(try fftConvolve(Tensor(zeros: [2, 2, 2, 2]), Tensor(ones: [1, 1, 1, 1])))
    }

    func testFastLengthHasOnlySmallFactors() {
        for n in 1...300 {
            let m = FFT.fastLength(n)
            XCTAssertGreaterThanOrEqual(m, n)
            var r = m
            for f in [2, 3, 5, 7] { while r % f == 0 { r /= f } }
            XCTAssertEqual(r, 1)
            // No smaller valid length in between.
            for c in n..<m {
                var q = c
                for f in [2, 3, 5, 7] { while q % f == 0 { q /= f } }
                XCTAssertNotEqual(q, 1, "\(c) is 7-smooth but fastLength(\(n)) = \(m)")
            }
        }
        XCTAssertEqual(FFT.fastLength(286), 288)
    }

    func testPlanRoundTripIsUnnormalized() throws {
        let plan = try FFT.plan(shape: [6, 10])
        let b = plan.makeBuffer()
        for r in 0..<plan.rows { for x in 0..<10 { b.base[r * plan.rowStride + x] = Float(r * 10 + x) } }
        plan.forward(b.base)
        plan.inverse(b.base)
        for r in 0..<plan.rows { for x in 0..<10 {
            XCTAssertEqual(b.base[r * plan.rowStride + x] / Float(plan.count), Float(r * 10 + x), accuracy: 1e-4)
        }}
        XCTAssertTrue(try FFT.plan(shape: [6, 10]) === plan, "plans are cached by shape")
    }
}
