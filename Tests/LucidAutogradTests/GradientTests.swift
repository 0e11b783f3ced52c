import XCTest
import Foundation
@testable import LucidAutograd
@testable import LucidCore

func randomTensor(_ shape: [Int], seed: UInt64, low: Float = -1, high: Float = 1) -> Tensor {
    var rng = RandomGenerator(seed: seed)
    return Tensor.randomUniform(shape, low: low, high: high, rng: &rng)
}

/// Random values with `|x| ≥ margin`, so kinks at 0 stay farther than the finite-difference step.
func awayFromZero(_ shape: [Int], seed: UInt64, margin: Float = 0.1) -> Tensor {
    randomTensor(shape, seed: seed).map { $0 >= 0 ? $0 + margin : $0 - margin }
}

/// Gradient-check tolerance: error relative to max(1, |numeric|), Float32 forward, h = 1e-2.
/// Correct rules stay below 4e-4 here (division's curvature); a rule off by 2% in one term
/// (batch norm's x̂ coefficient, Laplace's scale term) or a wrong GELU density fails it.
let gradTolerance = 1e-3

extension XCTestCase {
    func assertGradients(_ inputs: [Tensor], tol: Double = gradTolerance, step: Float = 1e-2, _ name: String,
                         file: StaticString = #filePath, line: UInt = #line,
                         _ f: ([Variable]) throws -> Variable) {
        do {
            let report = try GradientCheck.run(inputs, step: step, f)
            XCTAssertLessThan(report.maxError, tol, "\(name): \(report)", file: file, line: line)
        } catch {
            XCTFail("\(name): threw \(error)", file: file, line: line)
        }
    }
}

final class ArithmeticGradientTests: XCTestCase {
    func testBroadcastingBinaryOps() {
        let shapes: [([Int], [Int])] = [([3, 4, 5], [3, 4, 5]), ([3, 4, 5], [4, 1]), ([3, 1, 5], [4, 1]),
                                        ([2, 3], []), ([5], [3, 1]), ([2, 3, 1, 1], [1, 3, 4, 5])]
        for (k, (sa, sb)) in shapes.enumerated() {
            let a = randomTensor(sa, seed: UInt64(k)), b = randomTensor(sb, seed: UInt64(k + 20), low: 0.5, high: 2)
            assertGradients([a, b], "add \(sa) \(sb)") { try $0[0] + $0[1] }
            assertGradients([a, b], "sub \(sa) \(sb)") { try $0[0] - $0[1] }
            assertGradients([a, b], "mul \(sa) \(sb)") { try $0[0] * $0[1] }
            assertGradients([a, b], "div \(sa) \(sb)") { try $0[0] / $0[1] }
        }
    }

    func testScalarOpsAndUnaryMath() {
        let x = randomTensor([3, 5], seed: 1), pos = randomTensor([2, 3, 5], seed: 2, low: 0.5, high: 2)
        assertGradients([x], "scalar ops") { v in
            let a = (2 * v[0] + 1.5) - 0.5
            let b = (3 - v[0]) * 0.5 / 2
            return try (a * b) + (-v[0])
        }
        assertGradients([pos], "rdiv") { 2 / $0[0] }
        assertGradients([x], "exp") { $0[0].exp() }
        assertGradients([pos], "log") { $0[0].log() }
        assertGradients([pos], "sqrt") { $0[0].sqrt() }
        assertGradients([x], "pow 2") { $0[0].pow(2) }
        assertGradients([pos], "pow 1.5") { $0[0].pow(1.5) }
        assertGradients([pos], "pow -1") { $0[0].pow(-1) }
        assertGradients([awayFromZero([4, 5], seed: 3)], "abs") { $0[0].abs() }
        // Values at least 0.05 from the bounds ±0.5.
        let c = randomTensor([4, 5], seed: 4, low: -1, high: 1).map { Swift.abs(Swift.abs($0) - 0.5) < 0.05 ? $0 * 0.8 : $0 }
        assertGradients([c], "clamp") { $0[0].clamped(min: -0.5, max: 0.5) }
    }

    func testWhere() throws {
        let cond = try Tensor(shape: [3, 1], scalars: [1, 0, 1])
        assertGradients([randomTensor([3, 4], seed: 5), randomTensor([4], seed: 6)], "where") { v in
            try Variable.where(cond, v[0], v[1])
        }
    }
}

