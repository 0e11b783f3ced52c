import Foundation
import LucidCore
import LucidImaging

/// A metric `lucid evaluate` reports.
public enum ImageMetric: String, CaseIterable, Sendable {
    case psnr, ssim, nrmse, pearson
}

/// The chosen metrics of one prediction against its reference (see `ImageEvaluation.scores`).
public struct ImageScores: Sendable {
    /// Each chosen metric and its value, in the order asked for.
    public var values: [(metric: ImageMetric, value: Double)]
    /// Pearson r of every channel, when Pearson r was chosen and the images have a C axis of
    /// several channels (several targets of a label-free model); nil otherwise.
    public var channelPearson: [Double]?
    /// Axes and shape the images were compared with (after dropping singleton axes to align them).
    public var axes: String
    public var shape: [Int]
    /// The data range PSNR and SSIM used (nil when neither was chosen).
    public var dataRange: Double?

    /// One JSON object: the file names first when given, then `"psnr": …` and the other chosen
    /// metrics, then `"pearson_channels": [r₀, r₁, …]` for several channels. Non-finite values
    /// are written as Python's `json` writes them (`Infinity`, `NaN`).
    public func json(prediction: String? = nil, reference: String? = nil) -> String {
        var fields: [String] = []
        if let prediction { fields.append("\"prediction\": " + jsonQuoted(prediction)) }
        if let reference { fields.append("\"reference\": " + jsonQuoted(reference)) }
        fields += values.map { "\"\($0.metric.rawValue)\": " + ImageScores.number($0.value) }
        if let channelPearson {
            fields.append("\"pearson_channels\": [" + channelPearson.map(ImageScores.number).joined(separator: ", ") + "]")
        }
        return "{" + fields.joined(separator: ", ") + "}"
    }

    static func number(_ v: Double) -> String {
        v.isNaN ? "NaN" : v.isInfinite ? (v > 0 ? "Infinity" : "-Infinity") : "\(v)"
    }
}

/// Metrics between two `Image`s whose axes may include channels (C) and time points (T).
public enum ImageEvaluation {
    /// Both images with one shape and their common axes; singleton axes other than Y and X are
    /// dropped when that makes the shapes agree. Throws `TensorError.shapeMismatch` otherwise.
    public static func aligned(_ prediction: Image, _ reference: Image) throws -> (Tensor, Tensor, String) {
        if prediction.data.shape == reference.data.shape { return (prediction.data, reference.data, reference.axes) }
        let (p, pAxes) = try squeezed(prediction), (r, rAxes) = try squeezed(reference)
        guard p.shape == r.shape else {
            throw TensorError.shapeMismatch(op: "evaluate", detail: """
                prediction \(prediction.data.shape) (\(prediction.axes)) vs reference \(reference.data.shape) \
                (\(reference.axes))
                """)
        }
        return (p, r, rAxes.count == r.rank ? rAxes : pAxes)
    }

    /// PSNR, NRMSE and Pearson r over all pixels; SSIM averaged over the Z/Y/X sub-images of every
    /// channel and time point (as scikit-image's `channel_axis`). Stacks with fewer than 11 planes
    /// (too thin for the 3D window) get the mean 2D SSIM of their planes. `dataRange` defaults to
    /// the reference's max − min.
    public static func evaluate(_ prediction: Image, reference: Image, dataRange: Double? = nil) throws -> MetricReport {
        let (p, r, axes) = try aligned(prediction, reference)
        let range = try dataRange ?? {
            let (lo, hi) = r.withUnsafeBufferPointer { b in (Double(b.min() ?? 0), Double(b.max() ?? 0)) }
            guard hi > lo else {
                throw TensorError.invalidArgument(
                    op: "evaluate", detail: "the reference is constant (\(lo)), so its data range is 0: pass dataRange")
            }
            return hi - lo
        }()
        return MetricReport(psnr: try Metrics.psnr(p, reference: r, dataRange: range),
                            ssim: try ssim(p, r, axes: axes, dataRange: range),
                            nrmse: try Metrics.nrmse(p, reference: r), pearson: try Metrics.pearson(p, reference: r))
    }

