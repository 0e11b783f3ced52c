import ArgumentParser
import Foundation
import LucidCore
import LucidImaging
import LucidRestore

/// `lucid evaluate PRED.tif --reference GT.tif`: image-quality metrics as one JSON object on
/// stdout (one line per pair for several pairs), and a table for people on stderr.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Compare a restored image with its ground truth (PSNR, SSIM, NRMSE, Pearson r).",
        discussion: """
        Prints one JSON object on stdout, e.g. {"psnr": 31.2, "ssim": 0.91, "nrmse": 0.12, "pearson": 0.97} \
        (identical images give "psnr": Infinity, as Python's json writes it), and a table on stderr. \
        Images with several channels (a C axis, e.g. the targets of a label-free model) also get \
        "pearson_channels": [r0, r1, ...], one Pearson r per channel. Several predictions take one \
        --reference each, in order, and give one JSON line each, starting with "prediction" and \
        "reference". Metrics follow scikit-image: SSIM uses a Gaussian window (sigma 1.5) and is averaged over \
        channels (C) and time points (T) (stacks thinner than 11 planes: over planes); the data range \
        defaults to max - min of the reference.
        """)

    @Argument(help: "The predictions (TIFF).")
    var predictions: [String]

    @Option(help: "The ground truth (TIFF) of the same shape; repeat it once per prediction, in order.")
    var reference: [String] = []

    @Option(name: .customLong("metric"),
            help: "A metric to report (psnr, ssim, nrmse, pearson); repeat for several. Default: all.")
    var metrics: [ImageMetric] = []

    @Option(help: "Data range for PSNR and SSIM (default: max - min of the reference).")
    var dataRange: Double?

    @Flag(help: "Print only the JSON object.")
    var quiet = false

    func validate() throws {
        guard predictions.count == reference.count else {
            throw ValidationError("\(predictions.count) prediction\(predictions.count == 1 ? "" : "s") but \(reference.count) --reference image\(reference.count == 1 ? "" : "s"); give one --reference per prediction, in order")
        }
    }

    func run() throws {
        let chosen = metrics.isEmpty ? ImageMetric.allCases : metrics.reduce(into: [ImageMetric]()) {
            if !$0.contains($1) { $0.append($1) }
        }
        let several = predictions.count > 1
        for (prediction, reference) in zip(predictions, reference) {
            let predicted = try Image.read(prediction)
            let truth = try Image.read(reference)
            let scores: ImageScores
            do {
                scores = try ImageEvaluation.scores(predicted, reference: truth, metrics: chosen, dataRange: dataRange)
            } catch let error as TensorError {
                if case .invalidArgument(_, let detail) = error, detail.hasPrefix("the reference is constant") {
                    throw EvaluateError("\(reference) is constant: pass --data-range")
                }
                throw EvaluateError("\(prediction) vs \(reference): \(error)")
            }
            print(several ? scores.json(prediction: prediction, reference: reference) : scores.json())
            if !quiet {
                FileHandle.standardError.write(Data((table(scores, prediction, reference) + (several ? "\n" : "")).utf8))
            }
        }
    }

    private func table(_ scores: ImageScores, _ prediction: String, _ reference: String) -> String {
        var table = "prediction  \(prediction)  \(scores.axes) \(scores.shape)\n"
        table += "reference   \(reference)\n"
        if let range = scores.dataRange {
            table += "data range  \(range)\(dataRange == nil ? " (max - min of the reference)" : "")\n"
        }
        table += "\nmetric     value\n"
        func shown(_ value: Double) -> String { value.isFinite ? String(format: "%.4f", value) : "\(value)" }
        for (metric, value) in scores.values {
            let name = ["psnr": "PSNR", "ssim": "SSIM", "nrmse": "NRMSE", "pearson": "Pearson r"][metric.rawValue]!
            table += name.padding(toLength: 11, withPad: " ", startingAt: 0) + shown(value) + (metric == .psnr ? " dB" : "") + "\n"
            if metric == .pearson, let channels = scores.channelPearson {
                for (c, r) in channels.enumerated() { table += "  C=\(c)".padding(toLength: 11, withPad: " ", startingAt: 0) + shown(r) + "\n" }
            }
        }
        return table
    }
}

extension ImageMetric: ExpressibleByArgument {}

/// A one-line failure of `lucid evaluate` (printed without the usage text).
struct EvaluateError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
