import Foundation
import XCTest
import LucidAutograd
@testable import LucidCore
@testable import LucidNN

/// The convolution planner on the U-Nets Lucid ships: every convolution of a training step
/// (forward, input and weight gradients, strided and transposed ones) gets a method that
/// applies to it, and the measured plans train exactly like the heuristic ones (up to rounding).
final class UNetPlanTests: XCTestCase {
    /// Loss and every parameter gradient of one step of `config` on a fixed batch, planned by `mode`.
    private func step(_ config: UNetConfig, input: [Int], mode: ConvPlanner.Mode) throws
        -> (loss: Float, grads: [String: [Float]], plans: [(geometry: ConvGeometry, direction: ConvDirection, method: ConvMethod)]) {
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

    func testPlannerPicksAValidMethodForEveryConvolutionOfTheShippedUNets() throws {
        let (savedMode, savedFolder) = (ConvPlanner.mode, Wisdom.folder)
        Wisdom.folder = nil
        defer { ConvPlanner.mode = savedMode; Wisdom.folder = savedFolder; ConvPlanner.clearPlans() }
        for (name, config, input) in [("care2D", UNetConfig.care2D, [2, 1, 16, 16]), ("unet3D", .unet3D, [1, 1, 8, 16, 16]),
                                      ("fnet3D", .fnet3D, [1, 1, 16, 16, 16])] {
            let measured = try step(config, input: input, mode: .measure)
            var directions = Set<ConvDirection>()
            var strided = false
            for plan in measured.plans {
                let valid = ConvPlanner.candidates(plan.geometry, plan.direction)
                XCTAssertTrue(valid.contains(plan.method), "\(name): \(plan.method) for \(ConvPlanner.key(plan.geometry, plan.direction, threads: 1))")
                directions.insert(plan.direction)
                strided = strided || plan.geometry.sD > 1 || plan.geometry.sH > 1
            }
            XCTAssertEqual(directions, Set(ConvDirection.allCases), name)
            XCTAssertEqual(strided, config.pooling == .strideConv, name)
            // Every convolution layer was planned: at least one forward plan per distinct layer shape.
            XCTAssertGreaterThanOrEqual(measured.plans.filter { $0.direction == .forward }.count, 2 * config.depth + 2, name)

            let estimated = try step(config, input: input, mode: .estimate)
            XCTAssertEqual(Double(measured.loss), Double(estimated.loss), accuracy: 1e-5 * max(1, Double(abs(estimated.loss))), name)
            XCTAssertEqual(Set(measured.grads.keys), Set(estimated.grads.keys))
            for (param, g) in estimated.grads {
                let m = measured.grads[param]!
                let scale = g.map { abs($0) }.max()! + 1e-6
                let worst = zip(g, m).map { abs($0 - $1) }.max()!
                XCTAssertLessThan(worst / scale, 1e-3, "\(name) \(param)")
            }
        }
    }
}
