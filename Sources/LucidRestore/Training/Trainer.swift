import Foundation
import LucidAutograd
import LucidCore
import LucidImaging
import LucidNN

/// What a run did.
public struct TrainingSummary {
    /// The checkpoint folder.
    public var output: String
    /// Step the run started from (0, or the resumed checkpoint's step).
    public var startStep: Int
    /// Step reached.
    public var step: Int
    /// Training loss of each step this run made (steps `startStep + 1 … step`).
    public var losses: [Float]
    /// Validation losses measured this run, by step.
    public var validationLosses: [(step: Int, loss: Double)]
    /// The method's validation metrics (`metricColumns`) measured this run, by step.
    public var validationMetrics: [(step: Int, values: [Double])]
    /// Names of the validation metrics (columns of `metrics.csv`).
    public var metricColumns: [String]
    /// Lowest validation loss so far and its step (nil without validation data).
    public var bestValidationLoss: Double?
    public var bestStep: Int?
    public var stop: TrainingStop
    /// Training patches per second this run (data, forward, backward and update).
    public var patchesPerSecond: Double
    /// The noise model fitted for `data.vst` (nil without one).
    public var noiseModel: GeneralizedAnscombe? = nil
}

/// Set by `Trainer.requestStop()` and the SIGINT handler; read by the training loop.
nonisolated(unsafe) private var stopRequested: sig_atomic_t = 0

/// Trains a recipe's model and keeps its checkpoint folder (see `Checkpoint`) up to date: reads
/// the data, builds the method's model and the optimizer (or restores them with `resume`),
/// and runs a `TrainLoop` with the standard callbacks (NaN guard, metrics log, checkpoints,
/// early stopping, progress).
/// ```swift
/// let recipe = try Recipe.load(path: "noise2self.yaml")
/// let summary = try Trainer(recipe: recipe).run()
/// ```
public final class Trainer {
    public let recipe: Recipe
    /// The checkpoint folder.
    public let output: String
    /// Continue from the checkpoint in `output`.
    public let resume: Bool
    /// Show the progress bar (or periodic lines) on stderr.
    public var showProgress = true
    /// Callbacks run after the standard ones (reports, tests).
    public var extraCallbacks: [any TrainingCallback] = []
    /// The processes the run is split over (`mpirun`); nil: this process alone.
    public var dataParallel: DataParallel?
    /// Whether this process writes the checkpoint folder and the progress (process 0).
    public var writesFiles: Bool { (dataParallel?.group.rank ?? 0) == 0 }

    public init(recipe: Recipe, output: String? = nil, resume: Bool = false) {
        self.recipe = recipe
        self.output = output ?? recipe.output
        self.resume = resume
    }

    /// Asks a running loop to save and stop after the current step.
    public static func requestStop() { stopRequested = 1 }

    /// Makes SIGINT (Ctrl-C) request a clean stop; a second SIGINT ends the process at once.
    public static func installInterruptHandler() {
        signal(SIGINT) { _ in
            stopRequested = 1
            signal(SIGINT, SIG_DFL)
        }
    }

