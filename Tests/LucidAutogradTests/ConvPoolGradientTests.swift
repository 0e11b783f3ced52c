import XCTest
import LucidCore
@testable import LucidAutograd

/// Finite-difference checks of every convolution, pooling and upsampling VJP.
final class ConvPoolGradientTests: XCTestCase {
    /// Float32 central differences of bilinear functions: error is rounding only.
    let tolerance = 5e-3

    func testConvGradients() throws {
        var rng = RandomGenerator(seed: 11)
        let cases: [([Int], [Int], [Int], [Int], [Int])] = [
            ([2, 2, 9], [3, 2, 3], [1], [1], [1]),
            ([1, 3, 11], [2, 3, 3], [2], [2], [2]),
            ([2, 2, 7, 6], [3, 2, 3, 3], [1], [1], [1]),
            ([1, 3, 9, 8], [2, 3, 3, 2], [2, 1], [1, 0], [1, 2]),
            ([1, 2, 7, 7], [4, 2, 1, 1], [1], [0], [1]),
            ([1, 2, 5, 6, 5], [2, 2, 3, 3, 3], [1], [1], [1]),
            ([1, 2, 6, 5, 7], [3, 2, 2, 3, 2], [2, 1, 2], [1, 0, 1], [1, 2, 1]),
        ]
        for (xs, ws, s, p, d) in cases {
            let x = Tensor.randomNormal(xs, rng: &rng), w = Tensor.randomNormal(ws, rng: &rng)
            let b = Tensor.randomNormal([ws[0]], rng: &rng)
            let report = try GradientCheck.run([x, w, b], maxProbes: 24) { v in
                try conv(v[0], weight: v[1], bias: v[2], stride: s, padding: p, dilation: d)
            }
            XCTAssertLessThan(report.maxError, tolerance, "conv x \(xs) w \(ws) s \(s) p \(p) d \(d): \(report)")
        }
    }

    /// The fused convolution + (leaky) ReLU: gradients of input, weight and bias.
    func testConvLeakyReLUGradients() throws {
        var rng = RandomGenerator(seed: 21)
        let cases: [([Int], [Int], [Int], [Int], Float)] = [
            ([2, 2, 7, 6], [3, 2, 3, 3], [1], [1], 0),
            ([1, 3, 9, 8], [2, 3, 3, 3], [2], [1], 0.1),
            ([1, 2, 5, 6, 5], [2, 2, 3, 3, 3], [1], [1], 0.01),
        ]
        for (xs, ws, s, p, slope) in cases {
            let x = Tensor.randomNormal(xs, rng: &rng), w = Tensor.randomNormal(ws, rng: &rng)
            let b = Tensor.randomNormal([ws[0]], rng: &rng)
            let report = try GradientCheck.run([x, w, b], maxProbes: 24) { v in
                try convLeakyReLU(v[0], weight: v[1], bias: v[2], stride: s, padding: p, slope: slope)
            }
            XCTAssertLessThan(report.maxError, tolerance, "convLeakyReLU x \(xs) w \(ws) slope \(slope): \(report)")
        }
        XCTAssertThrowsError(try convLeakyReLU(Variable(Tensor(zeros: [1, 1, 4])), weight: Variable(Tensor(zeros: [1, 1, 3])),
                                               slope: 1)) { e in
            XCTAssertTrue("\(e)".contains("slope 1.0 must lie in [0, 1)"), "\(e)")
        }
    }

    func testConvWithoutBiasAndFrozenInput() throws {
        var rng = RandomGenerator(seed: 12)
        let x = Variable(Tensor.randomNormal([1, 2, 6, 6], rng: &rng))
        let w = Variable(Tensor.randomNormal([3, 2, 3, 3], rng: &rng), requiresGrad: true)
        let y = try conv(x, weight: w, padding: [1])
        try y.backward(seed: Tensor(ones: y.shape))
        XCTAssertNil(x.grad)
        XCTAssertEqual(w.grad?.shape, [3, 2, 3, 3])
    }

    func testConvTransposeGradients() throws {
        var rng = RandomGenerator(seed: 13)
        let cases: [([Int], [Int], [Int], [Int], [Int], [Int])] = [
            ([1, 2, 5], [2, 3, 3], [2], [1], [1], [1]),
            ([2, 3, 4, 5], [3, 2, 3, 3], [2], [1], [1], [1]),
            ([1, 2, 4, 3], [2, 2, 2, 3], [1, 2], [0, 1], [0, 1], [2, 1]),
            ([1, 2, 3, 3, 4], [2, 2, 2, 2, 2], [2], [0], [0], [1]),
        ]
        for (xs, ws, s, p, op, d) in cases {
            let x = Tensor.randomNormal(xs, rng: &rng), w = Tensor.randomNormal(ws, rng: &rng)
            let b = Tensor.randomNormal([ws[1]], rng: &rng)
            let report = try GradientCheck.run([x, w, b], maxProbes: 24) { v in
                try convTranspose(v[0], weight: v[1], bias: v[2], stride: s, padding: p, outputPadding: op, dilation: d)
            }
            XCTAssertLessThan(report.maxError, tolerance, "convTranspose x \(xs) w \(ws): \(report)")
        }
    }

