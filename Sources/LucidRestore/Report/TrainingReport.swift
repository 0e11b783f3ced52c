import Foundation
import LucidAutograd
import LucidCore
import LucidImaging
import LucidNN

/// `report.html` in a checkpoint folder: one self-contained page (inline SVG charts and PNG
/// images as data URLs, no scripts) with the run's summary, its training and validation loss
/// (and the method's validation metrics, such as label-free Pearson r), learning rate and
/// throughput over the steps of `metrics.csv`, and validation examples input | prediction |
/// target. While the run is going the page reloads itself every 30 s. `ReportWriter` keeps it
/// current during training.
/// ```swift
/// try TrainingReport.write(checkpointFolder: "Checkpoints/demo",
///                          validationTriplets: TrainingReport.triplets(model, method: method, data: data), state: .running)
/// ```
public enum TrainingReport {
    /// File name inside the checkpoint folder.
    public static let fileName = "report.html"

    /// Where the run stands.
    public enum RunState: Equatable, Sendable {
        /// Training goes on (the page reloads itself).
        case running
        /// The run ended.
        case ended(TrainingStop)
        /// Not known (a report written again afterwards).
        case unknown
    }

    /// One validation example: 2-D planes in the network's normalized units.
    public struct Triplet {
        public var input: Tensor
        public var prediction: Tensor
        /// What the loss compared the prediction with (the noisy input for self-supervised methods).
        public var target: Tensor
        public var targetLabel: String

        public init(input: Tensor, prediction: Tensor, target: Tensor, targetLabel: String = "target") {
            self.input = input
            self.prediction = prediction
            self.target = target
            self.targetLabel = targetLabel
        }
    }

    /// Writes `report.html` (atomically) into `checkpointFolder` from its `metrics.csv` and
    /// `lucid.json` (either may be missing yet) and `validationTriplets`.
    public static func write(checkpointFolder: String, validationTriplets: [Triplet], state: RunState,
                             note: String? = nil) throws {
        let metrics = try MetricsTable.read(joinPath(checkpointFolder, "metrics.csv"))
        let checkpoint = try? Checkpoint.load(directory: checkpointFolder)
        let page = try html(metrics: metrics, metadata: checkpoint?.metadata, triplets: validationTriplets,
                            title: (checkpointFolder as NSString).lastPathComponent, state: state, note: note)
        try AtomicFile.write(Data(page.utf8), to: joinPath(checkpointFolder, fileName))
    }

    /// `count` validation patches (training patches of a fixed draw when there is no validation
    /// data) through `net` in evaluation mode: of the first 64, those whose input varies most
    /// (structure rather than background), in their order; channel 0 (a probabilistic net's
    /// first mean), the middle plane in 3-D.
    public static func triplets(_ net: any ImageModel, method: any RestorationMethod, data: TrainingData, count: Int = 3) throws -> [Triplet] {
        var (x, y): (Tensor, Tensor?)
        if data.validationSize > 0 {
            (x, y) = try data.validationBatch(0..<min(64, data.validationSize))
        } else {
            var rng = RandomGenerator(seed: 0x5EED_0F_2E90)
            (x, y) = data.batch(size: 64, rng: &rng)
        }
        if x.shape[0] > count {
            let n = x.count / x.shape[0]
            let spread = try (0..<x.shape[0]).map { b -> Double in
                let v = try x.slice(axis: 0, range: b..<(b + 1)).scalars.map(Double.init)
                let mean = v.reduce(0, +) / Double(n)
                return v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
            }
            let chosen = spread.indices.sorted { spread[$0] > spread[$1] }.prefix(count).sorted()
            func pick(_ t: Tensor) throws -> Tensor { try Tensor.concat(chosen.map { try t.slice(axis: 0, range: $0..<($0 + 1)) }, axis: 0) }
            x = try pick(x)
            y = try y.map(pick)
        }
        net.setTraining(false)
        defer { net.setTraining(true) }
        // As the method predicts; a generative method's mean of 4 samples keeps a report cheap
        // next to training.
        let prediction = try method.tilePrediction(net, sampling: SamplingOptions(samples: 4))
        let p = try noGrad { try prediction.run(x) }
        return try (0..<x.shape[0]).map { b in
            Triplet(input: try plane(x, b), prediction: try plane(p, b), target: try plane(y ?? x, b),
                    targetLabel: y == nil ? "target (the noisy input)" : "target")
        }
    }