    /// Trains until the recipe's step count, early stopping or a stop request; saves the checkpoint.
    public func run() throws -> TrainingSummary {
        stopRequested = 0
        let t = recipe.training
        let seed = UInt64(truncatingIfNeeded: t.seed)
        try dataParallel?.check(batch: t.batch)
        // Rank 0 alone writes the folder, so it alone holds its lock.
        let lock = writesFiles ? try prepareOutput() : nil
        defer { withExtendedLifetime(lock) {} }

        let data = try TrainingData.load(recipe, seed: seed)
        let digests = try data.files.map(DataFileDigest.of)
        let method = try recipe.method.fitted(to: data)
        let config = try method.modelConfig(recipe, spatialRank: data.spatialRank, inChannels: data.inChannels,
                                            outChannels: data.outChannels)
        var initRNG = RandomGenerator(seed: seed)
        let model = try config.makeModel(rng: &initRNG)
        dataParallel?.seedDropout(model)
        let optimizer = try t.optimizer.make(parameters: model.namedParameters, learningRate: t.lr,
                                             weightDecay: t.weightDecay, momentum: t.momentum)
        var progress = TrainingProgress()
        progress.plateau = try t.schedule.plateauState(base: t.lr)
        var normalization = data.normalization, targetNormalization = data.targetNormalization
        var resumedNoiseModel: GeneralizedAnscombe?

        let metricsList = method.validationMetrics(outChannels: data.outChannels)
        let metrics = MetricsLog(path: joinPath(output, "metrics.csv"), metricColumns: metricsList.flatMap(\.columns))
        if resume {
            let ckpt = try Checkpoint.load(directory: output)
            try checkResumable(ckpt, digests: digests)
            try model.loadStateDict(try ckpt.weights(.last))
            try optimizer.importState(try ckpt.optimizerState())
            let m = ckpt.metadata
            if let plans = m.convolutionPlans { ConvPlanner.pin(plans) }
            progress.step = m.step
            progress.savedStep = m.step
            progress.bestValidationLoss = m.bestValidationLoss
            progress.bestStep = m.bestStep
            progress.validationsWithoutImprovement = m.training.validationsWithoutImprovement
            progress.elapsedBefore = m.training.elapsedSeconds
            progress.plateau = m.training.plateau
            normalization = m.normalization
            targetNormalization = m.targetNormalization
            resumedNoiseModel = m.noiseModel
            if writesFiles { try metrics.truncate(after: m.step) }
        } else if writesFiles {
            try recipe.save(in: output)
            try metrics.create()
        }

        let template = CheckpointMetadata(
            method: recipe.methodName, recipe: recipe.json(), model: config, normalization: normalization,
            targetNormalization: targetNormalization, axes: data.axes, spatialRank: data.spatialRank, step: 0,
            bestValidationLoss: nil, bestStep: nil, dataFiles: digests,
            training: TrainingState(seed: seed, learningRate: t.lr, plateau: nil, validationsWithoutImprovement: 0, elapsedSeconds: 0),
            pixelSize: recipe.data.pixelSize, sourcePixelSize: recipe.data.sourcePixelSize, signalChannels: data.signalChannels,
            noiseModel: resumedNoiseModel ?? data.noiseModel, targetIntensity: data.targetIntensity)
        let validator = Validator(method: method, data: data, batch: t.batch, seed: seed, metrics: metricsList)
        let loop = TrainLoop(model: model, optimizer: optimizer, method: method, data: data, training: t,
                             progress: progress, validator: validator)
        let history = TrainingHistory()
        loop.callbacks = try method.trainingCallbacks(for: model) + [NaNGuard(output: output)]
        if writesFiles {
            loop.callbacks += [metrics, Checkpointer(output: output, metrics: metrics, template: template), ReportWriter(output: output)]
        }
        loop.callbacks += [EarlyStopping(patience: t.earlyStopping.patience), history]
        if let dataParallel {
            loop.group = dataParallel.group
            loop.reducer = dataParallel.makeReducer(optimizer.parameters)
        }
        if showProgress && writesFiles && progress.step < t.steps {
            let from = progress.step > 0 ? " (from step \(progress.step))" : ""
            loop.callbacks.append(ProgressReporter(label: recipe.methodName + from, steps: t.steps - progress.step,
                                                   metrics: metricsList))
        }
        if showProgress, let model = data.noiseModel, !resume {
            FileHandle.standardError.write(Data("data.vst: \(model.summary)\n".utf8))
        }
        loop.callbacks += extraCallbacks
        loop.stopRequested = { stopRequested != 0 }

        let stop = try loop.run()
        return TrainingSummary(output: output, startStep: loop.startStep, step: loop.progress.step, losses: history.losses,
                               validationLosses: history.validations.map { ($0.step, $0.result.loss) },
                               validationMetrics: history.validations.map { ($0.step, $0.result.metrics) },
                               metricColumns: metrics.metricColumns,
                               bestValidationLoss: loop.progress.bestValidationLoss, bestStep: loop.progress.bestStep,
                               stop: stop, patchesPerSecond: loop.patchesPerSecond, noiseModel: template.noiseModel)
    }

    /// Creates the output folder and takes its lock, which the run holds to its end; refuses to
    /// overwrite a checkpoint unless resuming.
    private func prepareOutput() throws -> OutputLock {
        let metadata = joinPath(output, Checkpoint.metadataFile)
        if resume && !FileManager.default.fileExists(atPath: metadata) {
            throw TrainingError(message: "\(output): --resume needs a checkpoint, but \(Checkpoint.metadataFile) is missing")
        }
        do {
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        } catch {
            throw TrainingError(message: "\(output): cannot create the output folder (\(Checkpoint.describe(error)))")
        }
        guard access(output, W_OK) == 0 else {
            throw TrainingError(message: "\(output): the output folder is not writable")
        }
        let lock = try OutputLock(folder: output)
        if !resume && FileManager.default.fileExists(atPath: metadata) {
            throw TrainingError(message: "\(output): already holds a checkpoint; continue it with --resume or choose another --output")
        }
        return lock
    }

    /// Throws unless the checkpoint was trained by the same recipe (the step count may grow) on the same files.
    private func checkResumable(_ ckpt: Checkpoint, digests: [DataFileDigest]) throws {
        let file = joinPath(output, Checkpoint.metadataFile)
        var saved: Recipe
        do { saved = try Recipe.parse(yaml: ckpt.metadata.recipe, file: file) } catch {
            throw TrainingError(message: "\(file): its recipe cannot be read back (\(error))")
        }
        saved.training.steps = recipe.training.steps
        saved.output = recipe.output
        if saved != recipe {
            throw TrainingError(message: "\(output): --resume needs the recipe the checkpoint was trained with (see \(joinPath(output, "recipe.yaml"))); only training.steps may change")
        }
        for (old, new) in zip(ckpt.metadata.dataFiles, digests) where old != new {
            throw TrainingError(message: "\(new.path): changed since the checkpoint was saved (SHA-256 differs, or another file is in its place); --resume needs the same data")
        }
        if ckpt.metadata.dataFiles.count != digests.count {
            throw TrainingError(message: "\(output): the recipe now finds \(digests.count) data files, the checkpoint was trained on \(ckpt.metadata.dataFiles.count)")
        }
    }
}
