import Foundation
import LucidAutograd
import LucidCore
import LucidImaging
import LucidNN
import LucidOptics

/// Training stopped for a reason the user must act on; the message is one line.
public struct TrainingError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public var description: String { message.escapingControlCharacters }
}

/// Why a training run ended.
public enum TrainingStop: String, Sendable {
    /// All `training.steps` were done.
    case completed
    /// The validation loss stopped improving (`training.early_stopping`).
    case earlyStopped = "early stopping"
    /// A stop was requested (SIGINT); the state was saved for `--resume`.
    case interrupted
}

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
    /// Label-free runs: the validation Pearson r of each target channel, by step.
    public var validationPearson: [(step: Int, pearson: [Double])]
    /// Lowest validation loss so far and its step (nil without validation data).
    public var bestValidationLoss: Double?
    public var bestStep: Int?
    public var stop: TrainingStop
    /// Training patches per second this run (data, forward, backward and update).
    public var patchesPerSecond: Double
}

/// Set by `Trainer.requestStop()` and the SIGINT handler; read by the training loop.
nonisolated(unsafe) private var stopRequested: sig_atomic_t = 0

/// Trains a recipe's model and keeps its checkpoint folder (see `Checkpoint`) up to date.
///
/// Every step draws its batch, masks and augmentation from a generator seeded by
/// (`training.seed`, step), so a run resumed from a checkpoint (weights, optimizer state,
/// schedule and early-stopping state) continues with exactly the losses of an uninterrupted one.
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
    /// Called with the step about to run (1-based), before the stop flag is checked (tests).
    var beforeStep: ((Int, UNet) -> Void)?

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

    /// The generator of step `step` (0-based): batch sampling, masking and augmentation.
    static func stepGenerator(seed: UInt64, step: Int) -> RandomGenerator {
        RandomGenerator(seed: seed ^ (UInt64(step + 1) &* 0x9E37_79B9_7F4A_7C15))
    }

    /// Trains until the recipe's step count, early stopping or a stop request; saves the checkpoint.
    public func run() throws -> TrainingSummary {
        stopRequested = 0
        let t = recipe.training
        let seed = UInt64(truncatingIfNeeded: t.seed)
        let lock = try prepareOutput()
        defer { withExtendedLifetime(lock) {} }

        let data = try TrainingData.load(recipe, seed: seed)
        let digests = try data.files.map(DataFileDigest.of)
        let method = try TrainingMethod(recipe)
        let config = try TrainingMethod.networkConfig(recipe, spatialRank: data.spatialRank, inChannels: data.inChannels,
                                                     outChannels: data.outChannels)
        var initRNG = RandomGenerator(seed: seed)
        let net = try UNet(config, rng: &initRNG)
        let optimizer = try makeOptimizer(net)
        var plateau = t.schedule.kind == .plateau
            ? try ReduceLROnPlateau(learningRate: t.lr, factor: t.schedule.factor, patience: t.schedule.patience) : nil

        var step = 0
        var best: Double?, bestStep: Int?
        var sinceImprovement = 0
        var elapsedBefore = 0.0
        var normalization = data.normalization, targetNormalization = data.targetNormalization
        let metricsPath = Checkpoint.join(output, "metrics.csv")
        let header = metricsHeader(outChannels: data.outChannels)
        // The empty val_loss (and val_pearson…) fields of a step without validation.
        let emptyValidation = String(repeating: ",", count: header.split(separator: ",").count - 6)
        if resume {
            let ckpt = try Checkpoint.load(directory: output)
            try checkResumable(ckpt, digests: digests)
            try net.loadStateDict(try ckpt.weights(.last))
            try optimizer.importState(try ckpt.optimizerState())
            let m = ckpt.metadata
            step = m.step
            best = m.bestValidationLoss
            bestStep = m.bestStep
            sinceImprovement = m.training.validationsWithoutImprovement
            elapsedBefore = m.training.elapsedSeconds
            plateau = m.training.plateau
            normalization = m.normalization
            targetNormalization = m.targetNormalization
            try truncateMetrics(metricsPath, after: step, header: header)
        } else {
            try recipe.save(in: output)
            try Checkpoint.writeAtomically(Data(header.utf8), to: metricsPath)
        }
        let startStep = step
        let hasValidation = data.validationSize > 0
        let phases = method.phaseCount(spatialRank: data.spatialRank)

        var pendingRows: [String] = []
        var losses: [Float] = []
        var validations: [(step: Int, loss: Double)] = []
        var pearsons: [(step: Int, pearson: [Double])] = []
        var stop = TrainingStop.completed
        var lastSaved = step
        let started = Date()
        func elapsed() -> Double { elapsedBefore + Date().timeIntervalSince(started) }
        func rate() -> Double {
            let s = Date().timeIntervalSince(started)
            return s > 0 ? Double((step - startStep) * t.batch) / s : 0
        }

        func save(bestChanged: Bool) throws {
            try flushMetrics(&pendingRows, to: metricsPath)
            let state = TrainingState(seed: seed, learningRate: optimizer.learningRate, plateau: plateau,
                                      validationsWithoutImprovement: sinceImprovement, elapsedSeconds: elapsed())
            let meta = CheckpointMetadata(
                method: recipe.method.rawValue, recipe: recipe.json(), model: config, normalization: normalization,
                targetNormalization: targetNormalization, axes: data.axes, spatialRank: data.spatialRank, step: step,
                bestValidationLoss: best, bestStep: hasValidation ? bestStep : step, dataFiles: digests, training: state,
                pixelSize: recipe.data.pixelSize, sourcePixelSize: recipe.data.sourcePixelSize,
                signalChannels: data.signalChannels)
            let weights = net.stateDict()
            try Checkpoint.save(to: output, metadata: meta, last: weights,
                                best: bestChanged || !hasValidation ? weights : nil, optimizer: optimizer.exportState())
            lastSaved = step
        }

        let progress = showProgress && step < t.steps
            ? ProgressBar(total: t.steps - startStep, label: recipe.method.rawValue + (startStep > 0 ? " (from step \(startStep))" : ""))
            : nil
        var lastValidation: Double?, lastPearson: [Double]?
        var runningLoss: Double?
        while step < t.steps {
            beforeStep?(step + 1, net)
            if stopRequested != 0 {
                stop = .interrupted
                break
            }
            optimizer.learningRate = learningRate(at: step, plateau: plateau)
            var rng = Trainer.stepGenerator(seed: seed, step: step)
            let batch = data.batch(size: t.batch, rng: &rng)
            net.zeroGrad()
            let loss = try method.loss(net, input: batch.input, target: batch.target, phase: step % phases, rng: &rng)
            let value = loss.value.scalars[0]
            guard value.isFinite else {
                try? flushMetrics(&pendingRows, to: metricsPath)
                progress?.finish(step - startStep)
                throw TrainingError(message: "\(output): training loss is \(value) at step \(step + 1); stopped. The last good checkpoint (step \(lastSaved)) is kept; try a lower training.lr or set training.clip_norm")
            }
            try loss.backward()
            if t.clipNorm > 0 {
                do { try GradientClipping.clipByGlobalNorm(net.parameters, maxNorm: Float(t.clipNorm)) } catch {
                    try? flushMetrics(&pendingRows, to: metricsPath)
                    throw TrainingError(message: "\(output): non-finite gradients at step \(step + 1); stopped. The last good checkpoint (step \(lastSaved)) is kept; try a lower training.lr")
                }
            }
            try optimizer.step()
            step += 1
            losses.append(value)
            runningLoss = runningLoss.map { 0.95 * $0 + 0.05 * Double(value) } ?? Double(value)

            var validationText = emptyValidation
            let validateNow = t.validateEvery > 0 && (step % t.validateEvery == 0 || step == t.steps)
            if validateNow && hasValidation {
                let (v, pearson) = try validate(net, method: method, data: data, seed: seed, phases: phases)
                validations.append((step, v))
                lastValidation = v
                validationText = String(v)
                if let pearson {
                    pearsons.append((step, pearson))
                    lastPearson = pearson
                    validationText += "," + Trainer.pearsonColumns(pearson).map { String($0) }.joined(separator: ",")
                }
                var improved = false
                if !v.isFinite {
                    try? flushMetrics(&pendingRows, to: metricsPath)
                    throw TrainingError(message: "\(output): validation loss is \(v) at step \(step); stopped. The last good checkpoint (step \(lastSaved)) is kept; try a lower training.lr")
                }
                if best == nil || v < best! - t.minDelta {
                    best = v
                    bestStep = step
                    sinceImprovement = 0
                    improved = true
                } else {
                    sinceImprovement += 1
                }
                plateau?.update(metric: v)
                pendingRows.append(row(step, value, validationText, optimizer.learningRate, rate(), elapsed()))
                try save(bestChanged: improved)
                if t.patience > 0 && sinceImprovement >= t.patience {
                    stop = .earlyStopped
                    break
                }
            } else {
                pendingRows.append(row(step, value, validationText, optimizer.learningRate, rate(), elapsed()))
                if validateNow { try save(bestChanged: false) }
            }
            if let progress {
                var status = String(format: "loss %.4g", runningLoss!)
                if let lastValidation { status += String(format: " val %.4g", lastValidation) }
                if let lastPearson { status += String(format: " r %.3f", Trainer.pearsonColumns(lastPearson)[0]) }
                status += String(format: " %.0f patches/s", rate())
                progress.update(step - startStep, status: status)
            }
        }
        if step > lastSaved || (step == startStep && !resume) { try save(bestChanged: false) }
        if stop != .completed { progress?.finish(step - startStep, status: stop.rawValue) }
        return TrainingSummary(output: output, startStep: startStep, step: step, losses: losses,
                               validationLosses: validations, validationPearson: pearsons,
                               bestValidationLoss: best, bestStep: bestStep,
                               stop: stop, patchesPerSecond: rate())
    }

    /// The mean validation loss over the held-out patches (evaluation mode, fixed masks) and, for
    /// label-free runs, the Pearson r of each output channel over all validation pixels.
    func validate(_ net: UNet, method: TrainingMethod, data: TrainingData, seed: UInt64,
                  phases: Int) throws -> (loss: Double, pearson: [Double]?) {
        net.setTraining(false)
        defer { net.setTraining(true) }
        var rng = RandomGenerator(seed: seed ^ 0x7A11_DA7E_5EED_0001)
        let n = data.validationSize, size = recipe.training.batch
        var total = 0.0
        var correlations: [PearsonSums]? = nil
        for (k, start) in stride(from: 0, to: n, by: size).enumerated() {
            let (x, y) = try data.validationBatch(start..<min(n, start + size))
            let loss: Variable
            if recipe.method.isLabelFree, case .supervised(let kind) = method, let y {
                let output = try noGrad { try net(Variable(x)) }
                loss = try noGrad { try TrainingMethod.supervisedLoss(kind, net, output: output, target: y) }
                var sums = correlations ?? Array(repeating: PearsonSums(), count: y.shape[1])
                PearsonSums.add(prediction: output.value, reference: y, into: &sums)
                correlations = sums
            } else {
                loss = try noGrad {
                    try method.loss(net, input: x, target: y, phase: (k * 7) % phases, rng: &rng)
                }
            }
            total += Double(loss.value.scalars[0]) * Double(x.shape[0])
        }
        return (total / Double(n), correlations?.map(\.r))
    }

    /// The header of `metrics.csv`: label-free runs add the validation Pearson r (the mean over
    /// target channels, then each channel's when there are several).
    func metricsHeader(outChannels: Int) -> String {
        var columns = ["step", "loss", "val_loss"]
        if recipe.method.isLabelFree {
            columns.append("val_pearson")
            if outChannels > 1 { columns += (0..<outChannels).map { "val_pearson_\($0)" } }
        }
        return (columns + ["lr", "patches_per_s", "elapsed"]).joined(separator: ",") + "\n"
    }

    /// The mean r, then each channel's when there are several.
    static func pearsonColumns(_ r: [Double]) -> [Double] {
        [r.reduce(0, +) / Double(r.count)] + (r.count > 1 ? r : [])
    }

    /// The learning rate for step `step` (0-based).
    func learningRate(at step: Int, plateau: ReduceLROnPlateau?) -> Double {
        let t = recipe.training, s = t.schedule
        let warm = s.warmup > 0 && step < s.warmup ? Double(step + 1) / Double(s.warmup) : 1
        switch s.kind {
        case .none: return t.lr * warm
        case .cosine:
            return LearningRateSchedule.cosine(totalSteps: t.steps, minimum: 0, warmupSteps: min(s.warmup, t.steps - 1))
                .learningRate(base: t.lr, at: step)
        case .step: return LearningRateSchedule.step(stepSize: s.every, gamma: s.factor).learningRate(base: t.lr, at: step) * warm
        case .plateau: return (plateau?.learningRate ?? t.lr) * warm
        }
    }

    private func makeOptimizer(_ net: UNet) throws -> any Optimizer {
        let t = recipe.training
        switch t.optimizer {
        case .adam: return try Adam(parameters: net.namedParameters, learningRate: t.lr, weightDecay: t.weightDecay)
        case .adamw: return try AdamW(parameters: net.namedParameters, learningRate: t.lr, weightDecay: t.weightDecay)
        case .sgd: return try SGD(parameters: net.namedParameters, learningRate: t.lr, momentum: t.momentum, weightDecay: t.weightDecay)
        }
    }

    /// Creates the output folder and takes its lock, which the run holds to its end; refuses to
    /// overwrite a checkpoint unless resuming.
    private func prepareOutput() throws -> OutputLock {
        let metadata = Checkpoint.join(output, Checkpoint.metadataFile)
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
        let file = Checkpoint.join(output, Checkpoint.metadataFile)
        var saved: Recipe
        do { saved = try Recipe.parse(yaml: ckpt.metadata.recipe, file: file) } catch {
            throw TrainingError(message: "\(file): its recipe cannot be read back (\(error))")
        }
        saved.training.steps = recipe.training.steps
        saved.output = recipe.output
        if saved != recipe {
            throw TrainingError(message: "\(output): --resume needs the recipe the checkpoint was trained with (see \(Checkpoint.join(output, "recipe.yaml"))); only training.steps may change")
        }
        for (old, new) in zip(ckpt.metadata.dataFiles, digests) where old != new {
            throw TrainingError(message: "\(new.path): changed since the checkpoint was saved (SHA-256 differs, or another file is in its place); --resume needs the same data")
        }
        if ckpt.metadata.dataFiles.count != digests.count {
            throw TrainingError(message: "\(output): the recipe now finds \(digests.count) data files, the checkpoint was trained on \(ckpt.metadata.dataFiles.count)")
        }
    }

    private func row(_ step: Int, _ loss: Float, _ validation: String, _ lr: Double, _ rate: Double, _ elapsed: Double) -> String {
        "\(step),\(loss),\(validation),\(lr),\(String(format: "%.2f", rate)),\(String(format: "%.3f", elapsed))\n"
    }

    /// Appends the buffered rows to `metrics.csv`.
    private func flushMetrics(_ rows: inout [String], to path: String) throws {
        guard !rows.isEmpty else { return }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw TrainingError(message: "\(path): cannot open for appending")
        }
        defer { try? handle.close() }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(rows.joined().utf8))
        } catch {
            throw TrainingError(message: "\(path): cannot append the training log (\(Checkpoint.describe(error)))")
        }
        rows.removeAll()
    }

    /// Drops rows of steps after `step` (written after the last committed checkpoint).
    private func truncateMetrics(_ path: String, after step: Int, header: String) throws {
        guard let text = FileManager.default.contents(atPath: path).flatMap({ String(data: $0, encoding: .utf8) }) else {
            try Checkpoint.writeAtomically(Data(header.utf8), to: path)
            return
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        let kept = lines.enumerated().filter { i, line in
            i == 0 || (line.split(separator: ",").first.flatMap { Int($0) }.map { $0 <= step } ?? false)
        }.map { String($0.element) + "\n" }
        try Checkpoint.writeAtomically(Data(kept.joined().utf8), to: path)
    }
}
