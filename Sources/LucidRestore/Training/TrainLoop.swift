import Foundation
import LucidAutograd
import LucidCore
import LucidNN

/// Why a training run ended.
public enum TrainingStop: String, Sendable {
    /// All `training.steps` were done.
    case completed
    /// The validation loss stopped improving (`training.early_stopping`).
    case earlyStopped = "early stopping"
    /// A stop was requested (SIGINT); the state was saved for `--resume`.
    case interrupted
}

/// Training stopped for a reason the user must act on; the message is one line.
public struct TrainingError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public var description: String { message }
}

/// What a checkpoint saves of a run besides weights and optimizer state, so that `--resume`
/// continues exactly.
public struct TrainingProgress: Sendable {
    /// Optimizer steps done.
    public var step = 0
    /// Lowest validation loss so far and its step.
    public var bestValidationLoss: Double?
    public var bestStep: Int?
    /// Validations since the validation loss last improved.
    public var validationsWithoutImprovement = 0
    /// The plateau schedule's state (`schedule: plateau` only).
    public var plateau: ReduceLROnPlateau?
    /// Training seconds of earlier runs of this checkpoint.
    public var elapsedBefore = 0.0
    /// The step of the last committed checkpoint.
    public var savedStep = 0
}

/// One finished optimizer step, as callbacks see it.
public struct StepRecord {
    /// Steps done (1-based number of this step).
    public var step: Int
    public var loss: Float
    public var learningRate: Double
    /// The validation made after this step, if any.
    public var validation: ValidationResult?
    /// Whether that validation improved on the best so far.
    public var improved: Bool
    /// Whether a checkpoint is due (a validation step, even without validation patches).
    public var checkpointDue: Bool
}

/// Something that follows a training run: metrics, checkpoints, early stopping, progress.
/// Every method has a default that does nothing.
public protocol TrainingCallback: AnyObject {
    /// Before step `step` (1-based) runs.
    func stepWillStart(_ loop: TrainLoop, step: Int) throws
    /// The loss of the step about to be back-propagated; throw to stop (the NaN guard).
    func lossComputed(_ loop: TrainLoop, loss: Float) throws
    /// After the optimizer update (and the validation, when one was due).
    func stepEnded(_ loop: TrainLoop, _ record: StepRecord) throws
    /// After the last step, whatever stopped the run.
    func runEnded(_ loop: TrainLoop, stop: TrainingStop) throws
    /// When the run failed with an error (flush what can be kept).
    func runFailed(_ loop: TrainLoop)
}

extension TrainingCallback {
    public func stepWillStart(_ loop: TrainLoop, step: Int) throws {}
    public func lossComputed(_ loop: TrainLoop, loss: Float) throws {}
    public func stepEnded(_ loop: TrainLoop, _ record: StepRecord) throws {}
    public func runEnded(_ loop: TrainLoop, stop: TrainingStop) throws {}
    public func runFailed(_ loop: TrainLoop) {}
}

/// Combines the gradients of data-parallel processes between `backward` and the optimizer
/// step; a single process uses `LocalGradients`.
public protocol GradientReducer {
    /// Replaces every parameter's gradient by its mean over the processes.
    func reduce(_ parameters: [(name: String, parameter: Variable)]) throws
}

/// One process: the gradients are already the batch's.
public struct LocalGradients: GradientReducer {
    public init() {}
    public func reduce(_ parameters: [(name: String, parameter: Variable)]) throws {}
}

/// The optimisation loop: batch → loss → backward → gradient reduction → clipping → update,
/// with a validation every `validateEvery` steps, and callbacks around each step.
///
/// Every step draws its batch, masks and augmentation from `stepGenerator(seed:step:rank:)`,
/// so a run resumed from its checkpoint continues with exactly the losses of an uninterrupted one.
public final class TrainLoop {
    public let model: any ImageModel
    public let optimizer: Optimizer
    public let method: any RestorationMethod
    public let data: TrainingData
    public let training: TrainingRecipe
    /// The run's state; callbacks read it, the checkpointer saves it.
    public var progress: TrainingProgress
    public var callbacks: [any TrainingCallback] = []
    public var reducer: any GradientReducer = LocalGradients()
    /// This process's index among data-parallel processes (0 alone).
    public var rank = 0
    /// Polled before every step; true ends the run as `interrupted`.
    public var stopRequested: () -> Bool = { false }
    /// Set by a callback to end the run after the current step.
    public var stop: TrainingStop?

