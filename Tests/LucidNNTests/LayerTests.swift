import Foundation
import XCTest
import LucidAutograd
import LucidCore
@testable import LucidNN

final class LayerTests: XCTestCase {
    func testConvLayerMatchesNaiveLoopAndChecksInput() throws {
        var rng = RandomGenerator(seed: 11)
        let layer = try Conv(dims: 2, inChannels: 2, outChannels: 3, kernel: [3, 2], stride: [2, 1], padding: [1, 0], rng: &rng)
        XCTAssertEqual(layer.weight.shape, [3, 2, 3, 2])
        let x = Tensor.randomNormal([2, 2, 5, 4], rng: &rng)
        let y = try layer(Variable(x)).value
        // Naive reference: out = floor((5 + 2 − 3)/2) + 1 = 3 rows, 4 − 2 + 1 = 3 columns.
        XCTAssertEqual(y.shape, [2, 3, 3, 3])
        let w = layer.weight.value, b = layer.bias!.value
        for n in 0..<2 { for o in 0..<3 { for i in 0..<3 { for j in 0..<3 {
            var s = Double(b[o])
            for c in 0..<2 { for ki in 0..<3 { for kj in 0..<2 {
                let r = i * 2 - 1 + ki, q = j + kj
                if r >= 0 && r < 5 { s += Double(w[o, c, ki, kj]) * Double(x[n, c, r, q]) }
            } } }
            XCTAssertEqual(Double(y[n, o, i, j]), s, accuracy: 1e-5)
        } } } }
        XCTAssertThrowsError(try layer(Variable(Tensor(zeros: [1, 2, 4, 4, 4])))) { e in
            XCTAssertEqual("\(e)", "Conv2d: shape mismatch: expected input [N, 2, _, _], got [1, 2, 4, 4, 4]")
        }
        XCTAssertThrowsError(try Conv(dims: 2, inChannels: 1, outChannels: 1, kernel: [3, 3, 3], rng: &rng)) { e in
            XCTAssertTrue("\(e)".contains("kernel [3, 3, 3]"), "\(e)")
        }
    }

    func testPyTorchInitializationBounds() throws {
        var rng = RandomGenerator(seed: 1)
        let conv = try Conv(dims: 2, inChannels: 16, outChannels: 64, kernel: 3, rng: &rng)
        let bound = 1 / Float(16 * 9).squareRoot()
        let w = conv.weight.value.scalars
        XCTAssertLessThanOrEqual(w.map(abs).max()!, bound)
        // U(−b, b) has standard deviation b/√3; 9216 draws pin it to about 1 %.
        let std = (w.reduce(0) { $0 + Double($1 * $1) } / Double(w.count)).squareRoot()
        XCTAssertEqual(std, Double(bound) / 3.0.squareRoot(), accuracy: 0.03 * Double(bound))
        XCTAssertLessThanOrEqual(conv.bias!.value.scalars.map(abs).max()!, bound)
        let t = try ConvTranspose(dims: 3, inChannels: 8, outChannels: 4, kernel: 2, stride: 2, rng: &rng)
        XCTAssertEqual(t.weight.shape, [8, 4, 2, 2, 2])
        XCTAssertEqual(Initializers.fanIn(t.weight.shape), 4 * 8, "PyTorch takes fan-in from dim 1 of a transposed weight")
        XCTAssertLessThanOrEqual(t.weight.value.scalars.map(abs).max()!, 1 / Float(32).squareRoot())
        // Same seed, same weights.
        var r1 = RandomGenerator(seed: 5), r2 = RandomGenerator(seed: 5)
        XCTAssertEqual(try Linear(inFeatures: 7, outFeatures: 3, rng: &r1).weight.value.scalars,
                       try Linear(inFeatures: 7, outFeatures: 3, rng: &r2).weight.value.scalars)
    }

