import Foundation
import LucidAutograd
import LucidCore

/// A diffusion model's process around its network: the noise schedule, what the network
/// predicts, how `x_t` is scaled on the way in and how the noise level is fed to it.
///
/// The network sees `x_t / √(α_t² + σ_t²)` (unit scale for VP schedules; VE inputs, whose
/// noise grows to `sigmaMax`, are brought back to the data's scale), concatenated with the
/// condition image when there is one, and the noise-level input `1000·t/T`.
/// ```swift
/// let process = DiffusionProcess(schedule: try NoiseSchedule(kind: .cosine, timesteps: 1000), prediction: .v)
/// let loss = try process.loss(net, x0: clean, condition: degraded, rng: &rng)      // training
/// let x0hat = try process.denoise(net, xt, step: 500, condition: degraded)          // sampling
/// ```
public struct DiffusionProcess: Sendable {
    public var schedule: NoiseSchedule
    public var prediction: DiffusionPrediction

    public init(schedule: NoiseSchedule, prediction: DiffusionPrediction) {
        self.schedule = schedule
        self.prediction = prediction
    }

    /// The factor `x_t` is multiplied by before the network: `1/√(α_t² + σ_t²)`.
    public func inputScale(_ step: Int) -> Double {
        1 / (schedule.alpha[step] * schedule.alpha[step] + schedule.sigma[step] * schedule.sigma[step]).squareRoot()
    }

    /// The network's noise-level input for each sample's step: `1000·t/T`.
    public func levelInput(_ steps: [Int]) -> Tensor {
        let scale = 1000 / Double(schedule.timesteps)
        return try! Tensor(shape: [steps.count], scalars: steps.map { Float(Double($0) * scale) })
    }

    /// The network's input: scaled `x_t` with the condition concatenated on the channel axis.
    public func networkInput(_ xt: Tensor, steps: [Int], condition: Tensor?) throws -> Tensor {
        let scale = steps.map { inputScale($0) }
        let scaled = try NoiseSchedule.combine(xt, xt, a: scale, b: Array(repeating: 0, count: steps.count), op: "Diffusion.networkInput")
        guard let condition else { return scaled }
        guard condition.shape[0] == xt.shape[0], Array(condition.shape.dropFirst(2)) == Array(xt.shape.dropFirst(2)) else {
            throw TensorError.shapeMismatch(op: "Diffusion", detail: "condition \(condition.shape) does not match x_t \(xt.shape)")
        }
        return try Tensor.concat([scaled, condition], axis: 1)
    }

    /// The denoising loss of a batch of clean `x0`: every sample at a step drawn uniformly from
    /// `1 … T`, noised, and the network's output against the prediction target (mean squared error).
    public func loss(_ net: any ConditionalLayer, x0: Tensor, condition: Tensor?, rng: inout RandomGenerator) throws -> Variable {
        let steps = (0..<x0.shape[0]).map { _ in 1 + rng.int(below: schedule.timesteps) }
        return try loss(net, x0: x0, condition: condition, steps: steps, noise: Tensor.randomNormal(x0.shape, rng: &rng))
    }

    /// The loss at given steps and noise.
    public func loss(_ net: any ConditionalLayer, x0: Tensor, condition: Tensor?, steps: [Int], noise: Tensor) throws -> Variable {
        let xt = try schedule.noised(x0, noise: noise, steps: steps)
        let output = try net(Variable(networkInput(xt, steps: steps, condition: condition)), condition: Variable(levelInput(steps)))
        let target = try prediction.target(x0: x0, noise: noise, alpha: steps.map { schedule.alpha[$0] },
                                           sigma: steps.map { schedule.sigma[$0] })
        return try mseLoss(output, Variable(target))
    }

    /// The network's estimate of `x₀` from `x_t` at `step` (every sample of the batch), without
    /// recording gradients.
    public func denoise(_ net: any ConditionalLayer, _ xt: Tensor, step: Int, condition: Tensor?) throws -> Tensor {
        let steps = Array(repeating: step, count: xt.shape[0])
        let output = try noGrad {
            try net(Variable(networkInput(xt, steps: steps, condition: condition)), condition: Variable(levelInput(steps))).value
        }
        return try prediction.denoised(output, xt: xt, alpha: steps.map { schedule.alpha[$0] }, sigma: steps.map { schedule.sigma[$0] })
    }
}
