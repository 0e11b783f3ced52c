import Foundation
import LucidAutograd
import LucidCore
import LucidImaging
import LucidNN

/// The calls a tile model has received, so each batch of tiles draws from its own seeded stream.
private final class CallCount: @unchecked Sendable {
    private var calls = 0
    func next() -> Int { defer { calls += 1 }; return calls }
}

/// The generator of the `call`-th batch of tiles of a prediction seeded with `seed`.
private func tileGenerator(seed: UInt64, call: Int) -> RandomGenerator {
    RandomGenerator(seed: seed ^ (UInt64(call + 1) &* 0x9E37_79B9_7F4A_7C15))
}

/// Per-pixel mean and standard deviation of samples added one at a time (Welford's update).
struct RunningMoments {
    private(set) var count = 0
    private(set) var mean: Tensor
    private var squares: Tensor

    init(shape: [Int]) {
        mean = Tensor(zeros: shape)
        squares = Tensor(zeros: shape)
    }

    mutating func add(_ x: Tensor) {
        count += 1
        let k = Float(count)
        mean.makeUnique()
        squares.makeUnique()
        let m = mean.storage.base, q = squares.storage.base, v = x.storage.base
        Threads.parallelChunks(x.count, minChunk: 1 << 15) { r in
            for i in r {
                let d = v[i] - m[i]
                m[i] += d / k
                q[i] += d * (v[i] - m[i])
            }
        }
    }

    /// The sample standard deviation (zero for one sample).
    var standardDeviation: Tensor {
        let n = Float(max(1, count - 1))
        return squares.map { ($0 / n).squareRoot() }
    }
}

/// Prediction of a diffusion model by sampling: `samples` draws per tile, from pure noise in
/// antithetic pairs given the tile as the condition (conditional), or from the tile itself placed
/// at the noise level its estimated Poisson–Gaussian noise matches (unconditional: posterior
/// samples of a prior under a Gaussian approximation of the noise). Output channels: the mean,
/// the samples (with `keepSamples`), the standard deviation.
struct PosteriorSampling {
    let net: DiffusionUNet
    let process: DiffusionProcess
    let sampler: DiffusionSampler
    let samples: Int
    let seed: UInt64
    let conditional: Bool
    let keepSamples: Bool

    func tiles() -> TilePrediction {
        let c = net.config.channels
        let counter = EvaluationCounter(), calls = CallCount()
        let kept = keepSamples ? samples : 0
        let parts = [TilePrediction.Part("mean", channels: c)] + (keepSamples ? [TilePrediction.Part("samples", channels: c * samples)] : [])
            + [TilePrediction.Part("std", channels: c)]
        return TilePrediction(run: { x in try self.predict(x, call: calls.next(), counter: counter) },
                              inputChannels: conditional ? net.config.conditionChannels : c,
                              intensityChannels: c * (1 + kept), parts: parts,
                              evaluationsPerTile: samples * sampler.evaluations(), counter: counter)
    }

    /// The output of one batch of tiles `[B, C, tile…]`.
    func predict(_ x: Tensor, call: Int, counter: EvaluationCounter) throws -> Tensor {
        var rng = tileGenerator(seed: seed, call: call)
        let b = x.shape[0]
        let shape = [b, net.config.channels] + x.shape.dropFirst(2)
        if conditional {
            return try summarize(shape: shape) { add in
                try sampler.antitheticSamples(samples, shape: shape, rng: &rng, evaluated: { counter.evaluated(tiles: b) },
                                              denoise: { xt, t in try process.denoise(net, xt, step: t, condition: x) }, each: add)
            }
        }
        // Each tile starts at the level of its own noise.
        var outputs: [Tensor] = []
        for k in 0..<b {
            let tile = try x.slice(axis: 0, range: k..<(k + 1))
            let noise = try PoissonGaussianNoise.estimate(tile)
            let start = process.schedule.step(noiseToSignal: noise.meanVariance(tile).squareRoot())
            let scaled = tile * Float(process.schedule.alpha[start])
            let skipped = sampler.evaluations() - sampler.evaluations(from: start)
            outputs.append(try summarize(shape: tile.shape) { add in
                for _ in 0..<samples {
                    add(try sampler.sample(shape: tile.shape, start: (start, scaled), rng: &rng,
                                           evaluated: { counter.evaluated(tiles: 1) }) { xt, t in
                        try process.denoise(net, xt, step: t, condition: nil)
                    })
                    counter.evaluated(tiles: skipped)
                }
            })
        }
        return try Tensor.concat(outputs, axis: 0)
    }

