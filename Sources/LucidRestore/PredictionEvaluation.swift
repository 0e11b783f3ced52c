import Foundation
import LucidCore
import LucidImaging

/// What `lucid evaluate` does: metrics of a restored image against its reference, as one JSON
/// object and a table for people. With a `C` axis of several channels each channel is scored
/// on its own (`channels` in the JSON) and the top-level figures are their means.
public enum PredictionEvaluation {
    /// The metrics `lucid evaluate` knows, in output order.
    public static let metricNames = ["psnr", "ssim", "nrmse", "pearson"]

    /// Scores `prediction` against `reference` (same shape); `metrics` ⊆ `metricNames`
    /// (empty = all); `dataRange` as in `Metrics.psnr`.
    public static func evaluate(_ prediction: Image, reference: Image, metrics: [String] = [],
                                dataRange: Double? = nil) throws -> (json: String, table: String) {
        let chosen = metrics.isEmpty ? metricNames : metricNames.filter(metrics.contains)
        if let unknown = metrics.first(where: { !metricNames.contains($0) }) {
            throw TensorError.invalidArgument(op: "evaluate", detail: "unknown metric '\(unknown)' (choose from \(metricNames.joined(separator: ", ")))")
        }
        guard prediction.data.shape == reference.data.shape else {
            throw TensorError.shapeMismatch(op: "evaluate",
                detail: "prediction \(prediction.data.shape) (axes \(prediction.axes)) vs reference \(reference.data.shape) (axes \(reference.axes))")
        }
        let channels = try split(reference)
        let predicted = try split(prediction)
        var rows: [[Double]] = []
        for (p, r) in zip(predicted, channels) {
            var row: [Double] = []
            for m in chosen {
                switch m {
                case "psnr": row.append(try Metrics.psnr(p, reference: r, dataRange: dataRange))
                case "ssim": row.append(try Metrics.ssim(p, reference: r, dataRange: dataRange))
                case "nrmse": row.append(try Metrics.nrmse(p, reference: r))
                default: row.append(try Metrics.pearson(p, reference: r))
                }
            }
            rows.append(row)
        }
        let means = chosen.indices.map { j in rows.map { $0[j] }.reduce(0, +) / Double(rows.count) }
        func object(_ values: [Double]) -> String {
            zip(chosen, values).map { "\"\($0)\": \(number($1))" }.joined(separator: ", ")
        }
        var json = "{" + object(means)
        if rows.count > 1 { json += ", \"channels\": [" + rows.map { "{" + object($0) + "}" }.joined(separator: ", ") + "]" }
        json += "}"
        var table = "metric".padding(toLength: 10, withPad: " ", startingAt: 0)
        table += rows.count > 1 ? (0..<rows.count).map { "  channel \($0)" }.joined() + "       mean" : "      value"
        table += "\n"
        for (j, m) in chosen.enumerated() {
            table += m.padding(toLength: 10, withPad: " ", startingAt: 0)
            let values = rows.count > 1 ? rows.map { $0[j] } + [means[j]] : [means[j]]
            table += values.map { String(format: "%11.4f", $0) }.joined() + "\n"
        }
        return (json, table)
    }

    /// The image's channels as 2-D or 3-D tensors (other leading axes merged into one).
    static func split(_ image: Image) throws -> [Tensor] {
        try image.validate()
        var data = image.data
        var letters = Array(image.axes)
        if let c = letters.firstIndex(of: "C") {
            data = try data.permuted([c] + data.shape.indices.filter { $0 != c })
            letters.remove(at: c)
            letters.insert("C", at: 0)
        } else {
            data = try data.reshaped([1] + data.shape)
        }
        let channels = data.shape[0]
        let spatial = Array(data.shape.dropFirst())
        let shape = spatial.count > 3 ? [spatial.dropLast(2).reduce(1, *)] + spatial.suffix(2) : spatial
        return try (0..<channels).map { try data.slice(axis: 0, range: $0..<($0 + 1)).reshaped(shape) }
    }

    /// A JSON number; non-finite values as Python's `json` writes them.
    static func number(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "Infinity" : "-Infinity" }
        return "\(v)"
    }
}
