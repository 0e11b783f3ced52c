import Foundation
import LucidCore

/// Normalizations of ``Metrics/nrmse(_:reference:normalization:)`` (scikit-image's names).
public enum NRMSENormalization: String, CaseIterable, Sendable {
    /// √mean(reference²) — scikit-image's default.
    case euclidean
    /// max(reference) − min(reference).
    case minMax = "min-max"
    /// mean(reference).
    case mean
}

/// All image-quality metrics of a prediction against its reference.
public struct MetricReport: Equatable, Sendable {
    /// Peak signal-to-noise ratio in dB (`+infinity` for identical images).
    public var psnr: Double
    /// Mean structural similarity (Gaussian window, σ = 1.5).
    public var ssim: Double
    /// Root-mean-square error over √mean(reference²).
    public var nrmse: Double
    /// Pearson correlation coefficient (NaN when either image is constant).
    public var pearson: Double

    public init(psnr: Double, ssim: Double, nrmse: Double, pearson: Double) {
        self.psnr = psnr
        self.ssim = ssim
        self.nrmse = nrmse
        self.pearson = pearson
    }

    /// One JSON object; non-finite values are written as `Infinity` / `NaN` as Python's `json` does.
    public func json() -> String {
        func number(_ v: Double) -> String {
            if v.isNaN { return "NaN" }
            if v.isInfinite { return v > 0 ? "Infinity" : "-Infinity" }
            return "\(v)"
        }
        return "{\"psnr\": \(number(psnr)), \"ssim\": \(number(ssim)), \"nrmse\": \(number(nrmse)), "
            + "\"pearson\": \(number(pearson))}"
    }
}

/// Image-quality metrics on 2D or 3D tensors, matching scikit-image's definitions.
///
/// Sums run in Double over fixed blocks, so results do not depend on the thread count.
/// ```swift
/// let report = try Metrics.evaluate(prediction, reference: groundTruth)
/// print(report.psnr, report.ssim)
/// ```
public enum Metrics {
    /// PSNR = 10·log10(range² / MSE), as `skimage.metrics.peak_signal_noise_ratio`.
    /// `dataRange` defaults to max − min of the reference (scikit-image instead assumes the dtype's
    /// range for floats: pass `dataRange` to reproduce that). Identical images give `+infinity`.
    public static func psnr(_ prediction: Tensor, reference: Tensor, dataRange: Double? = nil) throws -> Double {
        try checkPair("psnr", prediction, reference)
        let range = try dataRange ?? referenceRange("psnr", reference)
        guard range > 0, range.isFinite else {
            throw TensorError.invalidArgument(op: "psnr", detail: "dataRange \(range) must be a positive number")
        }
        let mse = meanSquaredError(prediction, reference)
        return mse == 0 ? .infinity : 10 * log10(range * range / mse)
    }

    /// Mean SSIM as `skimage.metrics.structural_similarity(reference, prediction, data_range:,
    /// gaussian_weights: True, sigma: 1.5, use_sample_covariance: False)`: Gaussian window σ = 1.5
    /// truncated at 3.5σ (11 taps), K1 = 0.01, K2 = 0.03, averaged after cropping 5 pixels
    /// from every border. Every axis needs at least 11 pixels. `dataRange` as in `psnr`.
    public static func ssim(_ prediction: Tensor, reference: Tensor, dataRange: Double? = nil) throws -> Double {
        try checkPair("ssim", prediction, reference)
        guard reference.rank == 2 || reference.rank == 3 else {
            throw TensorError.invalidArgument(op: "ssim", detail: "images of shape \(reference.shape) are not 2D or 3D")
        }
        guard reference.shape.allSatisfy({ $0 >= ssimTaps }) else {
            throw TensorError.invalidArgument(
                op: "ssim", detail: "image shape \(reference.shape) is smaller than the \(ssimTaps)-pixel window along an axis")
        }
        let range = try dataRange ?? referenceRange("ssim", reference)
        guard range > 0, range.isFinite else {
            throw TensorError.invalidArgument(op: "ssim", detail: "dataRange \(range) must be a positive number")
        }
        return SSIM(reference: reference, prediction: prediction, range: range).mean()
    }

