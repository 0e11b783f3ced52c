import Foundation
import LucidCore

/// One measured bead or PSF: where its peak is and how wide it is.
public struct PSFMeasurementResult: Sendable, Equatable {
    /// Sub-pixel peak position, one coordinate per axis (tensor order: `[z,] y, x`), in pixels.
    public var center: [Double]
    /// Full width at half maximum along each axis (tensor order), in pixels.
    public var fwhm: [Double]
    /// Peak height above the background.
    public var peak: Double
}

/// Measures PSFs and bead images, and averages beads into an experimental PSF.
public enum PSFMeasurement {
    /// FWHM along every axis of a 2-D or 3-D PSF or single-bead image, through its brightest pixel.
    ///
    /// The background (median of the outer faces) is subtracted; the peak and each half-maximum
    /// crossing are located to sub-pixel precision by fitting parabolas to the logarithm of
    /// three neighbouring samples (exact for a Gaussian).
    public static func measure(_ image: Tensor) throws -> PSFMeasurementResult {
        let op = "PSFMeasurement.measure"
        guard image.rank == 2 || image.rank == 3, image.shape.allSatisfy({ $0 >= 3 }) else {
            throw TensorError.invalidArgument(op: op, detail: "image shape \(image.shape) must be 2-D or 3-D with every extent ≥ 3")
        }
        let background = borderMedian(image)
        let values = image.scalars
        let peakIndex = values.indices.max { values[$0] < values[$1] }!
        let strides = Tensor.strides(of: image.shape)
        let position = zip(strides, image.shape).map { (peakIndex / $0) % $1 }
        return try measure(values, shape: image.shape, at: position, background: background, op: op)
    }

    static func measure(_ values: [Float], shape: [Int], at position: [Int], background: Float,
                        op: String) throws -> PSFMeasurementResult {
        let strides = Tensor.strides(of: shape)
        var center: [Double] = [], widths: [Double] = []
        var logPeak = 0.0
        for axis in 0..<shape.count {
            // The line through the peak along this axis, background subtracted.
            var offset = 0
            for a in 0..<shape.count where a != axis { offset += position[a] * strides[a] }
            let line = (0..<shape[axis]).map { Double(values[offset + $0 * strides[axis]] - background) }
            let i = position[axis]
            guard line[i] > 0 else {
                throw TensorError.invalidArgument(op: op, detail: "no peak above the background \(background)")
            }
            var peak = line[i], shift = 0.0
            if i > 0, i + 1 < line.count, line[i - 1] > 0, line[i + 1] > 0 {
                let (l0, lm, lp) = (log(line[i]), log(line[i - 1]), log(line[i + 1]))
                let a = (lp + lm - 2 * l0) / 2, b = (lp - lm) / 2
                if a < 0 {
                    shift = max(-0.5, min(0.5, -b / (2 * a)))
                    peak = exp(l0 + b * shift + a * shift * shift)
                }
            }
            let half = peak / 2
            guard let left = crossing(line, from: i, step: -1, level: half),
                  let right = crossing(line, from: i, step: 1, level: half) else {
                throw TensorError.invalidArgument(op: op, detail: "the profile along axis \(axis) does not fall to half maximum inside shape \(shape)")
            }
            center.append(Double(i) + shift)
            widths.append(right - left)
            // Separable log-parabola model: each axis adds its own correction to the sampled peak.
            logPeak += axis == 0 ? log(peak) : log(peak) - log(line[i])
        }
        return PSFMeasurementResult(center: center, fwhm: widths, peak: exp(logPeak))
    }

    /// Position where `line` first falls below `level` walking from `start` by `step`.
    private static func crossing(_ line: [Double], from start: Int, step: Int, level: Double) -> Double? {
        var j = start
        while j + step >= 0 && j + step < line.count && line[j + step] >= level { j += step }
        let k = j + step
        guard k >= 0 && k < line.count else { return nil }
        // Linear interpolation of the logarithm (or of the values when one is not positive).
        let (a, b) = (line[j], line[k])
        var t: Double
        if a > 0, b > 0 {
            t = (log(a) - log(level)) / (log(a) - log(b))
            // Refine with the parabola through a third sample beyond the crossing when it exists.
            let m = k + step
            if m >= 0 && m < line.count && line[m] > 0 {
                let (y0, y1, y2) = (log(a), log(b), log(line[m]))
                let qa = (y2 - 2 * y1 + y0) / 2, qb = (y1 - y0) - qa
                let target = log(level) - y0
                if abs(qa) > 1e-12 {
                    let disc = qb * qb + 4 * qa * target
                    if disc >= 0 {
                        for root in [(-qb + disc.squareRoot()) / (2 * qa), (-qb - disc.squareRoot()) / (2 * qa)]
                        where root >= 0 && root <= 1 { t = root; break }
                    }
                }
            }
        } else {
            t = (a - level) / (a - b)
        }
        return Double(j) + Double(step) * t
    }

    /// Median of the voxels on the outer faces of a 2-D or 3-D image.
    static func borderMedian(_ image: Tensor) -> Float {
        let s = FFTGrid.promote(image.shape)
        let v = image.scalars
        var border: [Float] = []
        for z in 0..<s[0] { for y in 0..<s[1] { for x in 0..<s[2] {
            let onFace = (s[0] > 1 && (z == 0 || z == s[0] - 1)) || y == 0 || y == s[1] - 1 || x == 0 || x == s[2] - 1
            if onFace { border.append(v[(z * s[1] + y) * s[2] + x]) }
        }}}
        border.sort()
        return border[border.count / 2]
    }

