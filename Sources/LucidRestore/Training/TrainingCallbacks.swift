import Foundation
import LucidCore
import LucidNN

/// Stops the run with a one-line message when a training or validation loss is not finite; the
/// last committed checkpoint stays as it was.
public final class NaNGuard: TrainingCallback {
    let output: String

    public init(output: String) { self.output = output }

    public func lossComputed(_ loop: TrainLoop, loss: Float) throws {
        guard loss.isFinite else {
            throw TrainingError(message: "\(output): training loss is \(loss) at step \(loop.progress.step + 1); stopped. The last good checkpoint (step \(loop.progress.savedStep)) is kept; try a lower training.lr or set training.clip_norm")
        }
    }

    public func stepEnded(_ loop: TrainLoop, _ record: StepRecord) throws {
        if let v = record.validation?.loss, !v.isFinite {
            throw TrainingError(message: "\(output): validation loss is \(v) at step \(record.step); stopped. The last good checkpoint (step \(loop.progress.savedStep)) is kept; try a lower training.lr")
        }
    }
}

/// `metrics.csv`: a row per step (`step,loss,val_loss,<metrics…>,lr,patches_per_s,elapsed`),
/// buffered and appended when a checkpoint commits, so the file never runs ahead of the
/// checkpoint by more than the rows of a failed run.
public final class MetricsLog: TrainingCallback {
    public let path: String
    /// The columns between `val_loss` and `lr` (the method's validation metrics).
    public let metricColumns: [String]
    private var pending: [String] = []

    public init(path: String, metricColumns: [String]) {
        self.path = path
        self.metricColumns = metricColumns
    }

    public var header: String {
        (["step", "loss", "val_loss"] + metricColumns + ["lr", "patches_per_s", "elapsed"]).joined(separator: ",") + "\n"
    }

    /// Starts a new file with the header.
    public func create() throws { try AtomicFile.write(Data(header.utf8), to: path) }

    /// Drops rows of steps after `step` (written after the last committed checkpoint).
    public func truncate(after step: Int) throws {
        guard let text = FileManager.default.contents(atPath: path).flatMap({ String(data: $0, encoding: .utf8) }) else {
            return try create()
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        let kept = lines.enumerated().filter { i, line in
            i == 0 || (line.split(separator: ",").first.flatMap { Int($0) }.map { $0 <= step } ?? false)
        }.map { String($0.element) + "\n" }
        try AtomicFile.write(Data(kept.joined().utf8), to: path)
    }

    public func stepEnded(_ loop: TrainLoop, _ record: StepRecord) throws {
        var fields = ["\(record.step)", "\(record.loss)"]
        if let v = record.validation {
            fields += [String(v.loss)] + v.metrics.map { String($0) }
        } else {
            fields += Array(repeating: "", count: 1 + metricColumns.count)
        }
        fields += ["\(record.learningRate)", String(format: "%.2f", loop.patchesPerSecond), String(format: "%.3f", loop.elapsed)]
        pending.append(fields.joined(separator: ",") + "\n")
    }

    /// Appends the buffered rows to the file.
    public func flush() throws {
        guard !pending.isEmpty else { return }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw TrainingError(message: "\(path): cannot open for appending")
        }
        defer { try? handle.close() }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(pending.joined().utf8))
        } catch {
            // (The non-throwing FileHandle calls trap on a full disk.)
            throw TrainingError(message: "\(path): cannot append the training log (\(Checkpoint.describe(error)))")
        }
        pending.removeAll()
    }

    public func runFailed(_ loop: TrainLoop) { try? flush() }
}

/// Commits a checkpoint (see `Checkpoint`) at every due step and at the end of the run: the
/// weights, the best weights when they improved, the optimizer state and the run's progress.
public final class Checkpointer: TrainingCallback {
    public let output: String
    let metrics: MetricsLog
    /// Everything of `lucid.json` but the step's progress (filled in at each save).
    let template: CheckpointMetadata

