import ArgumentParser
import Foundation
import LucidCore
import LucidImaging
import LucidRestore

/// `lucid evaluate PRED.tif --reference GT.tif`: image-quality metrics as one JSON object on
/// stdout, and a table for people on stderr.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Compare a restored image with its ground truth (PSNR, SSIM, NRMSE, Pearson r).",
        discussion: """
        Prints one JSON object on stdout, e.g. {"psnr": 31.2, "ssim": 0.91, "nrmse": 0.12, "pearson": 0.97} \
        (identical images give "psnr": Infinity, as Python's json writes it), and a table on stderr. \
        Metrics follow scikit-image: SSIM uses a Gaussian window (sigma 1.5) and is averaged over \
        channels (C) and time points (T) (stacks thinner than 11 planes: over planes); the data range \
        defaults to max - min of the reference.
        """)

    /// Metric names accepted by `--metric`.
    enum Metric: String, CaseIterable, ExpressibleByArgument {
        case psnr, ssim, nrmse, pearson
    }

    @Argument(help: "The prediction (TIFF).")
    var prediction: String

    @Option(help: "The ground truth (TIFF) of the same shape.")
    var reference: String

    @Option(name: .customLong("metric"),
            help: "A metric to report (psnr, ssim, nrmse, pearson); repeat for several. Default: all.")
    var metrics: [Metric] = []

    @Option(help: "Data range for PSNR and SSIM (default: max - min of the reference).")
    var dataRange: Double?

    @Flag(help: "Print only the JSON object.")
    var quiet = false

    func run() throws {
        let predicted = try Image.read(prediction)
        let truth = try Image.read(reference)
        let (_, _, axes) = try ImageEvaluation.aligned(predicted, truth)
        let range = try dataRange ?? {
            let (lo, hi) = truth.data.withUnsafeBufferPointer { b in (Double(b.min() ?? 0), Double(b.max() ?? 0)) }
            guard hi > lo else { throw EvaluateError("\(reference) is constant (\(lo)): pass --data-range") }
            return hi - lo
        }()
        let report = try ImageEvaluation.evaluate(predicted, reference: truth, dataRange: range)
        let chosen = metrics.isEmpty ? Metric.allCases : metrics.reduce(into: [Metric]()) {
            if !$0.contains($1) { $0.append($1) }
        }
        let values: [(Metric, Double)] = chosen.map { metric in
            switch metric {
            case .psnr: return (metric, report.psnr)
            case .ssim: return (metric, report.ssim)
            case .nrmse: return (metric, report.nrmse)
            case .pearson: return (metric, report.pearson)
            }
        }
        print("{" + values.map { "\"\($0.0.rawValue)\": \(Self.json($0.1))" }.joined(separator: ", ") + "}")
        guard !quiet else { return }
        var table = "prediction  \(prediction)  \(axes) \(predicted.data.shape)\n"
        table += "reference   \(reference)\n"
        table += "data range  \(range)\(dataRange == nil ? " (max - min of the reference)" : "")\n\n"
        table += "metric     value\n"
        for (metric, value) in values {
            let name = ["psnr": "PSNR", "ssim": "SSIM", "nrmse": "NRMSE", "pearson": "Pearson r"][metric.rawValue]!
            let shown = value.isFinite ? String(format: "%.4f", value) : "\(value)"
            table += name.padding(toLength: 11, withPad: " ", startingAt: 0) + shown
                + (metric == .psnr ? " dB" : "") + "\n"
        }
        FileHandle.standardError.write(Data(table.utf8))
    }

    private static func json(_ v: Double) -> String {
        v.isNaN ? "NaN" : v.isInfinite ? (v > 0 ? "Infinity" : "-Infinity") : "\(v)"
    }
}

/// A one-line failure of `lucid evaluate` (printed without the usage text).
struct EvaluateError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