    /// Regenerates the report of a checkpoint folder (`lucid report`): the validation examples
    /// come from its last weights on the recipe's data when the data files are still there;
    /// otherwise the page says why they are missing. Returns that reason, or nil.
    @discardableResult
    public static func regenerate(checkpointFolder: String) throws -> String? {
        let checkpoint = try Checkpoint.load(directory: checkpointFolder)
        var triplets: [Triplet] = []
        var missing: String?
        do {
            let recipe = try Recipe.parse(yaml: checkpoint.metadata.recipe, file: joinPath(checkpointFolder, Checkpoint.metadataFile))
            let data = try TrainingData.load(recipe, seed: UInt64(truncatingIfNeeded: recipe.training.seed))
            triplets = try self.triplets(checkpoint.makeModel(weights: .last), method: checkpoint.method(), data: data)
        } catch {
            missing = "validation examples unavailable: \(error)"
        }
        try write(checkpointFolder: checkpointFolder, validationTriplets: triplets, state: .unknown, note: missing)
        return missing
    }

    /// Channel 0 of sample `b` of `[B, C, (Z,) Y, X]` as `[Y, X]` (the middle Z plane).
    static func plane(_ t: Tensor, _ b: Int) throws -> Tensor {
        let h = t.shape[t.rank - 2], w = t.shape[t.rank - 1]
        let z = t.rank == 5 ? t.shape[2] : 1
        let sample = try t.slice(axis: 0, range: b..<(b + 1)).slice(axis: 1, range: 0..<1).reshaped([z, h, w])
        return try sample.slice(axis: 0, range: (z / 2)..<(z / 2 + 1)).reshaped([h, w])
    }

    // MARK: - The page

