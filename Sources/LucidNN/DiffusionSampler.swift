import Foundation
import LucidCore

/// Draws samples from a diffusion model through a denoiser `x̂₀(x_t, t)`, for any `NoiseSchedule`.
///
/// - `ddpm`: ancestral sampling (Ho et al. 2020) over `steps` levels: each step draws `x_s` from
///   the Gaussian `q(x_s | x_t, x₀ = x̂₀)`; with `steps = T` it is DDPM's chain.
/// - `ddim`: deterministic DDIM (Song et al. 2021a, η = 0): `x_s = α_s·x̂₀ + σ_s·ε̂` with any step
///   count; the only randomness is the starting noise.
/// - `pc`: predictor–corrector (Song et al. 2021b): an ancestral step, then `correctorSteps`
///   Langevin steps at the new level, step size set by the signal-to-noise ratio `snr`.
/// - `langevin`: annealed Langevin dynamics (Song & Ermon 2019): `correctorSteps` Langevin steps
///   at each of `steps` decreasing levels, then one denoising step to `x̂₀`.
///
/// The score the Langevin steps follow is `(α_t·x̂₀ − x_t)/σ_t²`. Every draw comes from the
/// caller's generator, so a seed fixes the samples.
public struct DiffusionSampler: Sendable {
    public enum Kind: String, CaseIterable, Codable, Sendable { case ddpm, ddim, pc, langevin }

    public var kind: Kind
    public var schedule: NoiseSchedule
    /// Noise levels visited (clamped to `1 … T`, or to the starting step).
    public var steps: Int
    /// Langevin steps per level (`pc`, `langevin`).
    public var correctorSteps: Int
    /// Signal-to-noise ratio that sets the Langevin step size.
    public var snr: Double

    public init(kind: Kind, schedule: NoiseSchedule, steps: Int, correctorSteps: Int = 1, snr: Double = 0.16) {
        self.kind = kind
        self.schedule = schedule
        self.steps = steps
        self.correctorSteps = correctorSteps
        self.snr = snr
    }

    /// The denoiser: `x̂₀` of a batch `x_t` at step `t`.
    public typealias Denoiser = (_ xt: Tensor, _ step: Int) throws -> Tensor

    /// Denoiser calls one sample of a batch costs, starting from step `start` (`T` when nil).
    public func evaluations(from start: Int? = nil) -> Int {
        let k = schedule.samplingSteps(steps, from: start).count
        switch kind {
        case .ddpm, .ddim: return k
        case .pc: return k + (k - 1) * correctorSteps
        case .langevin: return k * correctorSteps + 1
        }
    }

    /// A sample of `x₀` for a batch of `shape`: from pure noise at step `T`, or from `start.x`
    /// at step `start.step` (data already noised to that level). `evaluated` is called after
    /// every denoiser call.
    public func sample(shape: [Int], start: (step: Int, x: Tensor)? = nil, rng: inout RandomGenerator,
                       evaluated: (() -> Void)? = nil, denoise: Denoiser) throws -> Tensor {
        let start = start ?? startingNoise(shape: shape, rng: &rng)
        guard start.x.shape == shape else {
            throw TensorError.shapeMismatch(op: "DiffusionSampler", detail: "start \(start.x.shape) vs shape \(shape)")
        }
        let ts = schedule.samplingSteps(steps, from: start.step)
        let a = schedule.alpha, s = schedule.sigma
        var x = start.x
        func call(_ x: Tensor, _ t: Int) throws -> Tensor {
            let y = try denoise(x, t)
            evaluated?()
            return y
        }
        for (k, t) in ts.enumerated() {
            let next = k + 1 < ts.count ? ts[k + 1] : 0
            switch kind {
            case .ddim:
                let x0 = try call(x, t)
                if next == 0 { return x0 }
                // ε̂ = (x_t − α_t x̂₀)/σ_t;  x_s = α_s x̂₀ + σ_s ε̂.
                let r = s[next] / s[t]
                x = try elementwise(x0, x) { x0, xt in Float(a[next] - r * a[t]) * x0 + Float(r) * xt }
            case .ddpm, .pc:
                let x0 = try call(x, t)
                if next == 0 { return x0 }
                x = try ancestral(x, x0: x0, from: t, to: next, rng: &rng)
                if kind == .pc { x = try langevin(x, at: next, rng: &rng, call) }
            case .langevin:
                x = try langevin(x, at: t, rng: &rng, call)
                if next == 0 { return try call(x, t) }
                // To the next level's scale: √(α² + σ²) (data of unit scale), 1 for VP schedules.
                x = x * Float(((a[next] * a[next] + s[next] * s[next]) / (a[t] * a[t] + s[t] * s[t])).squareRoot())
            }
        }
        return x
    }

