import Foundation
import LucidCore

/// The noise levels of a diffusion model: for steps `t = 1 … T`, the forward process
/// `q(x_t | x₀) = N(α_t·x₀, σ_t²·I)`; step 0 is the data itself (`α₀ = 1`, `σ₀ = 0`).
///
/// - `linear`, `cosine`: DDPM's discrete β schedules (Ho et al. 2020; Nichol & Dhariwal 2021),
///   `α_t = √ᾱ_t`, `σ_t = √(1 − ᾱ_t)`.
/// - `vp`: the variance-preserving SDE of Song et al. 2021 (β(u) linear from 0.1 to 20 over
///   u ∈ [0, 1]) at `u = t/T`.
/// - `ve`: the variance-exploding SDE: `α_t = 1`, `σ_t` geometric from `sigmaMin` to `sigmaMax`.
///
/// Every sampler works from `alpha` and `sigma` alone, so all four share them.
public struct NoiseSchedule: Equatable, Sendable {
    public enum Kind: String, CaseIterable, Codable, Sendable { case linear, cosine, vp, ve }

    public let kind: Kind
    /// Number of noisy steps `T`.
    public let timesteps: Int
    /// `α_t` for `t = 0 … T`.
    public let alpha: [Double]
    /// `σ_t` for `t = 0 … T`.
    public let sigma: [Double]

    /// - Parameters: `sigmaMin`/`sigmaMax` are the VE noise levels (other kinds ignore them).
    public init(kind: Kind, timesteps: Int, sigmaMin: Double = 0.01, sigmaMax: Double = 50) throws {
        guard timesteps >= 1 else {
            throw TensorError.invalidArgument(op: "NoiseSchedule", detail: "timesteps \(timesteps) must be at least 1")
        }
        guard kind != .ve || (sigmaMin > 0 && sigmaMax > sigmaMin) else {
            throw TensorError.invalidArgument(op: "NoiseSchedule", detail: "VE levels need 0 < sigmaMin (\(sigmaMin)) < sigmaMax (\(sigmaMax))")
        }
        self.kind = kind
        self.timesteps = timesteps
        let T = Double(timesteps)
        var a = [1.0], s = [0.0]
        switch kind {
        case .linear, .cosine:
            var abar = 1.0
            for t in 1...timesteps {
                let beta: Double
                if kind == .linear {
                    // DDPM's 1e-4 … 0.02 over 1000 steps, rescaled so other T keep the same end points of ᾱ.
                    let scale = 1000 / T
                    let (b0, b1) = (1e-4 * scale, 0.02 * scale)
                    beta = timesteps == 1 ? b1 : b0 + (b1 - b0) * Double(t - 1) / (T - 1)
                } else {
                    func f(_ u: Double) -> Double { pow(cos((u + 0.008) / 1.008 * Double.pi / 2), 2) }
                    beta = min(0.999, 1 - f(Double(t) / T) / f(Double(t - 1) / T))
                }
                abar *= 1 - min(beta, 0.999)
                a.append(abar.squareRoot())
                s.append((1 - abar).squareRoot())
            }
        case .vp:
            let (b0, b1) = (0.1, 20.0)
            for t in 1...timesteps {
                let u = Double(t) / T
                let logAlpha = -0.25 * u * u * (b1 - b0) - 0.5 * u * b0
                a.append(Foundation.exp(logAlpha))
                s.append((1 - Foundation.exp(2 * logAlpha)).squareRoot())
            }
        case .ve:
            for t in 1...timesteps {
                let u = timesteps == 1 ? 1 : Double(t - 1) / (T - 1)
                a.append(1)
                s.append(sigmaMin * pow(sigmaMax / sigmaMin, u))
            }
        }
        alpha = a
        sigma = s
    }

    /// `x_t = α_t·x₀ + σ_t·ε`, every sample of the batch at its own step `steps[b]`.
    public func noised(_ x0: Tensor, noise: Tensor, steps: [Int]) throws -> Tensor {
        try Self.combine(x0, noise, a: steps.map { alpha[$0] }, b: steps.map { sigma[$0] }, op: "NoiseSchedule.noised")
    }