    /// RMSE divided by the reference's norm, as `skimage.metrics.normalized_root_mse`.
    public static func nrmse(_ prediction: Tensor, reference: Tensor,
                             normalization: NRMSENormalization = .euclidean) throws -> Double {
        try checkPair("nrmse", prediction, reference)
        let denominator: Double
        switch normalization {
        case .euclidean:
            denominator = (blockSums(reference.count) { range in
                reference.withUnsafeBufferPointer { r in
                    var s = 0.0
                    for i in range { s += Double(r[i]) * Double(r[i]) }
                    return SIMD2(s, 0)
                }
            }[0] / Double(reference.count)).squareRoot()
        case .minMax:
            let (lo, hi) = extrema(reference)
            denominator = hi - lo
        case .mean:
            denominator = blockSums(reference.count) { range in
                reference.withUnsafeBufferPointer { r in
                    var s = 0.0
                    for i in range { s += Double(r[i]) }
                    return SIMD2(s, 0)
                }
            }[0] / Double(reference.count)
        }
        guard denominator != 0 else {
            throw TensorError.invalidArgument(
                op: "nrmse", detail: "the \(normalization.rawValue) normalization of the reference is 0")
        }
        return meanSquaredError(prediction, reference).squareRoot() / denominator
    }

    /// Pearson correlation coefficient; NaN when either image is constant.
    public static func pearson(_ prediction: Tensor, reference: Tensor) throws -> Double {
        try checkPair("pearson", prediction, reference)
        let n = Double(reference.count)
        let sums = blockSums(reference.count) { range in
            prediction.withUnsafeBufferPointer { p in
                reference.withUnsafeBufferPointer { r in
                    var sp = 0.0, sr = 0.0
                    for i in range { sp += Double(p[i]); sr += Double(r[i]) }
                    return SIMD2(sp, sr)
                }
            }
        }
        let mp = sums[0] / n, mr = sums[1] / n
        var spp = 0.0, srr = 0.0, spr = 0.0
        let blocks = blockCount(reference.count)
        var partial = [SIMD4<Double>](repeating: .zero, count: blocks)
        partial.withUnsafeMutableBufferPointer { out in
            prediction.withUnsafeBufferPointer { p in
                reference.withUnsafeBufferPointer { r in
                    Threads.parallelFor(blocks) { b in
                        var acc = SIMD4<Double>.zero
                        for i in blockRange(b, reference.count) {
                            let dp = Double(p[i]) - mp, dr = Double(r[i]) - mr
                            acc += SIMD4(dp * dp, dr * dr, dp * dr, 0)
                        }
                        out[b] = acc
                    }
                }
            }
        }
        for a in partial { spp += a[0]; srr += a[1]; spr += a[2] }
        guard spp > 0, srr > 0 else { return .nan }
        return spr / (spp * srr).squareRoot()
    }

    /// Spearman's rank correlation: Pearson r of the ranks (ties get their mean rank); NaN
    /// when either image is constant.
    public static func spearman(_ a: Tensor, _ b: Tensor) throws -> Double {
        try checkPair("spearman", a, b)
        func ranks(_ t: Tensor) throws -> Tensor {
            let v = t.scalars
            let order = v.indices.sorted { v[$0] < v[$1] }
            var r = [Float](repeating: 0, count: v.count)
            var i = 0
            while i < order.count {
                var j = i
                while j + 1 < order.count && v[order[j + 1]] == v[order[i]] { j += 1 }
                for k in i...j { r[order[k]] = Float(i + j) / 2 }
                i = j + 1
            }
            return try Tensor(shape: t.shape, scalars: r)
        }
        return try pearson(try ranks(a), reference: try ranks(b))
    }

    /// PSNR, SSIM, NRMSE (euclidean) and Pearson r at once; `dataRange` as in `psnr`.
    public static func evaluate(_ prediction: Tensor, reference: Tensor, dataRange: Double? = nil) throws -> MetricReport {
        let range = try dataRange ?? referenceRange("evaluate", reference)
        return MetricReport(psnr: try psnr(prediction, reference: reference, dataRange: range),
                            ssim: try ssim(prediction, reference: reference, dataRange: range),
                            nrmse: try nrmse(prediction, reference: reference),
                            pearson: try pearson(prediction, reference: reference))
    }

    // MARK: helpers

    static let ssimTaps = 11

    private static func checkPair(_ op: String, _ prediction: Tensor, _ reference: Tensor) throws {
        guard prediction.shape == reference.shape else {
            throw TensorError.shapeMismatch(op: op, detail: "prediction \(prediction.shape) vs reference \(reference.shape)")
        }
        guard reference.count > 0 else {
            throw TensorError.invalidArgument(op: op, detail: "empty images of shape \(reference.shape)")
        }
    }

    private static func referenceRange(_ op: String, _ reference: Tensor) throws -> Double {
        let (lo, hi) = extrema(reference)
        guard hi > lo else {
            throw TensorError.invalidArgument(
                op: op, detail: "the reference is constant (\(lo)), so its data range is 0: pass dataRange")
        }
        return hi - lo
    }