final class ReductionShapeGradientTests: XCTestCase {
    func testReductions() throws {
        let x = randomTensor([3, 4, 5], seed: 7)
        // Distinct values 0.05 apart, shuffled, so no max is within the step of a tie.
        var rng = RandomGenerator(seed: 7)
        let distinct = try Tensor(shape: [3, 4, 5], scalars: (0..<60).map { Float($0) * 0.05 - 1.5 }.shuffled(using: &rng))
        for axes in [nil, [0], [1], [2], [0, 2], [1, 2], [-1]] as [[Int]?] {
            for keep in [false, true] {
                assertGradients([x], "sum \(String(describing: axes)) \(keep)") { try $0[0].sum(axes: axes, keepDims: keep) }
                assertGradients([x], "mean \(String(describing: axes))") { try $0[0].mean(axes: axes, keepDims: keep) }
                assertGradients([distinct], "max \(String(describing: axes))") { try $0[0].max(axes: axes, keepDims: keep) }
                assertGradients([x], "variance \(String(describing: axes))") { try $0[0].variance(axes: axes, keepDims: keep) }
            }
        }
        assertGradients([randomTensor([5, 3], seed: 8)], "unbiased variance 2D") { try $0[0].variance(axes: [0], unbiased: true) }
    }

    func testMatmul() {
        let cases: [([Int], [Int], Bool, Bool)] = [([3, 4], [4, 5], false, false), ([4, 3], [4, 5], true, false),
                                                   ([3, 4], [5, 4], false, true), ([4, 3], [5, 4], true, true),
                                                   ([2, 3, 4], [4, 5], false, false), ([3, 4], [2, 4, 5], false, false),
                                                   ([2, 1, 4, 3], [3, 5, 4], true, true)]
        for (k, (sa, sb, ta, tb)) in cases.enumerated() {
            assertGradients([randomTensor(sa, seed: UInt64(k)), randomTensor(sb, seed: UInt64(k + 9))], "matmul \(sa) \(sb) \(ta) \(tb)") {
                try matmul($0[0], $0[1], transposeA: ta, transposeB: tb)
            }
        }
    }

    func testShapeOps() {
        let x = randomTensor([2, 3, 4], seed: 10), y = randomTensor([2, 2, 4], seed: 11)
        assertGradients([x], "reshape") { try $0[0].reshaped([4, -1]) * $0[0].reshaped([4, 6]) }
        assertGradients([x], "permute") { try $0[0].permuted([2, 0, 1]) }
        assertGradients([x], "slice") { try $0[0].slice(axis: 1, range: 1..<3) }
        assertGradients([x], "slice last") { try $0[0].slice(axis: -1, range: 0..<3) }
        assertGradients([x, y], "concat") { try concat([$0[0], $0[1], $0[0]], axis: 1) }
        let img = randomTensor([2, 2, 4, 5], seed: 12), vol = randomTensor([1, 2, 3, 4, 3], seed: 13)
        for mode in [PadMode.zero, .reflect] {
            assertGradients([img], "pad 2D \(mode)") { try pad($0[0], [(1, 2), (3, 1)], mode: mode) }
            assertGradients([vol], "pad 3D \(mode)") { try pad($0[0], [(1, 1), (2, 0), (1, 2)], mode: mode) }
        }
    }
}

final class ActivationGradientTests: XCTestCase {
    func testActivations() {
        let x = awayFromZero([3, 4, 5], seed: 14, margin: 0.05) * 2
        assertGradients([x], "relu") { relu($0[0]) }
        assertGradients([x], "leakyReLU") { leakyReLU($0[0], slope: 0.1) }
        assertGradients([x], "silu") { silu($0[0]) }
        assertGradients([x], "gelu") { gelu($0[0]) }
        assertGradients([x], "sigmoid") { sigmoid($0[0]) }
        assertGradients([x], "tanh") { tanh($0[0]) }
        for axis in [0, 1, -1] {
            assertGradients([x], "softmax \(axis)") { try softmax($0[0], axis: axis) }
            assertGradients([x], "logSoftmax \(axis)") { try logSoftmax($0[0], axis: axis) }
        }
    }

    func testDropoutWithFixedMask() throws {
        let x = randomTensor([4, 7], seed: 15)
        assertGradients([x], "dropout") { v in
            var rng = RandomGenerator(seed: 3)
            return dropout(v[0], probability: 0.3, training: true, rng: &rng)
        }
        var rng = RandomGenerator(seed: 3)
        let out = dropout(Variable(Tensor(ones: [10_000])), probability: 0.25, training: true, rng: &rng).value.scalars
        let kept = out.filter { $0 != 0 }
        XCTAssertTrue(kept.allSatisfy { Swift.abs($0 - 1 / 0.75) < 1e-6 })
        XCTAssertEqual(Double(kept.count) / 10_000, 0.75, accuracy: 0.02)
        let eval = Variable(x)
        XCTAssertTrue(dropout(eval, probability: 0.5, training: false, rng: &rng) === eval)
    }
}