    /// Finds isolated beads in a stack, cuts a `box` around each (re-centred to sub-pixel
    /// precision by linear interpolation), subtracts the background, normalizes each to sum 1 and
    /// averages them into an experimental PSF (sum 1).
    ///
    /// Beads are local maxima above `threshold` (default: halfway between the stack's median and
    /// its maximum) whose box fits in the stack and does not overlap a brighter bead's box.
    public static func averageBeads(_ stack: Tensor, box: [Int], threshold: Float? = nil,
                                    maxBeads: Int = 100) throws -> (psf: Tensor, beads: [PSFMeasurementResult]) {
        let op = "PSFMeasurement.averageBeads"
        guard stack.rank == 2 || stack.rank == 3, box.count == stack.rank,
              zip(box, stack.shape).allSatisfy({ $0 % 2 == 1 && $0 >= 3 && $0 <= $1 }) else {
            throw TensorError.invalidArgument(op: op, detail: "box \(box) must be odd, ≥ 3 and fit in stack \(stack.shape) per axis")
        }
        let s = FFTGrid.promote(stack.shape), b = FFTGrid.promote(box), h = b.map { $0 / 2 }
        let v = stack.scalars
        let sorted = v.sorted()
        let median = sorted[sorted.count / 2]
        let level = threshold ?? (median + (sorted.last! - median) / 2)
        @inline(__always) func at(_ z: Int, _ y: Int, _ x: Int) -> Float { v[(z * s[1] + y) * s[2] + x] }
        var candidates: [(Float, [Int])] = []
        for z in h[0]..<(s[0] - h[0]) { for y in h[1]..<(s[1] - h[1]) { for x in h[2]..<(s[2] - h[2]) {
            let c = at(z, y, x)
            guard c > level else { continue }
            var isMax = true
            for dz in -1...1 where isMax { for dy in -1...1 where isMax { for dx in -1...1 where dz != 0 || dy != 0 || dx != 0 {
                let (zz, yy, xx) = (z + dz, y + dy, x + dx)
                if zz >= 0, zz < s[0], yy >= 0, yy < s[1], xx >= 0, xx < s[2], at(zz, yy, xx) > c { isMax = false; break }
            }}}
            if isMax { candidates.append((c, [z, y, x])) }
        }}}
        candidates.sort { $0.0 > $1.0 }
        var accepted: [[Int]] = []
        for (_, p) in candidates where accepted.count < maxBeads {
            if accepted.allSatisfy({ q in (0..<3).contains { abs(q[$0] - p[$0]) > b[$0] - 1} }) {
                accepted.append(p)
            }
        }
        guard !accepted.isEmpty else {
            throw TensorError.invalidArgument(op: op, detail: "no bead above threshold \(level) with a \(box) box inside stack \(stack.shape)")
        }
        var sum = [Double](repeating: 0, count: b[0] * b[1] * b[2])
        var results: [PSFMeasurementResult] = []
        let background = median
        for p in accepted {
            let position = Array(p.suffix(stack.rank))
            let m = try measure(v, shape: stack.shape, at: position, background: background, op: op)
            results.append(m)
            let c = [Double](repeating: 0, count: 3 - stack.rank) + m.center
            var cut = [Double](repeating: 0, count: sum.count)
            var total = 0.0
            for z in 0..<b[0] { for y in 0..<b[1] { for x in 0..<b[2] {
                let value = max(0, trilinear(v, s, c[0] + Double(z - h[0]), c[1] + Double(y - h[1]), c[2] + Double(x - h[2])) - Double(background))
                cut[(z * b[1] + y) * b[2] + x] = value
                total += value
            }}}
            guard total > 0 else { continue }
            for i in sum.indices { sum[i] += cut[i] / total }
        }
        let norm = sum.reduce(0, +)
        let psf = try Tensor(shape: box, scalars: sum.map { Float($0 / norm) })
        return (psf, results)
    }

    /// Trilinear interpolation of a `[z, y, x]` volume, clamped at the edges.
    private static func trilinear(_ v: [Float], _ s: [Int], _ z: Double, _ y: Double, _ x: Double) -> Double {
        func split(_ u: Double, _ n: Int) -> (Int, Int, Double) {
            let c = min(max(u, 0), Double(n - 1))
            let i = min(Int(c), max(n - 2, 0))
            return (i, min(i + 1, n - 1), c - Double(i))
        }
        let (z0, z1, fz) = split(z, s[0]), (y0, y1, fy) = split(y, s[1]), (x0, x1, fx) = split(x, s[2])
        func at(_ a: Int, _ b: Int, _ c: Int) -> Double { Double(v[(a * s[1] + b) * s[2] + c]) }
        let c00 = at(z0, y0, x0) * (1 - fx) + at(z0, y0, x1) * fx
        let c01 = at(z0, y1, x0) * (1 - fx) + at(z0, y1, x1) * fx
        let c10 = at(z1, y0, x0) * (1 - fx) + at(z1, y0, x1) * fx
        let c11 = at(z1, y1, x0) * (1 - fx) + at(z1, y1, x1) * fx
        return (c00 * (1 - fy) + c01 * fy) * (1 - fz) + (c10 * (1 - fy) + c11 * fy) * fz
    }
}