    private static func extrema(_ t: Tensor) -> (Double, Double) {
        t.withUnsafeBufferPointer { p in
            var lo = p[0], hi = p[0]
            for v in p { lo = Swift.min(lo, v); hi = Swift.max(hi, v) }
            return (Double(lo), Double(hi))
        }
    }

    private static func meanSquaredError(_ prediction: Tensor, _ reference: Tensor) -> Double {
        blockSums(reference.count) { range in
            prediction.withUnsafeBufferPointer { p in
                reference.withUnsafeBufferPointer { r in
                    var s = 0.0
                    for i in range { let d = Double(p[i]) - Double(r[i]); s += d * d }
                    return SIMD2(s, 0)
                }
            }
        }[0] / Double(reference.count)
    }

    private static let block = 1 << 15
    private static func blockCount(_ n: Int) -> Int { (n + block - 1) / block }
    private static func blockRange(_ b: Int, _ n: Int) -> Range<Int> { b * block ..< Swift.min(n, (b + 1) * block) }

    /// Two sums over `0..<n`, computed per fixed block in parallel and added in block order.
    private static func blockSums(_ n: Int, _ f: (Range<Int>) -> SIMD2<Double>) -> SIMD2<Double> {
        let blocks = blockCount(n)
        var partial = [SIMD2<Double>](repeating: .zero, count: blocks)
        partial.withUnsafeMutableBufferPointer { out in
            Threads.parallelFor(blocks) { b in out[b] = f(blockRange(b, n)) }
        }
        return partial.reduce(.zero, +)
    }
}

/// Separable valid-mode Gaussian filtering of x, y, x², y², xy and the SSIM map's mean.
///
/// Only the region scikit-image averages (5 pixels in from every border) is computed, and there
/// the 11-tap window never leaves the image, so the border mode does not matter.
private struct SSIM {
    let reference: Tensor
    let prediction: Tensor
    let c1: Double, c2: Double
    let depth: Int, height: Int, width: Int
    let weights: [Double]

    init(reference: Tensor, prediction: Tensor, range: Double) {
        self.reference = reference
        self.prediction = prediction
        c1 = (0.01 * range) * (0.01 * range)
        c2 = (0.03 * range) * (0.03 * range)
        let s = reference.shape
        (depth, height, width) = s.count == 2 ? (1, s[0], s[1]) : (s[0], s[1], s[2])
        let sigma = 1.5, radius = Metrics.ssimTaps / 2
        let w = (-radius...radius).map { exp(-0.5 * Double($0 * $0) / (sigma * sigma)) }
        let total = w.reduce(0, +)
        weights = w.map { $0 / total }
    }

    func mean() -> Double {
        let taps = Metrics.ssimTaps
        let outH = height - taps + 1, outW = width - taps + 1, plane = outH * outW
        let threeD = reference.rank == 3
        let slices = threeD ? taps : 1
        // Fields: x, y, x², y², xy. `rows` holds X-filtered rows of one slice; `ring` the last
        // `slices` XY-filtered slices.
        let rows = UnsafeMutablePointer<Double>.allocate(capacity: 5 * height * outW)
        let ring = UnsafeMutablePointer<Double>.allocate(capacity: slices * 5 * plane)
        let combined = UnsafeMutablePointer<Double>.allocate(capacity: threeD ? 5 * plane : 0)
        defer { rows.deallocate(); ring.deallocate(); combined.deallocate() }
        var rowSums = [Double](repeating: 0, count: outH)
        var total = 0.0
        for z in 0..<depth {
            filterSlice(z, rows: rows, into: ring + (z % slices) * 5 * plane, outH: outH, outW: outW)
            if !threeD {
                total += sumMap(ring, plane: plane, outH: outH, outW: outW, rowSums: &rowSums)
            } else if z >= taps - 1 {
                let first = z - (taps - 1)
                Threads.parallelFor(outH) { y in
                    for f in 0..<5 {
                        let dst = combined + f * plane + y * outW
                        for x in 0..<outW { dst[x] = 0 }
                        for k in 0..<taps {
                            let w = weights[k]
                            let src = ring + ((first + k) % slices) * 5 * plane + f * plane + y * outW
                            for x in 0..<outW { dst[x] += w * src[x] }
                        }
                    }
                }
                total += sumMap(combined, plane: plane, outH: outH, outW: outW, rowSums: &rowSums)
            }
        }
        let outD = threeD ? depth - taps + 1 : 1
        return total / Double(outD * plane)
    }