    /// Distinct values at least 0.05 apart, so a finite-difference step of 0.01 never changes
    /// which element of a window is the maximum.
    private func separated(_ shape: [Int], rng: inout RandomGenerator) -> Tensor {
        let n = shape.reduce(1, *)
        var values = (0..<n).map { Float($0) * 0.05 }
        values.shuffle(using: &rng)
        return try! Tensor(shape: shape, scalars: values)
    }

    func testPoolingGradients() throws {
        var rng = RandomGenerator(seed: 14)
        for (shape, k, s) in [([1, 2, 9], [2], [2]), ([2, 2, 7, 6], [2], [2]), ([1, 2, 7, 7], [3, 2], [2, 1]),
                              ([1, 2, 4, 5, 6], [2], [2])] as [([Int], [Int], [Int])] {
            let x = separated(shape, rng: &rng)
            let rMax = try GradientCheck.run([x]) { try maxPool($0[0], kernel: k, stride: s) }
            XCTAssertLessThan(rMax.maxError, tolerance, "maxPool \(shape) k \(k) s \(s): \(rMax)")
            let rAvg = try GradientCheck.run([Tensor.randomNormal(shape, rng: &rng)]) { try avgPool($0[0], kernel: k, stride: s) }
            XCTAssertLessThan(rAvg.maxError, tolerance, "avgPool \(shape) k \(k) s \(s): \(rAvg)")
        }
        for shape in [[1, 2, 9], [2, 2, 7, 6], [1, 2, 5, 4, 6]] {
            let rBlur = try GradientCheck.run([Tensor.randomNormal(shape, rng: &rng)]) { try blurPool($0[0], stride: 2) }
            XCTAssertLessThan(rBlur.maxError, tolerance, "blurPool \(shape): \(rBlur)")
            let rMaxBlur = try GradientCheck.run([separated(shape, rng: &rng)]) { try maxBlurPool($0[0]) }
            XCTAssertLessThan(rMaxBlur.maxError, tolerance, "maxBlurPool \(shape): \(rMaxBlur)")
        }
    }

    func testUpsampleGradients() throws {
        var rng = RandomGenerator(seed: 15)
        for (shape, scale) in [([1, 2, 5], [3]), ([2, 2, 3, 4], [2]), ([1, 2, 3, 4], [2, 3]), ([1, 2, 3, 2, 4], [2])] as [([Int], [Int])] {
            for mode in [UpsampleMode.nearest, .linear] {
                let r = try GradientCheck.run([Tensor.randomNormal(shape, rng: &rng)]) { try upsample($0[0], scale: scale, mode: mode) }
                XCTAssertLessThan(r.maxError, tolerance, "upsample \(mode) \(shape) × \(scale): \(r)")
            }
        }
    }

    func testBadInputsThrowNamingOpAndShapes() {
        let x = Variable(Tensor(zeros: [1, 3, 8, 8]), requiresGrad: true)
        XCTAssertThrowsError(try conv(x, weight: Variable(Tensor(zeros: [4, 2, 3, 3])))) { e in
            XCTAssertTrue("\(e)".contains("conv") && "\(e)".contains("[1, 3, 8, 8]") && "\(e)".contains("[4, 2, 3, 3]"), "\(e)")
        }
        XCTAssertThrowsError(try conv(x, weight: Variable(Tensor(zeros: [4, 3, 3, 3])), padding: [-2])) { e in
            XCTAssertTrue("\(e)".contains("conv") && "\(e)".contains("padding [-2]"), "\(e)")
        }
        XCTAssertThrowsError(try convTranspose(x, weight: Variable(Tensor(zeros: [3, 2, 3])))) { e in
            XCTAssertTrue("\(e)".contains("convTranspose") && "\(e)".contains("[3, 2, 3]"), "\(e)")
        }
        XCTAssertThrowsError(try maxPool(x, kernel: [9])) { e in
            XCTAssertTrue("\(e)".contains("maxPool") && "\(e)".contains("[9]"), "\(e)")
        }
        XCTAssertThrowsError(try upsample(x, scale: [2, 2, 2], mode: .linear)) { e in
            XCTAssertTrue("\(e)".contains("upsample") && "\(e)".contains("[2, 2, 2]"), "\(e)")
        }
    }
}
