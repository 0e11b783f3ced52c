import Foundation
import LucidCore

/// A learning-rate schedule as a function of the step (or epoch) index, starting at 0.
public enum LearningRateSchedule: Codable, Equatable, Sendable {
    /// The base rate throughout.
    case constant
    /// PyTorch's `StepLR`: `base · gamma^⌊t / stepSize⌋`.
    case step(stepSize: Int, gamma: Double)
    /// Linear warm-up from `base / warmupSteps` to `base` over `warmupSteps`, then PyTorch's
    /// cosine annealing from `base` to `minimum` over the remaining `totalSteps − warmupSteps`
    /// (held at `minimum` afterwards).
    case cosine(totalSteps: Int, minimum: Double = 0, warmupSteps: Int = 0)

    /// The rate at step `t` for a base rate `base`.
    public func learningRate(base: Double, at t: Int) -> Double {
        switch self {
        case .constant:
            return base
        case let .step(stepSize, gamma):
            return base * pow(gamma, Double(max(0, t) / max(1, stepSize)))
        case let .cosine(total, minimum, warmup):
            if t < warmup { return base * Double(t + 1) / Double(warmup) }
            let span = max(1, total - warmup)
            let progress = min(1, Double(t - warmup) / Double(span))
            return minimum + (base - minimum) * (1 + cos(Double.pi * progress)) / 2
        }
    }

    /// Throws for non-positive step sizes or totals and warm-ups longer than the schedule.
    public func validate() throws {
        switch self {
        case .constant: return
        case let .step(stepSize, gamma):
            guard stepSize > 0, gamma > 0 else {
                throw TensorError.invalidArgument(op: "LearningRateSchedule.step", detail: "stepSize \(stepSize) and gamma \(gamma) must be > 0")
            }
        case let .cosine(total, minimum, warmup):
            guard total > 0, warmup >= 0, warmup < total, minimum >= 0 else {
                throw TensorError.invalidArgument(op: "LearningRateSchedule.cosine", detail: "need totalSteps > warmupSteps ≥ 0 and minimum ≥ 0 (got \(total), \(warmup), \(minimum))")
            }
        }
    }
}

/// PyTorch's `ReduceLROnPlateau` (mode "min", relative threshold): multiplies the rate by
/// `factor` after more than `patience` evaluations without an improvement of `threshold`
/// (relative), then waits `cooldown` evaluations. Codable, so a checkpoint can store it.
public struct ReduceLROnPlateau: Codable, Equatable, Sendable {
    public var factor: Double
    public var patience: Int
    public var threshold: Double
    public var cooldown: Int
    public var minimum: Double
    /// Current learning rate.
    public private(set) var learningRate: Double
    /// Best metric seen so far.
    public private(set) var best: Double = .infinity
    /// Evaluations since the last improvement.
    public private(set) var badEvaluations = 0
    private var cooldownLeft = 0

    public init(learningRate: Double, factor: Double = 0.1, patience: Int = 10, threshold: Double = 1e-4,
                cooldown: Int = 0, minimum: Double = 0) throws {
        guard factor > 0, factor < 1, patience >= 0, threshold >= 0, cooldown >= 0, minimum >= 0 else {
            throw TensorError.invalidArgument(op: "ReduceLROnPlateau", detail: "need 0 < factor < 1 (got \(factor)), patience/cooldown ≥ 0 (\(patience), \(cooldown)), threshold/minimum ≥ 0 (\(threshold), \(minimum))")
        }
        self.learningRate = learningRate
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.cooldown = cooldown
        self.minimum = minimum
    }

    /// Records one evaluation of the monitored metric (lower is better); returns the new rate.
    @discardableResult
    public mutating func update(metric: Double) -> Double {
        if metric < best * (1 - threshold) {
            best = metric
            badEvaluations = 0
        } else {
            badEvaluations += 1
        }
        if cooldownLeft > 0 {
            cooldownLeft -= 1
            badEvaluations = 0
        }
        if badEvaluations > patience {
            let reduced = max(learningRate * factor, minimum)
            if learningRate - reduced > 1e-8 { learningRate = reduced }
            cooldownLeft = cooldown
            badEvaluations = 0
        }
        return learningRate
    }
}
