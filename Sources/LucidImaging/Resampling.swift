import Foundation
import LucidCore

/// Linear resampling of the Y and X axes, for models trained at another pixel size.
///
/// Pixel centres are aligned as in PyTorch's `interpolate(mode: "bilinear", align_corners: False)`:
/// output pixel `i` of `m` samples the input at `(i + 0.5) · n / m − 0.5` (clamped to the image),
/// weighting its two neighbours linearly along each axis.
/// ```swift
/// let small = try Resampling.linearYX(image.data, height: 240, width: 320)
/// ```
public enum Resampling {
    /// `x` (rank ≥ 2) with its last two axes resampled linearly to `height` × `width`.
    public static func linearYX(_ x: Tensor, height: Int, width: Int) throws -> Tensor {
        guard x.rank >= 2, x.count > 0, height > 0, width > 0 else {
            throw ImagingError.invalidArgument(op: "Resampling.linearYX",
                                               detail: "cannot resample \(x.shape) to \(height) × \(width)")
        }
        let (h, w) = (x.shape[x.rank - 2], x.shape[x.rank - 1])
        if h == height && w == width { return x }
        let rows = taps(from: h, to: height), columns = taps(from: w, to: width)
        let planes = x.count / (h * w)
        let out = Tensor(uninitialized: Array(x.shape.dropLast(2)) + [height, width])
        let src = x.storage.base, dst = out.storage.base
        Threads.parallelFor(planes) { p in
            let s = src + p * h * w, d = dst + p * height * width
            // Along X for the two input rows each output row needs, then along Y.
            var row0 = [Float](repeating: 0, count: width), row1 = row0
            func resampleRow(_ y: Int, into row: inout [Float]) {
                let line = s + y * w
                for j in 0..<width {
                    let t = columns[j]
                    row[j] = line[t.low] * (1 - t.weight) + line[t.high] * t.weight
                }
            }
            for i in 0..<height {
                let t = rows[i]
                resampleRow(t.low, into: &row0)
                resampleRow(t.high, into: &row1)
                let o = d + i * width
                for j in 0..<width { o[j] = row0[j] * (1 - t.weight) + row1[j] * t.weight }
            }
        }
        return out
    }

    /// The number of pixels an axis of `n` pixels of size `from` spans at pixel size `to` (≥ 1).
    public static func extent(_ n: Int, from: Double, to: Double) -> Int {
        max(1, Int((Double(n) * from / to).rounded()))
    }

    /// For each of `m` output pixels: the two input pixels it lies between and the weight of the second.
    static func taps(from n: Int, to m: Int) -> [(low: Int, high: Int, weight: Float)] {
        let ratio = Double(n) / Double(m)
        return (0..<m).map { i in
            let position = min(max((Double(i) + 0.5) * ratio - 0.5, 0), Double(n - 1))
            let low = Int(position.rounded(.down))
            return (low, min(low + 1, n - 1), Float(position - Double(low)))
        }
    }
}

extension Image {
    /// The image resampled linearly in Y and X to `height` × `width`, its pixel size scaled to match.
    public func resampledYX(height: Int, width: Int) throws -> Image {
        try validate()
        var out = self
        out.data = try Resampling.linearYX(data, height: height, width: width)
        out.pixelSize = pixelSize.map { $0 * Double(size("X")) / Double(width) }
        return out
    }
}