    let validator: Validator
    private let seed: UInt64
    /// Where this run started and when.
    public let startStep: Int
    private var started = Date()

    init(model: any ImageModel, optimizer: Optimizer, method: any RestorationMethod, data: TrainingData,
         training: TrainingRecipe, progress: TrainingProgress, validator: Validator) {
        self.model = model
        self.optimizer = optimizer
        self.method = method
        self.data = data
        self.training = training
        self.progress = progress
        self.validator = validator
        seed = UInt64(truncatingIfNeeded: training.seed)
        startStep = progress.step
    }

    /// The generator of step `step` (0-based) on process `rank`: batch sampling, masking and
    /// augmentation. Rank 0's stream depends on (seed, step) alone.
    public static func stepGenerator(seed: UInt64, step: Int, rank: Int = 0) -> RandomGenerator {
        RandomGenerator(seed: seed ^ (UInt64(step + 1) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(rank) &* 0xD1B5_4A32_D192_ED03))
    }

    /// Training seconds, this run's and earlier ones'.
    public var elapsed: Double { progress.elapsedBefore + Date().timeIntervalSince(started) }

    /// Training patches per second in this run (data, forward, backward and update).
    public var patchesPerSecond: Double {
        let s = Date().timeIntervalSince(started)
        return s > 0 ? Double((progress.step - startStep) * training.batch) / s : 0
    }

    /// Whether a validation set exists.
    public var validates: Bool { data.validationSize > 0 }

    /// Runs until `training.steps`, a stop request or a callback's stop; returns why it ended.
    public func run() throws -> TrainingStop {
        started = Date()
        do {
            let reason = try loop()
            for c in callbacks { try c.runEnded(self, stop: reason) }
            return reason
        } catch {
            for c in callbacks { c.runFailed(self) }
            throw error
        }
    }

    private func loop() throws -> TrainingStop {
        let t = training
        while progress.step < t.steps {
            for c in callbacks { try c.stepWillStart(self, step: progress.step + 1) }
            if stopRequested() { return .interrupted }
            let lr = t.schedule.learningRate(base: t.lr, at: progress.step, totalSteps: t.steps,
                                             plateauRate: progress.plateau?.learningRate)
            optimizer.learningRate = lr
            var rng = TrainLoop.stepGenerator(seed: seed, step: progress.step, rank: rank)
            let batch = data.batch(size: t.batch, rng: &rng)
            model.zeroGrad()
            let loss = try method.loss(model, input: batch.input, target: batch.target, step: progress.step, rng: &rng)
            let value = loss.value.scalars[0]
            for c in callbacks { try c.lossComputed(self, loss: value) }
            try loss.backward()
            try reducer.reduce(optimizer.parameters)
            if t.clipNorm > 0 {
                do { try GradientClipping.clipByGlobalNorm(model.parameters, maxNorm: Float(t.clipNorm)) } catch {
                    throw TrainingError(message: "non-finite gradients at step \(progress.step + 1); stopped. The last good checkpoint (step \(progress.savedStep)) is kept; try a lower training.lr")
                }
            }
            try optimizer.step()
            progress.step += 1

            let due = t.validateEvery > 0 && (progress.step % t.validateEvery == 0 || progress.step == t.steps)
            var record = StepRecord(step: progress.step, loss: value, learningRate: lr, validation: nil, improved: false,
                                    checkpointDue: due)
            if due && validates {
                let v = try validator.validate(model)
                record.validation = v
                if let best = progress.bestValidationLoss, v.loss >= best - t.earlyStopping.minDelta {
                    progress.validationsWithoutImprovement += 1
                } else if v.loss.isFinite {
                    progress.bestValidationLoss = v.loss
                    progress.bestStep = progress.step
                    progress.validationsWithoutImprovement = 0
                    record.improved = true
                }
                progress.plateau?.update(metric: v.loss)
            }
            for c in callbacks { try c.stepEnded(self, record) }
            if let stop { return stop }
        }
        return .completed
    }
}