    /// X then Y pass over slice `z`, writing the five filtered fields (valid region) to `out`.
    private func filterSlice(_ z: Int, rows: UnsafeMutablePointer<Double>, into out: UnsafeMutablePointer<Double>,
                             outH: Int, outW: Int) {
        let taps = Metrics.ssimTaps
        let h = height, w = width
        reference.withUnsafeBufferPointer { rb in
            prediction.withUnsafeBufferPointer { pb in
                let r = rb.baseAddress! + z * h * w, p = pb.baseAddress! + z * h * w
                Threads.parallelChunks(h) { chunk in
                    // The five products of one row in Double, then an 11-tap pass per field whose
                    // inner loop over x vectorizes.
                    let products = UnsafeMutablePointer<Double>.allocate(capacity: 5 * w)
                    defer { products.deallocate() }
                    for y in chunk {
                        let rr = r + y * w, pr = p + y * w
                        for x in 0..<w {
                            let a = Double(rr[x]), b = Double(pr[x])
                            products[x] = a; products[w + x] = b
                            products[2 * w + x] = a * a; products[3 * w + x] = b * b; products[4 * w + x] = a * b
                        }
                        for f in 0..<5 {
                            let src = products + f * w
                            let dst = rows + f * h * outW + y * outW
                            for x in 0..<outW { dst[x] = 0 }
                            for k in 0..<taps {
                                let wk = weights[k]
                                let shifted = src + k
                                for x in 0..<outW { dst[x] += wk * shifted[x] }
                            }
                        }
                    }
                }
            }
        }
        Threads.parallelFor(outH) { y in
            for f in 0..<5 {
                let dst = out + f * outH * outW + y * outW
                for x in 0..<outW { dst[x] = 0 }
                for k in 0..<taps {
                    let wk = weights[k]
                    let src = rows + f * height * outW + (y + k) * outW
                    for x in 0..<outW { dst[x] += wk * src[x] }
                }
            }
        }
    }

    /// Sum of the SSIM map over one plane of filtered fields (rows summed in order).
    private func sumMap(_ fields: UnsafeMutablePointer<Double>, plane: Int, outH: Int, outW: Int,
                        rowSums: inout [Double]) -> Double {
        let c1 = c1, c2 = c2
        rowSums.withUnsafeMutableBufferPointer { sums in
            Threads.parallelFor(outH) { y in
                var s = 0.0
                for x in 0..<outW {
                    let i = y * outW + x
                    let ux = fields[i], uy = fields[plane + i]
                    let vx = fields[2 * plane + i] - ux * ux
                    let vy = fields[3 * plane + i] - uy * uy
                    let vxy = fields[4 * plane + i] - ux * uy
                    s += ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
                }
                sums[y] = s
            }
        }
        return rowSums.reduce(0, +)
    }
}

/// Running sums for the Pearson r of one channel over many batches (the training log's
/// validation r). Values are shifted by the first pair seen, which keeps the one-pass sums exact
/// enough in Double for data of any offset.
struct PearsonSums {
    private var shift: (p: Double, r: Double)?
    private var n = 0.0, sp = 0.0, sr = 0.0, spp = 0.0, srr = 0.0, spr = 0.0

    /// Adds channel `c` of every sample of `prediction` and `reference` (`[B, C, spatial…]`) to `sums[c]`.
    static func add(prediction: Tensor, reference: Tensor, into sums: inout [PearsonSums]) {
        let (b, c) = (reference.shape[0], reference.shape[1])
        let plane = reference.count / max(1, b * c)
        prediction.withUnsafeBufferPointer { p in
            reference.withUnsafeBufferPointer { r in
                for sample in 0..<b {
                    for channel in 0..<c {
                        let start = (sample * c + channel) * plane
                        sums[channel].add(UnsafeBufferPointer(rebasing: p[start..<(start + plane)]),
                                          UnsafeBufferPointer(rebasing: r[start..<(start + plane)]))
                    }
                }
            }
        }
    }

    mutating func add(_ p: UnsafeBufferPointer<Float>, _ r: UnsafeBufferPointer<Float>) {
        guard !p.isEmpty else { return }
        let k = shift ?? (Double(p[0]), Double(r[0]))
        shift = k
        for i in p.indices {
            let x = Double(p[i]) - k.p, y = Double(r[i]) - k.r
            sp += x
            sr += y
            spp += x * x
            srr += y * y
            spr += x * y
        }
        n += Double(p.count)
    }

    /// r over everything added; NaN when either side is constant.
    var r: Double {
        let vp = spp - sp * sp / n, vr = srr - sr * sr / n
        guard n > 0, vp > 0, vr > 0 else { return .nan }
        return (spr - sp * sr / n) / (vp * vr).squareRoot()
    }
}