    func testLinearAndSequentialNames() throws {
        var rng = RandomGenerator(seed: 2)
        let seq = Sequential([try Linear(inFeatures: 4, outFeatures: 5, rng: &rng), ActivationLayer(.relu),
                              try Linear(inFeatures: 5, outFeatures: 2, bias: false, rng: &rng)])
        XCTAssertEqual(seq.namedParameters.map(\.name), ["0.weight", "0.bias", "2.weight"])
        XCTAssertEqual(seq.parameterCount, 4 * 5 + 5 + 10)
        let x = Tensor.randomNormal([3, 4], rng: &rng)
        let y = try seq(Variable(x)).value
        XCTAssertEqual(y.shape, [3, 2])
        let l0 = seq.layers[0] as! Linear, l2 = seq.layers[2] as! Linear
        for n in 0..<3 { for o in 0..<2 {
            var s = 0.0
            for h in 0..<5 {
                var a = Double(l0.bias!.value[h])
                for i in 0..<4 { a += Double(l0.weight.value[h, i]) * Double(x[n, i]) }
                s += max(a, 0) * Double(l2.weight.value[o, h])
            }
            XCTAssertEqual(Double(y[n, o]), s, accuracy: 1e-5)
        } }
        XCTAssertThrowsError(try seq(Variable(Tensor(zeros: [3, 5])))) { e in
            XCTAssertEqual("\(e)", "Linear: shape mismatch: expected input [..., 4], got [3, 5]")
        }
    }

    func testBatchNormBuffersTrainEvalAndStateDict() throws {
        let bn = try BatchNorm(channels: 3)
        XCTAssertEqual(bn.namedBuffers.map(\.name), ["running_mean", "running_var", "num_batches_tracked"])
        var rng = RandomGenerator(seed: 4)
        let x = Tensor.randomNormal([4, 3, 5, 5], mean: 2, std: 3, rng: &rng)
        _ = try bn(Variable(x))
        XCTAssertEqual(bn.statistics.batchesTracked, 1)
        // running_mean = 0.9·0 + 0.1·batch mean (channel 0).
        var m0 = 0.0
        for n in 0..<4 { for i in 0..<5 { for j in 0..<5 { m0 += Double(x[n, 0, i, j]) } } }
        XCTAssertEqual(Double(bn.statistics.mean[0]), 0.1 * m0 / 100, accuracy: 1e-5)

        bn.setTraining(false)
        let before = bn.statistics.mean.scalars
        let y = try bn(Variable(x)).value
        XCTAssertEqual(bn.statistics.mean.scalars, before, "eval mode must not update running stats")
        let rv = bn.statistics.variance[1], rm = bn.statistics.mean[1]
        XCTAssertEqual(y[0, 1, 2, 3], (x[0, 1, 2, 3] - rm) / (rv + 1e-5).squareRoot(), accuracy: 1e-5)

        let fresh = try BatchNorm(channels: 3)
        try fresh.loadStateDict(bn.stateDict())
        XCTAssertEqual(fresh.statistics.mean.scalars, bn.statistics.mean.scalars)
        XCTAssertEqual(fresh.statistics.batchesTracked, 1)
        XCTAssertThrowsError(try fresh.loadStateDict(["weight": Tensor(zeros: [3])])) { e in
            XCTAssertTrue("\(e)".contains("missing keys") && "\(e)".contains("running_mean"), "\(e)")
        }
        var wrong = bn.stateDict()
        wrong["running_var"] = Tensor(zeros: [4])
        XCTAssertThrowsError(try fresh.loadStateDict(wrong)) { e in
            XCTAssertEqual("\(e)", "loadStateDict: shape mismatch: 'running_var': checkpoint [4] vs module [3]")
        }
    }

