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
    /// Called during `backward` as soon as `parameter`'s gradient is final, so that sending it
    /// can overlap the rest of the pass.
    func gradientReady(_ parameter: Variable) throws
    /// Replaces every parameter's gradient by its mean over the processes.
    func reduce(_ parameters: [(name: String, parameter: Variable)]) throws
}

/// One process: the gradients are already the batch's.
public struct LocalGradients: GradientReducer {
    public init() {}
    public func gradientReady(_ parameter: Variable) throws {}
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
    /// The data-parallel processes this loop trains with (nil: this process alone). Each takes
    /// its rows of every batch (see `shareOfBatch`); process 0 alone validates and sends the
    /// result to the others.
    public var group: (any ProcessGroup)?
    /// This process's index among data-parallel processes (0 alone).
    public var rank: Int { group?.rank ?? 0 }
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

    /// The generator of step `step` (0-based): batch sampling, masking and augmentation. Every
    /// data-parallel process draws the whole batch from it and keeps its rows, so the data a
    /// run sees does not depend on the number of processes.
    public static func stepGenerator(seed: UInt64, step: Int) -> RandomGenerator {
        RandomGenerator(seed: seed ^ (UInt64(step + 1) &* 0x9E37_79B9_7F4A_7C15))
    }

    /// The rows of a `batch`-patch batch process `rank` of `size` trains on: contiguous, as
    /// equal as possible (the first `batch % size` processes take one more).
    public static func shareOfBatch(_ batch: Int, rank: Int, size: Int) -> Range<Int> {
        let base = batch / size, extra = batch % size
        let start = rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
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
        let rows = group.map { TrainLoop.shareOfBatch(t.batch, rank: $0.rank, size: $0.size) }
        while progress.step < t.steps {
            for c in callbacks { try c.stepWillStart(self, step: progress.step + 1) }
            if try anyProcess(stopRequested()) { return .interrupted }
            let lr = t.schedule.learningRate(base: t.lr, at: progress.step, totalSteps: t.steps,
                                             plateauRate: progress.plateau?.learningRate)
            optimizer.learningRate = lr
            var rng = TrainLoop.stepGenerator(seed: seed, step: progress.step)
            let batch = data.batch(size: t.batch, rows: rows, rng: &rng)
            model.zeroGrad()
            // With a group, each process's loss is its rows' share of the whole batch's loss
            // (see `Autograd.splitBatch`); their mean is the whole batch's loss.
            let value = try Autograd.splitBatch(over: group) { () throws -> Float in
                let loss = try method.loss(model, input: batch.input, target: batch.target, step: progress.step,
                                           firstSample: rows?.lowerBound ?? 0, rng: &rng)
                let value = try meanOverProcesses(loss.value.scalars[0])
                for c in callbacks { try c.lossComputed(self, loss: value) }
                try loss.backward(gradientReady: reducer.gradientReady)
                return value
            }
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
                let v = try validate()
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

    /// Whether `flag` is set in any process.
    private func anyProcess(_ flag: Bool) throws -> Bool {
        guard let group else { return flag }
        return try group.sum([flag ? 1 : 0])[0] > 0
    }

    /// The mean of `value` over the processes.
    private func meanOverProcesses(_ value: Float) throws -> Float {
        guard let group else { return value }
        return Float(try group.sum([Double(value)])[0] / Double(group.size))
    }

    /// Process 0's validation, on every process.
    private func validate() throws -> ValidationResult {
        guard let group else { return try validator.validate(model) }
        let local = group.rank == 0 ? try validator.validate(model) : nil
        let values = try group.broadcast(local.map { [$0.loss] + $0.metrics } ?? Array(repeating: 0, count: 1 + validator.columns.count),
                                         from: 0)
        return ValidationResult(loss: values[0], metrics: Array(values.dropFirst()))
    }
}
