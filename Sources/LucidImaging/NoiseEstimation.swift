import Foundation
import LucidCore

/// A Poisson–Gaussian noise model: a pixel of intensity `y` has variance `gain·y + floor`
/// (shot noise scaled by the detector gain, plus read noise), in the image's own units.
public struct PoissonGaussianNoise: Equatable, Sendable {
    /// Variance per unit of intensity (1/photons-per-unit after normalization).
    public var gain: Double
    /// Variance at zero intensity (read noise², offsets).
    public var floor: Double

    public init(gain: Double, floor: Double) {
        self.gain = gain
        self.floor = floor
    }

    /// The variance at intensity `y`, at least `minimum` (so it stays positive below the offset).
    @inlinable public func variance(_ y: Float, minimum: Float = 1e-8) -> Float {
        Swift.max(Float(gain) * y + Float(floor), minimum)
    }

    /// The mean variance over the pixels of `x`.
    public func meanVariance(_ x: Tensor) -> Double {
        x.withUnsafeBufferPointer { p in p.reduce(0.0) { $0 + Double(variance($1)) } / Double(Swift.max(1, p.count)) }
    }

    /// Fits the model to the noise of images `[…, H, W]` (every plane of the last two axes).
    ///
    /// Each 2×2 block gives its diagonal Haar detail `(a − b − c + d)/2`, whose variance is the
    /// noise variance for white noise and which smooth structure barely reaches, and the mean
    /// of the 6×6 window around it (its intensity, with 1/36 of the noise variance: binning by
    /// a noisier mean would flatten the fitted line). Blocks are sorted into 16 bins by that
    /// mean; each bin's variance is the robust one of its details, `(1.4826·median|detail|)²`
    /// (edges and texture are outliers); a least-squares line through the bins gives gain and
    /// floor (gain ≥ 0).
    public static func estimate(_ x: Tensor) throws -> PoissonGaussianNoise { try estimate([x]) }

    /// The model fitted to the planes of several images together.
    public static func estimate(_ images: [Tensor]) throws -> PoissonGaussianNoise {
        var blocks: [(mean: Float, detail: Float)] = []
        for x in images { try collectBlocks(x, into: &blocks) }
        return try fit(&blocks)
    }

    /// The (window mean, diagonal detail) of every 2×2 block of the planes of `x`.
    private static func collectBlocks(_ x: Tensor, into blocks: inout [(mean: Float, detail: Float)]) throws {
        guard x.rank >= 2, x.shape[x.rank - 1] >= 6, x.shape[x.rank - 2] >= 6 else {
            throw ImagingError.invalidArgument(op: "PoissonGaussianNoise.estimate", detail: "needs planes of at least 6×6 pixels, got shape \(x.shape)")
        }
        let (h, w) = (x.shape[x.rank - 2], x.shape[x.rank - 1])
        let planes = x.count / (h * w)
        blocks.reserveCapacity(blocks.count + planes * (h / 2) * (w / 2))
        x.withUnsafeBufferPointer { p in
            for plane in 0..<planes {
                let base = plane * h * w
                for i in stride(from: 2, to: h - 3, by: 2) {
                    for j in stride(from: 2, to: w - 3, by: 2) {
                        let a = p[base + i * w + j], b = p[base + i * w + j + 1]
                        let c = p[base + (i + 1) * w + j], d = p[base + (i + 1) * w + j + 1]
                        var sum: Float = 0
                        for r in (i - 2)...(i + 3) { for q in (j - 2)...(j + 3) { sum += p[base + r * w + q] } }
                        blocks.append((sum / 36, (a - b - c + d) / 2))
                    }
                }
            }
        }
    }

    /// The line through the binned robust variances of `blocks`.
    private static func fit(_ blocks: inout [(mean: Float, detail: Float)]) throws -> PoissonGaussianNoise {
        guard blocks.count >= 64 else {
            throw ImagingError.invalidArgument(op: "PoissonGaussianNoise.estimate", detail: "\(blocks.count) 2×2 blocks are too few to measure noise (need 64)")
        }
        blocks.sort { $0.mean < $1.mean }
        let bins = min(16, blocks.count / 32)
        var points: [(m: Double, v: Double)] = []
        for k in 0..<bins {
            let part = blocks[(k * blocks.count / bins)..<((k + 1) * blocks.count / bins)]
            let m = part.reduce(0.0) { $0 + Double($1.mean) } / Double(part.count)
            let magnitudes = part.map { Swift.abs($0.detail) }.sorted()
            let mad = Double(magnitudes[magnitudes.count / 2]) * 1.4826
            points.append((m, mad * mad))
        }
        let n = Double(points.count)
        let mm = points.reduce(0) { $0 + $1.m } / n, mv = points.reduce(0) { $0 + $1.v } / n
        let sxx = points.reduce(0) { $0 + ($1.m - mm) * ($1.m - mm) }
        let sxv = points.reduce(0) { $0 + ($1.m - mm) * ($1.v - mv) }
        var gain = sxx > 0 ? sxv / sxx : 0
        if gain < 0 { gain = 0 }
        let floor = gain == 0 ? points.map(\.v).sorted()[points.count / 2] : mv - gain * mm
        return PoissonGaussianNoise(gain: gain, floor: floor)
    }
}