final class LayerGradientTests: XCTestCase {
    func testLinear() throws {
        let w = randomTensor([3, 5], seed: 16), b = randomTensor([3], seed: 17)
        assertGradients([randomTensor([4, 5], seed: 18), w, b], "linear 2D") { try linear($0[0], weight: $0[1], bias: $0[2]) }
        assertGradients([randomTensor([2, 4, 5], seed: 19), w], "linear 3D no bias") { try linear($0[0], weight: $0[1], bias: nil) }
        // Forward against the definition.
        let x = randomTensor([2, 5], seed: 20)
        let y = try linear(Variable(x), weight: Variable(w), bias: Variable(b)).value
        for r in 0..<2 { for o in 0..<3 {
            var s = Double(b.scalars[o])
            for i in 0..<5 { s += Double(x.scalars[r * 5 + i]) * Double(w.scalars[o * 5 + i]) }
            XCTAssertEqual(Double(y[r, o]), s, accuracy: 1e-5)
        } }
        XCTAssertThrowsError(try linear(Variable(x), weight: Variable(Tensor(zeros: [3, 4])), bias: nil)) { e in
            XCTAssertEqual("\(e)", "linear: shape mismatch: input [2, 5] vs weight [3, 4] (expected [out, 5])")
        }
    }

    func testAttention() throws {
        let q = randomTensor([2, 2, 3, 4], seed: 21), k = randomTensor([2, 2, 5, 4], seed: 22), v = randomTensor([2, 2, 5, 3], seed: 23)
        assertGradients([q, k, v], "attention") { try scaledDotProductAttention(query: $0[0], key: $0[1], value: $0[2]) }
        // Forward against the definition for one (batch, head, query) row.
        let out = try scaledDotProductAttention(query: Variable(q), key: Variable(k), value: Variable(v)).value
        XCTAssertEqual(out.shape, [2, 2, 3, 3])
        let (b, h, i) = (1, 0, 2)
        var scores = (0..<5).map { j in (0..<4).map { Double(q[b, h, i, $0]) * Double(k[b, h, j, $0]) }.reduce(0, +) / 2 }
        let mx = scores.max()!
        scores = scores.map { Foundation.exp($0 - mx) }
        let z = scores.reduce(0, +)
        for d in 0..<3 {
            let ref = (0..<5).map { scores[$0] / z * Double(v[b, h, $0, d]) }.reduce(0, +)
            XCTAssertEqual(Double(out[b, h, i, d]), ref, accuracy: 1e-5)
        }
        XCTAssertThrowsError(try scaledDotProductAttention(query: Variable(q), key: Variable(v), value: Variable(v))) { e in
            XCTAssertTrue("\(e)".hasPrefix("scaledDotProductAttention: shape mismatch: query [2, 2, 3, 4], key [2, 2, 5, 3]"), "\(e)")
        }
    }

    func testSinusoidalEmbedding() throws {
        let t = try Tensor(shape: [3], scalars: [0, 7, 250])
        let e = sinusoidalEmbedding(t, dim: 7)
        XCTAssertEqual(e.shape, [3, 7])
        for r in 0..<3 {
            for i in 0..<3 {
                let f = Foundation.exp(-Foundation.log(10000.0) * Double(i) / 3)
                XCTAssertEqual(Double(e[r, i]), Foundation.sin(Double(t.scalars[r]) * f), accuracy: 1e-6)
                XCTAssertEqual(Double(e[r, 3 + i]), Foundation.cos(Double(t.scalars[r]) * f), accuracy: 1e-6)
            }
            XCTAssertEqual(e[r, 6], 0)
        }
    }
}

final class LossGradientTests: XCTestCase {
    /// Losses are means; they are scaled by the element count so per-element gradients are O(1)
    /// and the check (error relative to max(1, |numeric|)) stays sensitive.
    func testLosses() throws {
        let p = randomTensor([3, 5], seed: 24), t = try p + awayFromZero([3, 5], seed: 25, margin: 0.05)
        assertGradients([p, t], "mse") { try mseLoss($0[0], $0[1]) * 15 }
        assertGradients([p, t], "mae") { try maeLoss($0[0], $0[1]) * 15 }
        // Differences on both sides of delta = 0.5, at least 0.05 away from it.
        let tH = try p + randomTensor([3, 5], seed: 26, low: -1.5, high: 1.5).map { Swift.abs(Swift.abs($0) - 0.5) < 0.05 ? $0 + 0.1 : $0 }
        assertGradients([p, tH], "huber") { try huberLoss($0[0], $0[1], delta: 0.5) * 15 }
        let mask = try Tensor(shape: [3, 5], scalars: (0..<15).map { $0 % 3 == 0 ? 1 : 0 })
        assertGradients([p, t], "maskedMSE") { try maskedMSELoss($0[0], $0[1], mask: mask) * 5 }
        assertGradients([p, randomTensor([3, 5], seed: 27, low: -1, high: 0.5), t], "laplaceNLL") {
            try laplaceNLL(mean: $0[0], logScale: $0[1], target: $0[2]) * 15
        }
    }