    /// Pure noise at the first level a sample visits, `σ_T·z`: where `sample` starts when given no start.
    public func startingNoise(shape: [Int], rng: inout RandomGenerator) -> (step: Int, x: Tensor) {
        let top = schedule.samplingStart
        return (top, Tensor.randomNormal(shape, rng: &rng) * Float(schedule.sigma[top]))
    }

    /// `count` samples of `x₀` from pure noise, in antithetic pairs: the second of each pair starts
    /// from the negated noise of the first. Every sample keeps the sampler's distribution, but the
    /// part of the output that is linear in the starting noise (most of a DDIM sample's spread)
    /// cancels in each pair's mean, so the mean of the samples estimates the posterior mean with
    /// far less variance than independent samples give. `each` receives the samples in order.
    public func antitheticSamples(_ count: Int, shape: [Int], rng: inout RandomGenerator, evaluated: (() -> Void)? = nil,
                                  denoise: Denoiser, each: (Tensor) throws -> Void) throws {
        for first in stride(from: 0, to: count, by: 2) {
            let start = startingNoise(shape: shape, rng: &rng)
            try each(try sample(shape: shape, start: start, rng: &rng, evaluated: evaluated, denoise: denoise))
            if first + 1 < count {
                try each(try sample(shape: shape, start: (start.step, -start.x), rng: &rng, evaluated: evaluated, denoise: denoise))
            }
        }
    }

    /// A draw from `q(x_s | x_t, x₀)`: mean `(α_{t|s}σ_s²/σ_t²)·x_t + (α_s σ_{t|s}²/σ_t²)·x₀`,
    /// variance `σ_{t|s}² σ_s²/σ_t²`, with `α_{t|s} = α_t/α_s`, `σ_{t|s}² = σ_t² − α_{t|s}²σ_s²`.
    func ancestral(_ xt: Tensor, x0: Tensor, from t: Int, to next: Int, rng: inout RandomGenerator) throws -> Tensor {
        let (at, st, an, sn) = (schedule.alpha[t], schedule.sigma[t], schedule.alpha[next], schedule.sigma[next])
        let ats = at / an
        let sts2 = max(0, st * st - ats * ats * sn * sn)
        let cx = Float(ats * sn * sn / (st * st)), c0 = Float(an * sts2 / (st * st))
        let sd = Float((sts2 * sn * sn / (st * st)).squareRoot())
        let z = Tensor.randomNormal(xt.shape, rng: &rng)
        let mean = try elementwise(xt, x0) { x, x0 in cx * x + c0 * x0 }
        return try elementwise(mean, z) { m, z in m + sd * z }
    }

    /// `correctorSteps` Langevin steps at step `t`: `x ← x + ε·score + √(2ε)·z`, with
    /// `ε = 2·(snr·‖z‖/‖score‖)²` over the batch (Song et al.'s corrector).
    func langevin(_ start: Tensor, at t: Int, rng: inout RandomGenerator, _ call: (Tensor, Int) throws -> Tensor) throws -> Tensor {
        var x = start
        let (at, st) = (schedule.alpha[t], schedule.sigma[t])
        for _ in 0..<correctorSteps {
            let x0 = try call(x, t)
            let score = try elementwise(x0, x) { x0, x in Float(at / (st * st)) * x0 - Float(1 / (st * st)) * x }
            let z = Tensor.randomNormal(x.shape, rng: &rng)
            let gs = score.withUnsafeBufferPointer { $0.reduce(0.0) { $0 + Double($1 * $1) } }
            let zs = z.withUnsafeBufferPointer { $0.reduce(0.0) { $0 + Double($1 * $1) } }
            let eps = gs > 0 ? 2 * snr * snr * zs / gs : 0
            let (e, w) = (Float(eps), Float((2 * eps).squareRoot()))
            let moved = try elementwise(x, score) { x, g in x + e * g }
            x = try elementwise(moved, z) { x, z in x + w * z }
        }
        return x
    }

    private func elementwise(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) throws -> Tensor {
        try a.zipMap(b, op: "DiffusionSampler", f)
    }
}