    func testGroupAndInstanceNormLayers() throws {
        var rng = RandomGenerator(seed: 6)
        let x = Tensor.randomNormal([2, 4, 3, 3], mean: 1, std: 2, rng: &rng)
        let g = try GroupNorm(groups: 2, channels: 4)
        let y = try g(Variable(x)).value
        // Group 1 of sample 0 (channels 2, 3) is normalized to mean 0, variance 1.
        var s = 0.0, s2 = 0.0
        for c in 2..<4 { for i in 0..<3 { for j in 0..<3 { s += Double(y[0, c, i, j]); s2 += Double(y[0, c, i, j] * y[0, c, i, j]) } } }
        XCTAssertEqual(s / 18, 0, accuracy: 1e-5)
        XCTAssertEqual(s2 / 18, 1, accuracy: 1e-3)
        XCTAssertEqual(g.namedParameters.map(\.name), ["weight", "bias"])
        XCTAssertThrowsError(try GroupNorm(groups: 3, channels: 4))
        let inorm = try InstanceNorm(channels: 4)
        XCTAssertTrue(inorm.namedParameters.isEmpty, "PyTorch's InstanceNorm has no affine parameters by default")
        let z = try inorm(Variable(x)).value
        var t = 0.0
        for i in 0..<3 { for j in 0..<3 { t += Double(z[1, 3, i, j]) } }
        XCTAssertEqual(t / 9, 0, accuracy: 1e-5)
    }

    func testDropoutLayerTrainAndEval() throws {
        let d = try Dropout(probability: 0.25, seed: 3)
        let x = Tensor(ones: [4000])
        let y = try d(Variable(x)).value.scalars
        let zeros = y.filter { $0 == 0 }.count
        // Binomial(4000, 0.25): σ ≈ 27, so ±150 is over 5σ.
        XCTAssertEqual(Double(zeros), 1000, accuracy: 150)
        XCTAssertTrue(y.allSatisfy { $0 == 0 || abs($0 - 1 / 0.75) < 1e-6 })
        let seq = Sequential([d])
        seq.setTraining(false)
        XCTAssertEqual(try seq(Variable(x)).value.scalars, x.scalars)
        XCTAssertThrowsError(try Dropout(probability: 1)) { e in
            XCTAssertEqual("\(e)", "Dropout: invalid argument: probability 1.0 must lie in [0, 1)")
        }
    }

    /// The fused conv + (leaky) ReLU of `ConvBlock` equals the two separate operations, forward
    /// and backward, and passes a finite-difference check.
    func testFusedConvActivationMatchesSeparateOperations() throws {
        for (activation, slope) in [(Activation.relu, Float(0)), (.leakyReLU, 0.01)] {
            var rng = RandomGenerator(seed: 12)
            let c = try Conv(dims: 2, inChannels: 3, outChannels: 4, kernel: 3, stride: 2, padding: 1, rng: &rng)
            let block = ConvBlock(conv: c, norm: nil, normName: "norm", activation: activation)
            let x = Tensor.randomNormal([2, 3, 7, 5], rng: &rng)
            let seed = Tensor.randomNormal([2, 4, 4, 3], rng: &rng)
            let xf = Variable(x, requiresGrad: true)
            let yf = try block(xf)
            try yf.backward(seed: seed)
            let fused = (y: yf.value.scalars, x: xf.grad!.scalars, w: c.weight.grad!.scalars, b: c.bias!.grad!.scalars)
            c.zeroGrad()
            let xs = Variable(x, requiresGrad: true)
            let ys = leakyReLU(try conv(xs, weight: c.weight, bias: c.bias, stride: [2], padding: [1]), slope: slope)
            try ys.backward(seed: seed)
            XCTAssertEqual(fused.y, ys.value.scalars, "\(activation)")
            for (a, b) in zip(fused.x, xs.grad!.scalars) { XCTAssertEqual(a, b, accuracy: 1e-6) }
            for (a, b) in zip(fused.w, c.weight.grad!.scalars) { XCTAssertEqual(a, b, accuracy: 1e-5) }
            for (a, b) in zip(fused.b, c.bias!.grad!.scalars) { XCTAssertEqual(a, b, accuracy: 1e-5) }
            let report = try GradientCheck.run([x]) { v in try convLeakyReLU(v[0], weight: c.weight, bias: c.bias, stride: [2], padding: [1], slope: slope) }
            XCTAssertLessThan(report.maxError, 1e-2, "\(activation): \(report)")
        }
    }
}