    /// `a[n]·x[n] + b[n]·y[n]` for every sample `n` of two batches of the same shape.
    public static func combine(_ x: Tensor, _ y: Tensor, a: [Double], b: [Double], op: String) throws -> Tensor {
        guard x.shape == y.shape, x.rank >= 1, a.count == x.shape[0], b.count == x.shape[0] else {
            throw TensorError.shapeMismatch(op: op, detail: "\(x.shape) and \(y.shape) with \(a.count) and \(b.count) coefficients")
        }
        let n = x.shape[0], m = x.count / max(1, n)
        let out = Tensor(uninitialized: x.shape)
        let px = x.storage.base, py = y.storage.base, po = out.storage.base
        Threads.parallelFor(n) { k in
            let ak = Float(a[k]), bk = Float(b[k])
            for i in (k * m)..<((k + 1) * m) { po[i] = ak * px[i] + bk * py[i] }
        }
        return out
    }

    /// The largest step whose `σ_t/α_t` does not exceed `ratio` (at least 1): data with Gaussian
    /// noise of standard deviation `ratio`, scaled by `α_t`, is distributed as `x_t` there.
    public func step(noiseToSignal ratio: Double) -> Int {
        var best = 1
        for t in 1...timesteps where sigma[t] / alpha[t] <= ratio { best = t }
        return best
    }

    /// Samplers starting from pure noise start at the last step where `σ_t/α_t` is at most this:
    /// beyond it the signal left in `x_t` is under 1 % of the noise, and converting a noise
    /// prediction to `x₀` would divide by a vanishing `α_t` (cosine's last steps have `α_T ≈ 5·10⁻⁵`).
    public static let maximumNoiseToSignal = 100.0

    /// Where sampling from pure noise starts (see `maximumNoiseToSignal`).
    public var samplingStart: Int { step(noiseToSignal: Self.maximumNoiseToSignal) }

    /// At most `count` distinct steps from `start` (`samplingStart` when nil) down to 1, spaced
    /// evenly in `log(σ_t/α_t)` (the log signal-to-noise ratio), so few-step samplers spend
    /// their steps where the image changes rather than in the noise; `count` at least the
    /// steps there gives every step.
    public func samplingSteps(_ count: Int, from start: Int? = nil) -> [Int] {
        let top = min(timesteps, max(1, start ?? samplingStart))
        if count >= top { return Array((1...top).reversed()) }
        let k = max(1, count)
        if k == 1 { return [top] }
        func level(_ t: Int) -> Double { Foundation.log(sigma[t] / alpha[t]) }
        let (high, low) = (level(top), level(1))
        var out: [Int] = []
        var t = top
        for i in 0..<k {
            let target = high - Double(i) * (high - low) / Double(k - 1)
            // The first step at or below the target level (levels grow with t).
            while t > 1 && level(t - 1) >= target - 1e-9 * (1 + Swift.abs(target)) { t -= 1 }
            if out.last != t { out.append(t) }
        }
        if out.last != 1 { out.append(1) }
        return out
    }
}

/// What a diffusion network predicts from `x_t = α·x₀ + σ·ε`: the noise `ε`, the data `x₀`,
/// or the velocity `v = α·ε − σ·x₀` (Salimans & Ho 2022). Each converts to the others given
/// `x_t`, α and σ (for any α, σ: `x₀ = (α·x_t − σ·v)/(α² + σ²)`).
public enum DiffusionPrediction: String, CaseIterable, Codable, Sendable {
    case eps, x0, v

    /// The training target of a batch: sample `n` noised with `alpha[n]`, `sigma[n]`.
    public func target(x0: Tensor, noise: Tensor, alpha: [Double], sigma: [Double]) throws -> Tensor {
        switch self {
        case .eps: return noise
        case .x0: return x0
        case .v: return try NoiseSchedule.combine(noise, x0, a: alpha, b: sigma.map { -$0 }, op: "DiffusionPrediction.target")
        }
    }

    /// The network's estimate of `x₀` from its `output` at `x_t`.
    public func denoised(_ output: Tensor, xt: Tensor, alpha: [Double], sigma: [Double]) throws -> Tensor {
        switch self {
        case .x0: return output
        case .eps:
            return try NoiseSchedule.combine(xt, output, a: alpha.map { 1 / $0 }, b: zip(alpha, sigma).map { -$1 / $0 },
                                             op: "DiffusionPrediction.denoised")
        case .v:
            let norm = zip(alpha, sigma).map { $0 * $0 + $1 * $1 }
            return try NoiseSchedule.combine(xt, output, a: zip(alpha, norm).map { $0 / $1 },
                                             b: zip(sigma, norm).map { -$0 / $1 }, op: "DiffusionPrediction.denoised")
        }
    }
}
