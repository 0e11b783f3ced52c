import Foundation
import LucidCore

/// The generalized Anscombe transform for Poisson–Gaussian noise (Murtagh, Starck & Bijaoui
/// 1995; Mäkitalo & Foi 2013), with its noise model measured on the data.
///
/// A camera pixel reads `z = gain · photons + offset + read noise`, so its variance grows
/// linearly with its mean: `var(z) = gain · mean(z) + intercept`. `estimate` fits that line to
/// local means and variances of the image. The transform
/// `f(z) = (2 / gain) · √(max(0, gain · z + 3/8 · gain² + intercept))` makes the noise's variance
/// about 1 everywhere. `inverse` is its exact algebraic inverse (on f ≥ 0); `unbiasedInverse`
/// maps a denoised value (an estimate of E[f(z)]) back to E[z] with Mäkitalo & Foi's closed-form
/// approximation of the exact unbiased inverse (the algebraic inverse is biased low at low counts).
/// With `gain` 0 (no signal-dependent noise was found) the transform is `z / √intercept`.
public struct GeneralizedAnscombe: Codable, Equatable, Sendable {
    /// Slope of variance over mean (the camera gain in intensity units per photon).
    public var gain: Double
    /// Variance at zero intensity (`read noise² − gain · offset`).
    public var intercept: Double

    public init(gain: Double, intercept: Double) {
        self.gain = gain
        self.intercept = intercept
    }

    /// The intensity at which the fitted variance would vanish: the camera offset less the read
    /// noise's share (`−intercept / gain`); nil without signal-dependent noise.
    public var offset: Double? { gain > 0 ? -intercept / gain : nil }

    /// One line for logs: the fitted model.
    public var summary: String {
        if gain > 0 {
            return String(format: "Poisson–Gaussian noise: variance = %.4g · mean %@ %.4g (gain %.4g, offset %.4g)",
                          gain, intercept < 0 ? "−" : "+", abs(intercept), gain, offset!)
        }
        return String(format: "Gaussian noise: σ %.4g (no signal-dependent part found)", intercept.squareRoot())
    }

    /// Fits `var = gain · mean + intercept` to `[C, spatial…]` planes (the last two axes are Y and
    /// X): every 8×8 block of every YX plane gives its mean and the variance of its pixels'
    /// differences from their 4 neighbours' mean (which removes smooth structure); the blocks are
    /// sorted by mean into 16 groups of equal size, and the line is fitted to the groups' median
    /// means and median variances (medians resist edges). Throws when the data are too small or flat.
    public static func estimate(_ planes: [Tensor]) throws -> GeneralizedAnscombe {
        var blocks: [(mean: Double, variance: Double)] = []
        let side = 8
        for t in planes {
            guard t.rank >= 2 else { continue }
            let (h, w) = (t.shape[t.rank - 2], t.shape[t.rank - 1])
            let count = t.count / (h * w)
            t.withUnsafeBufferPointer { p in
                for plane in 0..<count {
                    let q = p.baseAddress! + plane * h * w
                    var y0 = 1
                    while y0 + side <= h - 1 {
                        var x0 = 1
                        while x0 + side <= w - 1 {
                            var s = 0.0, r2 = 0.0
                            for y in y0..<(y0 + side) {
                                for x in x0..<(x0 + side) {
                                    let v = Double(q[y * w + x])
                                    let around = Double(q[(y - 1) * w + x] + q[(y + 1) * w + x] + q[y * w + x - 1] + q[y * w + x + 1]) / 4
                                    s += v
                                    r2 += (v - around) * (v - around)
                                }
                            }
                            let n = Double(side * side)
                            // v − mean of 4 independent neighbours has 1 + 1/4 times the pixel variance.
                            blocks.append((s / n, r2 / n / 1.25))
                            x0 += side
                        }
                        y0 += side
                    }
                }
            }
        }
        let groups = 16
        guard blocks.count >= groups * 4 else {
            throw TensorError.invalidArgument(op: "GeneralizedAnscombe.estimate", detail: "the images give \(blocks.count) 8×8 blocks; the mean–variance fit needs at least \(groups * 4)")
        }
        blocks.sort { $0.mean < $1.mean }
        func median(_ v: [Double]) -> Double {
            let s = v.sorted()
            return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
        var xs: [Double] = [], ys: [Double] = []
        for g in 0..<groups {
            let part = blocks[(g * blocks.count / groups)..<((g + 1) * blocks.count / groups)]
            xs.append(median(part.map(\.mean)))
            ys.append(median(part.map(\.variance)))
        }
        let mx = xs.reduce(0, +) / Double(groups), my = ys.reduce(0, +) / Double(groups)
        let sxx = zip(xs, xs).map { ($0 - mx) * ($1 - mx) }.reduce(0, +)
        let sxy = zip(xs, ys).map { ($0 - mx) * ($1 - my) }.reduce(0, +)
        guard sxx > 0, my > 0 else {
            throw TensorError.invalidArgument(op: "GeneralizedAnscombe.estimate", detail: "the images are flat: no noise to model")
        }
        let gain = sxy / sxx, intercept = my - gain * mx
        // Signal-dependent noise below 5% of the variance at the mean intensity: Gaussian.
        if gain * mx <= 0.05 * my { return GeneralizedAnscombe(gain: 0, intercept: my) }
        return GeneralizedAnscombe(gain: gain, intercept: intercept)
    }

    /// `f(z)` of every value.
    public func forward(_ x: Tensor) -> Tensor {
        map(x) { z in
            if gain <= 0 { return z / intercept.squareRoot() }
            return 2 / gain * max(0, gain * z + 0.375 * gain * gain + intercept).squareRoot()
        }
    }

    /// The algebraic inverse: `inverse(forward(z)) == z` wherever `gain · z + 3/8 · gain² +
    /// intercept ≥ 0` (values below map to that bound); negative values count as 0.
    public func inverse(_ x: Tensor) -> Tensor {
        map(x) { f in
            if gain <= 0 { return f * intercept.squareRoot() }
            let s = gain * max(0, f) / 2
            return (s * s - 0.375 * gain * gain - intercept) / gain
        }
    }

    /// E[z] from an estimate `D` of E[f(z)]: Mäkitalo & Foi's closed form for the equivalent
    /// Poisson variable `(z − offset) / gain`, whose Anscombe transform `f` is,
    /// `¼D² + ¼√(3/2)D⁻¹ − 11/8 D⁻² + 5/8 √(3/2)D⁻³ − 1/8`, clipped at 0 and scaled back.
    public func unbiasedInverse(_ x: Tensor) -> Tensor {
        guard gain > 0, let offset else { return inverse(x) }
        let r = (1.5).squareRoot()
        return map(x) { d in
            // Below D ≈ 1.2 the closed form leaves its range; E[z] is the offset there.
            guard d > 1.2 else { return offset }
            let photons = 0.25 * d * d + 0.25 * r / d - 1.375 / (d * d) + 0.625 * r / (d * d * d) - 0.125
            return gain * max(0, photons) + offset
        }
    }

    private func map(_ x: Tensor, _ f: @escaping @Sendable (Double) -> Double) -> Tensor {
        let out = Tensor(uninitialized: x.shape)
        let src = x.storage.base, dst = out.storage.base
        Threads.parallelChunks(x.count, minChunk: 1 << 14) { range in
            for i in range { dst[i] = Float(f(Double(src[i]))) }
        }
        return out
    }
}
