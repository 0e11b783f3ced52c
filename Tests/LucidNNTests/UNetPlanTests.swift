import Foundation
import XCTest
import LucidAutograd
@testable import LucidCore
@testable import LucidNN

/// The convolution planner on the U-Nets Lucid ships: every convolution of a training step
/// (forward, input and weight gradients, strided and transposed ones) gets a method that
/// applies to it and computes what the heuristic's method computes; the measured plans train
/// like the heuristic ones up to rounding.
final class UNetPlanTests: XCTestCase {
    typealias Plan = (geometry: ConvGeometry, direction: ConvDirection, method: ConvMethod)

    /// Loss and every parameter gradient of one step of `config` on a fixed batch, planned by `mode`.
    private func step(_ config: UNetConfig, input: [Int], mode: ConvPlanner.Mode) throws
        -> (loss: Float, grads: [String: [Float]], plans: [Plan]) {
        ConvPlanner.mode = mode
        ConvPlanner.clearPlans()
        var rng = RandomGenerator(seed: 5)
        let net = try UNet(config, rng: &rng)
        let x = Variable(Tensor.randomUniform(input, rng: &rng))
        let target = Variable(Tensor.randomUniform([input[0], config.outChannels] + input.dropFirst(2), rng: &rng))
        let loss = try mseLoss(net(x), target)
        try loss.backward()
        var grads: [String: [Float]] = [:]
        for (name, p) in net.namedParameters { grads[name] = p.grad?.scalars }
        return (loss.value.scalars[0], grads, ConvPlanner.planLog)
    }

    /// The largest difference between the plan's method and the heuristic's on random data,
    /// relative to the largest output.
    private func disagreement(_ plan: Plan, rng: inout RandomGenerator) -> Float {
        let g = plan.geometry
        let x = Tensor.randomUniform([g.batch, g.cin, g.iD, g.iH, g.iW], low: -1, high: 1, rng: &rng)
        let w = Tensor.randomUniform([g.cout, g.cin, g.kD, g.kH, g.kW], low: -1, high: 1, rng: &rng)
        let gy = Tensor.randomUniform([g.batch, g.cout, g.oD, g.oH, g.oW], low: -1, high: 1, rng: &rng)
        func output(_ method: ConvMethod) -> [Float] {
            switch plan.direction {
            case .forward:
                var y = Tensor(ones: gy.shape)
                y.withUnsafeMutableBufferPointer {
                    ConvKernels.forward(g, x: x.storage.base, weight: ConvWeight(w: w.storage.base, cout: g.cout, cin: g.cin, taps: g.taps, flipped: false),
                                        bias: nil, y: $0.baseAddress!, method: method)
                }
                return y.scalars
            case .inputGradient:
                var dx = Tensor(ones: x.shape)
                dx.withUnsafeMutableBufferPointer { ConvKernels.backwardData(g, dy: gy.storage.base, weight: w.storage.base, dx: $0.baseAddress!, method: method) }
                return dx.scalars
            case .weightGradient:
                var dw = Tensor(ones: w.shape)
                dw.withUnsafeMutableBufferPointer { ConvKernels.backwardWeight(g, dy: gy.storage.base, x: x.storage.base, dw: $0.baseAddress!, method: method) }
                return dw.scalars
            }
        }
        let chosen = output(plan.method), reference = output(ConvPlanner.heuristic(g, plan.direction))
        return zip(chosen, reference).map { abs($0 - $1) }.max()! / reference.map { abs($0) }.max()!
    }

    func testPlannerPicksAValidMethodForEveryConvolutionOfTheShippedUNets() throws {
        let (savedMode, savedFolder) = (ConvPlanner.mode, Wisdom.folder)
        Wisdom.folder = nil
        defer { ConvPlanner.mode = savedMode; Wisdom.folder = savedFolder; ConvPlanner.clearPlans() }
        var rng = RandomGenerator(seed: 8)
        // fnet3D's BatchNorm normalizes 2 values a channel at its bottom level, which turns the
        // rounding differences of one convolution into percent in some gradients: its whole-net
        // gradients are not compared (each of its convolutions is, below).
        for (name, config, input, compareGradients) in [("care2D", UNetConfig.care2D, [2, 1, 16, 16], true),
                                                        ("unet3D", .unet3D, [1, 1, 8, 16, 16], true),
                                                        ("fnet3D", .fnet3D, [2, 1, 16, 16, 16], false)] {
            let measured = try step(config, input: input, mode: .measure)
            var directions = Set<ConvDirection>()
            var strided = false
            for plan in measured.plans {
                let label = "\(name): \(plan.method) for \(ConvPlanner.key(plan.geometry, plan.direction, threads: 1))"
                XCTAssertTrue(ConvPlanner.candidates(plan.geometry, plan.direction).contains(plan.method), label)
                directions.insert(plan.direction)
                strided = strided || plan.geometry.sD > 1 || plan.geometry.sH > 1
                // The chosen method computes what the heuristic's computes, on this geometry.
                if plan.method != ConvPlanner.heuristic(plan.geometry, plan.direction) {
                    XCTAssertLessThan(disagreement(plan, rng: &rng), 1e-5, label)
                }
            }
            XCTAssertEqual(directions, Set(ConvDirection.allCases), name)
            XCTAssertEqual(strided, config.pooling == .strideConv, name)
            // Every convolution layer was planned: at least one forward plan per distinct layer shape.
            XCTAssertGreaterThanOrEqual(measured.plans.filter { $0.direction == .forward }.count, 2 * config.depth + 2, name)

            let estimated = try step(config, input: input, mode: .estimate)
            XCTAssertEqual(Double(measured.loss), Double(estimated.loss), accuracy: 1e-5 * max(1, Double(abs(estimated.loss))), name)
            XCTAssertEqual(Set(measured.grads.keys), Set(estimated.grads.keys))
            guard compareGradients else { continue }
            for (param, g) in estimated.grads {
                let m = measured.grads[param]!
                let scale = g.map { abs($0) }.max()!
                let worst = zip(g, m).map { abs($0 - $1) }.max()!
                XCTAssertLessThan(worst / scale, 1e-4, "\(name) \(param)")
            }
        }
    }
}