    init(output: String, metrics: MetricsLog, template: CheckpointMetadata) {
        self.output = output
        self.metrics = metrics
        self.template = template
    }

    public func stepEnded(_ loop: TrainLoop, _ record: StepRecord) throws {
        if record.checkpointDue { try save(loop, bestChanged: record.improved) }
    }

    public func runEnded(_ loop: TrainLoop, stop: TrainingStop) throws {
        let p = loop.progress
        if p.step > p.savedStep || p.step == 0 { try save(loop, bestChanged: false) }
    }

    /// Flushes the metrics rows, then commits the step.
    func save(_ loop: TrainLoop, bestChanged: Bool) throws {
        try metrics.flush()
        let p = loop.progress
        var meta = template
        meta.step = p.step
        meta.bestValidationLoss = p.bestValidationLoss
        meta.bestStep = loop.validates ? p.bestStep : p.step
        meta.convolutionPlans = ConvPlanner.exportPlans()
        meta.training = TrainingState(seed: UInt64(truncatingIfNeeded: loop.training.seed),
                                      learningRate: loop.optimizer.learningRate, plateau: p.plateau,
                                      validationsWithoutImprovement: p.validationsWithoutImprovement,
                                      elapsedSeconds: loop.elapsed)
        let weights = loop.model.stateDict()
        try Checkpoint.save(to: output, metadata: meta, last: weights,
                            best: bestChanged || !loop.validates ? weights : nil, optimizer: loop.optimizer.exportState())
        loop.progress.savedStep = p.step
    }
}

/// Ends the run after `patience` validations without improvement (0: never).
public final class EarlyStopping: TrainingCallback {
    public let patience: Int

    public init(patience: Int) { self.patience = patience }

    public func stepEnded(_ loop: TrainLoop, _ record: StepRecord) throws {
        if record.validation != nil && patience > 0 && loop.progress.validationsWithoutImprovement >= patience {
            loop.stop = .earlyStopped
        }
    }
}

/// The progress bar (or periodic lines) on stderr: steps, ETA, running loss, the last
/// validation and its metrics, throughput.
public final class ProgressReporter: TrainingCallback {
    private let bar: ProgressBar
    private let metrics: [any ValidationMetric]
    private var runningLoss: Double?
    private var lastValidation: ValidationResult?

    init(label: String, steps: Int, metrics: [any ValidationMetric]) {
        bar = ProgressBar(total: steps, label: label)
        self.metrics = metrics
    }

    public func stepEnded(_ loop: TrainLoop, _ record: StepRecord) throws {
        runningLoss = runningLoss.map { 0.95 * $0 + 0.05 * Double(record.loss) } ?? Double(record.loss)
        if let v = record.validation { lastValidation = v }
        var status = String(format: "loss %.4g", runningLoss!)
        if let v = lastValidation {
            status += String(format: " val %.4g", v.loss)
            var offset = 0
            for m in metrics {
                let values = Array(v.metrics[offset..<(offset + m.columns.count)])
                status += " " + m.status(values)
                offset += m.columns.count
            }
        }
        status += String(format: " %.0f patches/s", loop.patchesPerSecond)
        bar.update(record.step - loop.startStep, status: status)
    }

    public func runEnded(_ loop: TrainLoop, stop: TrainingStop) throws {
        if stop != .completed { bar.finish(loop.progress.step - loop.startStep, status: stop.rawValue) }
    }

    public func runFailed(_ loop: TrainLoop) { bar.finish(loop.progress.step - loop.startStep) }
}

/// The losses and validations of this run, for `TrainingSummary`.
final class TrainingHistory: TrainingCallback {
    var losses: [Float] = []
    var validations: [(step: Int, result: ValidationResult)] = []

    func stepEnded(_ loop: TrainLoop, _ record: StepRecord) throws {
        losses.append(record.loss)
        if let v = record.validation { validations.append((record.step, v)) }
    }
}
