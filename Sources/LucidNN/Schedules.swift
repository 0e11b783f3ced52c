import Foundation
import LucidCore

/// A learning-rate schedule (`training.schedule` of a recipe): a kind, its knobs, and a linear
/// warm-up shared by every kind.
public struct LearningRateSchedule: Codable, Equatable, Sendable {
    /// Schedule kinds.
    public enum Kind: String, CaseIterable, Codable, Sendable {
        /// Constant learning rate.
        case none
        /// Cosine decay from the base rate to `minimum` over the steps after the warm-up
        /// (PyTorch's cosine annealing).
        case cosine
        /// Multiply by `factor` every `every` steps (PyTorch's `StepLR`).
        case step
        /// Multiply by `factor` after `patience` validations without improvement (CSBDeep's
        /// default; the state is a `ReduceLROnPlateau`).
        case plateau
    }
    public var kind: Kind
    /// Decay factor for `step` and `plateau` (0 < factor < 1).
    public var factor: Double
    /// Step interval for `step`.
    public var every: Int
    /// Validations without improvement before `plateau` lowers the rate.
    public var patience: Int
    /// Linear warm-up steps: the rate rises from base/warmup to base over them.
    public var warmup: Int
    /// The rate `cosine` ends at.
    public var minimum: Double

    public init(kind: Kind = .plateau, factor: Double = 0.5, every: Int = 1000, patience: Int = 10, warmup: Int = 0,
                minimum: Double = 0) {
        self.kind = kind
        self.factor = factor
        self.every = every
        self.patience = patience
        self.warmup = warmup
        self.minimum = minimum
    }

    /// The rate at step `t` (0-based) of a run of `totalSteps`, for a base rate `base`;
    /// `plateauRate` is the plateau state's current rate (`plateau` only).
    public func learningRate(base: Double, at t: Int, totalSteps: Int, plateauRate: Double? = nil) -> Double {
        // The warm-up of a cosine schedule is part of it: the decay spans the steps after it.
        let warm = kind == .cosine ? min(warmup, max(0, totalSteps - 1)) : warmup
        let ramp = t < warm ? Double(t + 1) / Double(warm) : 1
        switch kind {
        case .none: return base * ramp
        case .step: return base * pow(factor, Double(max(0, t) / max(1, every))) * ramp
        case .plateau: return (plateauRate ?? base) * ramp
        case .cosine:
            if t < warm { return base * ramp }
            let progress = min(1, Double(t - warm) / Double(max(1, totalSteps - warm)))
            return minimum + (base - minimum) * (1 + cos(Double.pi * progress)) / 2
        }
    }

    /// The state a `plateau` schedule keeps between validations, starting at `base`; nil otherwise.
    public func plateauState(base: Double) throws -> ReduceLROnPlateau? {
        kind == .plateau ? try ReduceLROnPlateau(learningRate: base, factor: factor, patience: patience) : nil
    }

    /// Throws for a factor outside (0, 1), a non-positive interval or a negative warm-up or minimum.
    public func validate() throws {
        guard factor > 0, factor < 1, every > 0, patience >= 0, warmup >= 0, minimum >= 0 else {
            throw TensorError.invalidArgument(op: "LearningRateSchedule", detail: "need 0 < factor < 1 (got \(factor)), every > 0 (\(every)), patience, warmup and minimum ≥ 0 (\(patience), \(warmup), \(minimum))")
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
