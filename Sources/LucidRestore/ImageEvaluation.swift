import Foundation
import LucidCore
import LucidImaging

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
        var ssim = 0.0
        var ps = spatialImages(p, axes: axes), rs = spatialImages(r, axes: axes)
        if let first = ps.first, first.rank == 3, first.shape[0] < Metrics.ssimTaps {
            ps = ps.flatMap { spatialImages($0, axes: "TYX") }
            rs = rs.flatMap { spatialImages($0, axes: "TYX") }
        }
        for (a, b) in zip(ps, rs) { ssim += try Metrics.ssim(a, reference: b, dataRange: range) }
        return MetricReport(psnr: try Metrics.psnr(p, reference: r, dataRange: range), ssim: ssim / Double(ps.count),
                            nrmse: try Metrics.nrmse(p, reference: r), pearson: try Metrics.pearson(p, reference: r))
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