    /// The `metrics` of `prediction` against `reference` (only those: Pearson r alone works on
    /// images too small for SSIM's window or with a constant reference). With several channels
    /// (a C axis) Pearson r is also given per channel. `dataRange` as in `evaluate`.
    public static func scores(_ prediction: Image, reference: Image, metrics: [ImageMetric],
                              dataRange: Double? = nil) throws -> ImageScores {
        let (p, r, axes) = try aligned(prediction, reference)
        var range = dataRange
        if range == nil && (metrics.contains(.psnr) || metrics.contains(.ssim)) {
            let (lo, hi) = r.withUnsafeBufferPointer { b in (Double(b.min() ?? 0), Double(b.max() ?? 0)) }
            guard hi > lo else {
                throw TensorError.invalidArgument(
                    op: "evaluate", detail: "the reference is constant (\(lo)), so its data range is 0: pass dataRange")
            }
            range = hi - lo
        }
        var scores = ImageScores(values: [], channelPearson: nil, axes: axes, shape: p.shape, dataRange: range)
        for metric in metrics {
            switch metric {
            case .psnr: scores.values.append((metric, try Metrics.psnr(p, reference: r, dataRange: range)))
            case .ssim: scores.values.append((metric, try ssim(p, r, axes: axes, dataRange: range!)))
            case .nrmse: scores.values.append((metric, try Metrics.nrmse(p, reference: r)))
            case .pearson:
                scores.values.append((metric, try Metrics.pearson(p, reference: r)))
                if let c = Array(axes).firstIndex(of: "C"), p.shape[c] > 1 {
                    scores.channelPearson = try (0..<p.shape[c]).map { k in
                        try Metrics.pearson(p.slice(axis: c, range: k..<(k + 1)), reference: r.slice(axis: c, range: k..<(k + 1)))
                    }
                }
            }
        }
        return scores
    }

    /// Mean SSIM over the Z/Y/X sub-images (the planes of stacks thinner than SSIM's window).
    private static func ssim(_ p: Tensor, _ r: Tensor, axes: String, dataRange range: Double) throws -> Double {
        var total = 0.0
        var ps = spatialImages(p, axes: axes), rs = spatialImages(r, axes: axes)
        if let first = ps.first, first.rank == 3, first.shape[0] < Metrics.ssimTaps {
            ps = ps.flatMap { spatialImages($0, axes: "TYX") }
            rs = rs.flatMap { spatialImages($0, axes: "TYX") }
        }
        for (a, b) in zip(ps, rs) { total += try Metrics.ssim(a, reference: b, dataRange: range) }
        return total / Double(ps.count)
    }

    private static func squeezed(_ image: Image) throws -> (Tensor, String) {
        var shape: [Int] = [], axes = ""
        for (n, letter) in zip(image.data.shape, image.axes) where n != 1 || letter == "Y" || letter == "X" {
            shape.append(n)
            axes.append(letter)
        }
        return (try image.data.reshaped(shape), axes)
    }

    /// The Z/Y/X sub-volume for every combination of the other axes, in row-major order of those axes.
    public static func spatialImages(_ t: Tensor, axes: String) -> [Tensor] {
        let letters = Array(axes)
        let spatial = letters.indices.filter { "ZYX".contains(letters[$0]) }
        let others = letters.indices.filter { !"ZYX".contains(letters[$0]) }
        if others.isEmpty || letters.count != t.rank { return [t] }
        let strides = Tensor.strides(of: t.shape)
        let spatialShape = spatial.map { t.shape[$0] }
        let spatialCount = spatialShape.reduce(1, *)
        let otherShape = others.map { t.shape[$0] }
        var images: [Tensor] = []
        t.withUnsafeBufferPointer { src in
            for combo in 0..<otherShape.reduce(1, *) {
                var base = 0, rest = combo
                for k in stride(from: others.count - 1, through: 0, by: -1) {
                    base += (rest % otherShape[k]) * strides[others[k]]
                    rest /= otherShape[k]
                }
                var image = Tensor(uninitialized: spatialShape)
                image.withUnsafeMutableBufferPointer { dst in
                    for i in 0..<spatialCount {
                        var offset = base, rest = i
                        for k in stride(from: spatial.count - 1, through: 0, by: -1) {
                            offset += (rest % spatialShape[k]) * strides[spatial[k]]
                            rest /= spatialShape[k]
                        }
                        dst[i] = src[offset]
                    }
                }
                images.append(image)
            }
        }
        return images
    }
}