    static func html(metrics: MetricsTable, metadata: CheckpointMetadata?, triplets: [Triplet], title: String,
                     state: RunState, note: String?) throws -> String {
        let recipe = metadata.flatMap { try? Recipe.parse(yaml: $0.recipe, file: Checkpoint.metadataFile) }
        let total = recipe?.training.steps
        let step = metrics.rows.last.map { Int($0[0] ?? 0) } ?? 0
        let running = state == .running
        let steps = metrics.column("step")
        func series(_ name: String) -> [(x: Double, y: Double)] {
            zip(steps, metrics.column(name)).compactMap { s, v in s.flatMap { s in v.map { (s, $0) } } }
        }
        let loss = series("loss"), validation = series("val_loss")
        var smoothed: [(x: Double, y: Double)] = []
        var ema: Double?
        for p in loss {
            ema = ema.map { 0.95 * $0 + 0.05 * p.y } ?? p.y
            smoothed.append((p.x, ema!))
        }
        var charts = [
            SVGChart(title: "Loss", series: [
                .init(name: "training", color: "#1f77b4", points: loss, lineWidth: 1, opacity: 0.3),
                .init(name: "training (smoothed)", color: "#1f77b4", points: smoothed, lineWidth: 2),
                .init(name: "validation", color: "#d62728", points: validation, lineWidth: 2, markers: validation.count <= 200),
            ], logY: true),
        ]
        let pearson = metrics.columns.filter { $0.hasPrefix("val_pearson") }
        if !pearson.isEmpty {
            let colors = ["#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
            charts.append(SVGChart(title: "Validation Pearson r", series: pearson.enumerated().map { k, name in
                .init(name: name == "val_pearson" ? "mean r" : "channel " + name.dropFirst("val_pearson_".count),
                      color: colors[k % colors.count], points: series(name), lineWidth: k == 0 ? 2 : 1, markers: k == 0)
            }))
        }
        charts.append(SVGChart(title: "Learning rate", series: [.init(name: "lr", color: "#ff7f0e", points: series("lr"), lineWidth: 2)],
                               logY: true))
        charts.append(SVGChart(title: "Throughput (patches/s)", series: [
            .init(name: "patches/s", color: "#2ca02c", points: series("patches_per_s"), lineWidth: 2),
        ]))

        var page = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            \(running ? "<meta http-equiv=\"refresh\" content=\"30\">\n" : "")<title>Lucid training report: \(escape(title))</title>
            <style>
            body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #222; background: #fff; }
            h1 { font-size: 22px; margin: 0 0 12px; } h2 { font-size: 17px; margin: 24px 0 8px; }
            table.summary td { padding: 1px 14px 1px 0; vertical-align: top; } table.summary td:first-child { color: #666; }
            .charts { display: grid; grid-template-columns: repeat(auto-fill, 560px); gap: 16px; }
            .triplet-row { display: flex; gap: 12px; margin-bottom: 12px; }
            figure { margin: 0; } figcaption { font-size: 12px; color: #555; text-align: center; }
            img.triplet { image-rendering: pixelated; display: block; border: 1px solid #ccc; }
            .note { color: #a40; }
            </style></head><body>
            <h1>Lucid training report: \(escape(title))</h1>

            """
        page += "<table class=\"summary\">" + summaryRows(metrics: metrics, metadata: metadata, step: step, total: total, state: state)
            .map { "<tr><td>\(escape($0.0))</td><td>\(escape($0.1))</td></tr>" }.joined() + "</table>\n"
        if let note { page += "<p class=\"note\">\(escape(note))</p>\n" }
        page += "<h2>Curves</h2>\n<section class=\"charts\">\n" + charts.map { $0.render() }.joined(separator: "\n") + "\n</section>\n"
        if !triplets.isEmpty {
            page += "<h2>Validation examples (step \(step)): input | prediction | target</h2>\n<section class=\"triplets\">\n"
            for t in triplets {
                // Each panel spans its own 1st–99.8th percentiles (early predictions may lie far
                // outside the target's range).
                let scale = max(1, 160 / max(1, t.input.shape[1]))
                page += "<div class=\"triplet-row\">"
                for (image, label) in [(t.input, "input"), (t.prediction, "prediction"), (t.target, t.targetLabel)] {
                    let range = try displayRange(image)
                    let png = try PNG.encode(image.map { ($0 - range.0) / (range.1 - range.0) })
                    page += "<figure><img class=\"triplet\" alt=\"\(escape(label))\" width=\"\(image.shape[1] * scale)\" "
                        + "height=\"\(image.shape[0] * scale)\" src=\"data:image/png;base64,\(png.base64EncodedString())\">"
                        + "<figcaption>\(escape(label))</figcaption></figure>"
                }
                page += "</div>\n"
            }
            page += "</section>\n"
        }
        page += "<p style=\"color:#888;font-size:12px\">Written by Lucid \(lucidVersion) at \(ISO8601DateFormatter().string(from: Date())) from metrics.csv and lucid.json.</p>\n</body></html>\n"
        return page
    }

    /// The 1st and 99.8th percentiles (a unit range for constant images).
    static func displayRange(_ t: Tensor) throws -> (Float, Float) {
        let p = try percentiles(t, [1, 99.8])
        return p[1] > p[0] ? (p[0], p[1]) : (p[0] - 0.5, p[0] + 0.5)
    }

    static func summaryRows(metrics: MetricsTable, metadata: CheckpointMetadata?, step: Int, total: Int?,
                            state: RunState) -> [(String, String)] {
        var rows: [(String, String)] = []
        let last = metrics.rows.last
        func value(_ name: String) -> Double? { metrics.columns.firstIndex(of: name).flatMap { last?[$0] } }
        let of = total.map { " of \($0)" } ?? ""
        switch state {
        case .running: rows.append(("status", "running: step \(step)\(of)"))
        case .ended(let stop): rows.append(("status", "finished at step \(step)\(of) (\(stop.rawValue))"))
        case .unknown: rows.append(("status", (total.map { step >= $0 } ?? false ? "finished at step " : "step ") + "\(step)\(of)"))
        }
        if let m = metadata {
            rows.append(("method", m.method))
            if let best = m.bestValidationLoss { rows.append(("best validation loss", String(format: "%.5g at step %d", best, m.bestStep ?? 0))) }
            rows.append(("network", networkText(m.model)))
            rows.append(("data", "\(m.dataFiles.count) file\(m.dataFiles.count == 1 ? "" : "s"), axes \(m.axes)"))
            rows.append(("normalization", m.normalization.method.rawValue + (m.normalization.perImage ? " (per image)" : "")))
        }
        if let l = value("loss") { rows.append(("last training loss", String(format: "%.5g", l))) }
        if let lr = value("lr") { rows.append(("learning rate", String(format: "%.3g", lr))) }
        if let rate = value("patches_per_s") { rows.append(("throughput", String(format: "%.0f patches/s", rate))) }
        if let elapsed = value("elapsed") { rows.append(("training time", String(format: "%.1f s", elapsed))) }
        return rows
    }

    /// The architecture in a line.
    static func networkText(_ model: any ModelConfig) -> String {
        guard let c = model as? UNetConfig else {
            return "\(model.spatialRank)-D \(type(of: model).kind), \(model.inChannels) → \(model.outputChannels) channels"
        }
        let norm = c.norm == .none ? "no" : c.norm.rawValue
        return "\(c.dims)-D U-Net, depth \(c.depth), \(c.firstFilters) filters, \(norm) norm, \(c.pooling.rawValue) pooling, "
            + "\(c.upsampling.rawValue) upsampling" + (c.residual ? ", residual" : "") + (c.probabilistic ? ", probabilistic" : "")
    }

    /// `s` with HTML's special characters escaped.
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

/// `metrics.csv` as numbers by column (empty fields are nil).
struct MetricsTable {
    var columns: [String]
    var rows: [[Double?]]

    /// Reads the file; a missing file is an empty table.
    static func read(_ path: String) throws -> MetricsTable {
        guard let data = FileManager.default.contents(atPath: path) else { return MetricsTable(columns: [], rows: []) }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
        guard let header = lines.first else { return MetricsTable(columns: [], rows: []) }
        let columns = header.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let rows = lines.dropFirst().map { line in
            line.split(separator: ",", omittingEmptySubsequences: false).map { Double($0) }
        }.filter { $0.count == columns.count }
        return MetricsTable(columns: columns, rows: rows)
    }

    /// The values of column `name` (all nil when there is no such column).
    func column(_ name: String) -> [Double?] {
        guard let i = columns.firstIndex(of: name) else { return rows.map { _ in nil } }
        return rows.map { $0[i] }
    }
}

/// Keeps `report.html` current during training: after every checkpoint commit (put it after
/// the `Checkpointer`) and when the run ends.
public final class ReportWriter: TrainingCallback {
    public let output: String

    public init(output: String) { self.output = output }

    public func stepEnded(_ loop: TrainLoop, _ record: StepRecord) throws {
        if record.checkpointDue { try write(loop, .running) }
    }

    public func runEnded(_ loop: TrainLoop, stop: TrainingStop) throws { try write(loop, .ended(stop)) }

    func write(_ loop: TrainLoop, _ state: TrainingReport.RunState) throws {
        try TrainingReport.write(checkpointFolder: output, validationTriplets: TrainingReport.triplets(loop.model, method: loop.method, data: loop.data),
                                 state: state)
    }
}