    /// The samples `draw` hands to its argument, as channels: their mean, the samples (kept), their
    /// standard deviation.
    private func summarize(shape: [Int], _ draw: (_ add: (Tensor) -> Void) throws -> Void) throws -> Tensor {
        var moments = RunningMoments(shape: shape)
        var kept: [Tensor] = []
        try draw { y in
            moments.add(y)
            if keepSamples { kept.append(y) }
        }
        return try Tensor.concat([moments.mean] + kept + [moments.standardDeviation], axis: 1)
    }
}

/// Prediction of a self-supervised model trained on recorrupted pairs (`Recorruption`): the
/// mean of `f(ŷ)` over `draws` recorruptions `ŷ` of each tile (antithetic pairs `±z`), and the
/// second-order Tweedie spread `√((1 + α²)·v(y)·∂f/∂ŷ)`, the Jacobian's diagonal estimated at
/// every draw with a Rademacher probe `r` and central differences `f(ŷ ± h·r)` (Hutchinson).
/// The noise `v` is measured on each tile unless given. Output channels: mean, std.
struct RecorruptedDenoising {
    /// The network that maps recorrupted images to their posterior mean.
    let network: TiledPredictor.Model
    /// Channels of an image.
    let channels: Int
    /// α of the training pairs.
    let strength: Double
    let draws: Int
    let seed: UInt64
    /// The noise of the inputs, in normalized units; nil measures it on each tile.
    let noise: PoissonGaussianNoise?

    func tiles() -> TilePrediction {
        let c = channels
        let counter = EvaluationCounter(), calls = CallCount()
        return TilePrediction(run: { x in try self.predict(x, call: calls.next(), counter: counter) },
                              inputChannels: c, intensityChannels: c,
                              parts: [TilePrediction.Part("mean", channels: c), TilePrediction.Part("std", channels: c)],
                              evaluationsPerTile: 2 * draws, counter: counter)
    }

    func predict(_ x: Tensor, call: Int, counter: EvaluationCounter) throws -> Tensor {
        var rng = tileGenerator(seed: seed, call: call)
        var outputs: [Tensor] = []
        for b in 0..<x.shape[0] {
            let y = try x.slice(axis: 0, range: b..<(b + 1))
            let noise = try self.noise ?? PoissonGaussianNoise.estimate(y)
            let recorruption = Recorruption(noise: noise, strength: strength)
            let h = Float(0.1 * noise.meanVariance(y).squareRoot())
            func f(_ input: Tensor) throws -> Tensor {
                let out = try network(input)
                counter.evaluated(tiles: 1)
                return out
            }
            var mean = Tensor(zeros: y.shape), diagonal = Tensor(zeros: y.shape)
            var z = Tensor(zeros: y.shape)
            for k in 0..<draws {
                z = k % 2 == 0 ? Tensor.randomNormal(y.shape, rng: &rng) : -z
                let r = Tensor.randomUniform(y.shape, rng: &rng).map { $0 < 0.5 ? -1 : 1 }
                let hat = try recorruption.recorrupted(y, z)
                let plus = try f(hat + r * h), minus = try f(hat - r * h)
                mean = try mean + (plus + minus) * (0.5 / Float(draws))
                diagonal = try diagonal + (plus - minus) * r * (1 / (2 * h * Float(draws)))
            }
            let scale = Float(1 + strength * strength)
            let std = try y.zipMap(diagonal, op: "Tweedie variance") { y, d in (scale * noise.variance(y) * max(0, d)).squareRoot() }
            outputs.append(try Tensor.concat([mean, std], axis: 1))
        }
        return try Tensor.concat(outputs, axis: 0)
    }
}
