import Foundation
import LucidCore

/// Intensity normalization, saved with a model so prediction normalizes inputs the same way and
/// maps outputs back to the input's intensity range.
///
/// `percentile` follows CSBDeep: `(x − p_low) / (p_high − p_low)` with p_low, p_high the low/high
/// percentiles of the data (defaults 1 and 99.8), optionally clipped to [0, 1]. `meanStd` is
/// `(x − mean) / std`. The method (and its percentiles) is the configuration; `fitted(to:)`
/// measures `offset` and `scale` on data, `apply` computes `(x − offset) / scale` and `invert`
/// computes `x · scale + offset`. With `perImage` set, every image is normalized by its own
/// statistics (fit it to each image before applying it), at training and at prediction.
/// ```swift
/// let norm = try Normalization.percentile().fitted(to: raw.data)
/// let x = norm.apply(raw.data)          // network input
/// let restored = norm.invert(prediction) // back to raw intensities
/// ```
public struct Normalization: Codable, Equatable, Sendable {
    /// How offset and scale are measured (recipe `data.normalize.mode`).
    public enum Method: String, CaseIterable, Codable, Sendable {
        /// Map the `low` and `high` percentiles to 0 and 1 (CSBDeep).
        case percentile
        /// Subtract the mean, divide by the (population) standard deviation.
        case meanStd = "meanstd"
        /// Leave intensities as they are.
        case none

        /// Also reads `meanStd`, the name files of Lucid 0.1 wrote.
        public init(from decoder: Decoder) throws {
            let name = try decoder.singleValueContainer().decode(String.self)
            guard let value = Method(rawValue: name) ?? (name == "meanStd" ? .meanStd : nil) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown normalization '\(name)'"))
            }
            self = value
        }
    }

    public var method: Method
    /// Low percentile (0–100) for `.percentile`.
    public var low: Double
    /// High percentile (0–100) for `.percentile`.
    public var high: Double
    /// Clip normalized values to [0, 1] (`.percentile` only; `invert` cannot undo clipping).
    public var clip: Bool
    /// Value mapped to 0 (p_low or mean), as last fitted.
    public var offset: Float
    /// Value range mapped to 1 (p_high − p_low or std), as last fitted.
    public var scale: Float
    /// Each image is normalized by its own statistics (`offset` and `scale` are then only those
    /// of the last image fitted); false: one fit for all images.
    public var perImage: Bool

    /// A configuration; `offset` 0 and `scale` 1 until `fitted(to:)`.
    public init(method: Method, low: Double = 1, high: Double = 99.8, clip: Bool = false,
                offset: Float = 0, scale: Float = 1, perImage: Bool = false) {
        self.method = method
        self.low = low
        self.high = high
        self.clip = clip
        self.offset = offset
        self.scale = scale
        self.perImage = perImage
    }

    enum CodingKeys: String, CodingKey { case method, low, high, clip, offset, scale, perImage }

    /// Decodes a saved normalization; `perImage` is false when absent (files written before it existed).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        method = try c.decode(Method.self, forKey: .method)
        low = try c.decode(Double.self, forKey: .low)
        high = try c.decode(Double.self, forKey: .high)
        clip = try c.decode(Bool.self, forKey: .clip)
        offset = try c.decode(Float.self, forKey: .offset)
        scale = try c.decode(Float.self, forKey: .scale)
        perImage = try c.decodeIfPresent(Bool.self, forKey: .perImage) ?? false
    }

    /// CSBDeep percentile normalization.
    public static func percentile(low: Double = 1, high: Double = 99.8, clip: Bool = false) -> Normalization {
        Normalization(method: .percentile, low: low, high: high, clip: clip)
    }

    /// Zero mean, unit (population) standard deviation.
    public static var meanStd: Normalization { Normalization(method: .meanStd) }

    /// Identity.
    public static var none: Normalization { Normalization(method: .none) }

    /// Smallest scale used, so constant data maps to 0 instead of dividing by zero (CSBDeep adds 1e-20).
    static let minimumScale: Float = 1e-20

    /// A copy whose `offset` and `scale` are measured on `data` (NaNs ignored).
    public func fitted(to data: Tensor) throws -> Normalization {
        var n = self
        switch method {
        case .none:
            n.offset = 0
            n.scale = 1
        case .percentile:
            guard low >= 0, high <= 100, low < high else {
                throw ImagingError.invalidArgument(op: "Normalization.percentile",
                                                   detail: "need 0 ≤ low < high ≤ 100, got low \(low), high \(high)")
            }
            let p = try percentiles(data, [low, high])
            n.offset = p[0]
            n.scale = Swift.max(p[1] - p[0], Normalization.minimumScale)
        case .meanStd:
            let (mean, std) = try Normalization.meanAndStd(data)
            n.offset = Float(mean)
            n.scale = Swift.max(Float(std), Normalization.minimumScale)
        }
        return n
    }

    /// `(x − offset) / scale`, clipped to [0, 1] when `clip` is set.
    public func apply(_ x: Tensor) -> Tensor {
        if method == .none { return x }
        let inv = 1 / scale, off = offset
        if clip && method == .percentile {
            return Normalization.map(x) { s, d, n in
                for i in 0..<n { d[i] = Swift.min(Swift.max((s[i] - off) * inv, 0), 1) }
            }
        }
        return Normalization.map(x) { s, d, n in
            for i in 0..<n { d[i] = (s[i] - off) * inv }
        }
    }

    /// `x · scale + offset` (the inverse of `apply` without clipping).
    public func invert(_ x: Tensor) -> Tensor {
        if method == .none { return x }
        let sc = scale, off = offset
        return Normalization.map(x) { s, d, n in
            for i in 0..<n { d[i] = s[i] * sc + off }
        }
    }

    /// Runs `kernel(src, dst, n)` over parallel chunks of `x` into a new tensor.
    static func map(_ x: Tensor, _ kernel: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
        let out = Tensor(uninitialized: x.shape)
        let src = x.storage.base, dst = out.storage.base
        Threads.parallelChunks(x.count, minChunk: 1 << 16) { r in
            kernel(src + r.lowerBound, dst + r.lowerBound, r.count)
        }
        return out
    }

    /// Mean and population standard deviation, two passes in Float64 (NaNs ignored).
    static func meanAndStd(_ x: Tensor) throws -> (Double, Double) {
        let src = x.storage.base, n = x.count
        let (count, sum) = chunkedSums(n) { r in
            var c = 0, s = 0.0
            for i in r where !src[i].isNaN { c += 1; s += Double(src[i]) }
            return (c, s)
        }
        guard count > 0 else {
            throw ImagingError.invalidArgument(op: "Normalization.meanStd", detail: "no values (all NaN) among \(n) elements")
        }
        let mean = sum / Double(count)
        let (_, squares) = chunkedSums(n) { r in
            var s = 0.0
            for i in r where !src[i].isNaN { let d = Double(src[i]) - mean; s += d * d }
            return (0, s)
        }
        return (mean, (squares / Double(count)).squareRoot())
    }

    /// Adds up `(count, sum)` of `body` over parallel chunks of 0..<n.
    private static func chunkedSums(_ n: Int, _ body: (Range<Int>) -> (Int, Double)) -> (Int, Double) {
        let parts = Swift.max(1, Swift.min(Threads.count, n >> 16))
        var results = [(Int, Double)](repeating: (0, 0), count: parts)
        results.withUnsafeMutableBufferPointer { res in
            let r = res.baseAddress!
            Threads.parallelFor(parts) { p in r[p] = body((n * p / parts)..<(n * (p + 1) / parts)) }
        }
        return results.reduce((0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) }
    }
}