    func testLossValuesMatchDefinitions() throws {
        let p = randomTensor([4, 6], seed: 28), t = randomTensor([4, 6], seed: 29), s = randomTensor([4, 6], seed: 30)
        let ps = p.scalars, ts = t.scalars, ss = s.scalars
        let d = zip(ps, ts).map { Double($0) - Double($1) }
        XCTAssertEqual(Double(try mseLoss(Variable(p), Variable(t)).value.scalar), d.map { $0 * $0 }.reduce(0, +) / 24, accuracy: 1e-6)
        XCTAssertEqual(Double(try maeLoss(Variable(p), Variable(t)).value.scalar), d.map { Swift.abs($0) }.reduce(0, +) / 24, accuracy: 1e-6)
        let huber = d.map { Swift.abs($0) <= 0.7 ? 0.5 * $0 * $0 : 0.7 * (Swift.abs($0) - 0.35) }.reduce(0, +) / 24
        XCTAssertEqual(Double(try huberLoss(Variable(p), Variable(t), delta: 0.7).value.scalar), huber, accuracy: 1e-6)
        let laplace = (0..<24).map { i in Foundation.log(2 * Foundation.exp(Double(ss[i]))) + Swift.abs(Double(ts[i]) - Double(ps[i])) / Foundation.exp(Double(ss[i])) }.reduce(0, +) / 24
        XCTAssertEqual(Double(try laplaceNLL(mean: Variable(p), logScale: Variable(s), target: Variable(t)).value.scalar), laplace, accuracy: 1e-5)
        // Masked MSE: mean over the masked elements only; unmasked predictions get no gradient.
        let maskValues: [Float] = (0..<24).map { $0 % 5 == 1 ? 1 : 0 }
        let mask = try Tensor(shape: [4, 6], scalars: maskValues)
        let masked = (0..<24).filter { maskValues[$0] == 1 }.map { d[$0] * d[$0] }
        let pv = Variable(p, requiresGrad: true)
        let loss = try maskedMSELoss(pv, Variable(t), mask: mask)
        XCTAssertEqual(Double(loss.value.scalar), masked.reduce(0, +) / Double(masked.count), accuracy: 1e-6)
        try loss.backward()
        for i in 0..<24 where maskValues[i] == 0 { XCTAssertEqual(pv.grad!.scalars[i], 0) }
        XCTAssertEqual(try maskedMSELoss(Variable(p), Variable(t), mask: Tensor(zeros: [4, 6])).value.scalar, 0)
        XCTAssertThrowsError(try mseLoss(Variable(p), Variable(Tensor(zeros: [6, 4])))) { e in
            XCTAssertEqual("\(e)", "mseLoss: shape mismatch: [4, 6] vs [6, 4]")
        }
    }
}

final class TapeTests: XCTestCase {
    func testBackwardAccumulatesOverTwoCalls() throws {
        let w = Variable(randomTensor([3, 2], seed: 31), requiresGrad: true)
        try (w * w).sum().backward()
        let once = w.grad!.scalars
        try (w * w).sum().backward()
        let twice = w.grad!.scalars
        for (a, b) in zip(once, twice) { XCTAssertEqual(b, 2 * a, accuracy: 1e-6) }
        for (a, x) in zip(once, w.value.scalars) { XCTAssertEqual(a, 2 * x, accuracy: 1e-6) }
    }

    func testNoGradRecordsNothingAndDetachedStopsGradients() throws {
        let w = Variable(randomTensor([4], seed: 32), requiresGrad: true)
        let y = try noGrad { try (w * w + 1).sum() }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertTrue(y.isLeaf)
        XCTAssertThrowsError(try y.backward())
        let z = try (w * w.detached()).sum()
        try z.backward()
        for (g, x) in zip(w.grad!.scalars, w.value.scalars) { XCTAssertEqual(g, x, accuracy: 1e-6) }   // not 2x
    }
}
