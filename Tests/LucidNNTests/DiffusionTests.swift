import Foundation
import XCTest
import LucidAutograd
import LucidCore
import LucidTestSupport
@testable import LucidNN

/// Noise schedules, prediction targets, samplers and the diffusion U-Net.
final class DiffusionTests: XCTestCase {
    static func tinyConfig(dims: Int = 2, condition: Int = 0, attention: Bool = false, ema: Bool = true) -> DiffusionUNetConfig {
        var c = DiffusionUNetConfig()
        c.dims = dims
        c.conditionChannels = condition
        c.depth = 1
        c.firstFilters = 4
        c.groups = 2
        c.attention = attention
        c.ema = ema
        return c
    }

    /// Randomizes the weights that start at zero (`conv2`, `proj`, `conv_out`) so every path carries signal.
    static func randomizeZeroWeights(_ net: any Module, seed: UInt64) {
        var rng = RandomGenerator(seed: seed)
        for (name, p) in net.namedParameters where name.hasSuffix("conv2.weight") || name.hasSuffix("proj.weight") || name == "conv_out.weight" {
            p.value = Tensor.randomNormal(p.shape, std: 0.3, rng: &rng)
        }
    }

    // MARK: schedules

    func testForwardProcessHasTheScheduleMeanAndVariance() throws {
        let x0 = try Tensor(shape: [1, 1, 2, 2], scalars: [-1, 0, 0.5, 2])
        for kind in NoiseSchedule.Kind.allCases {
            let schedule = try NoiseSchedule(kind: kind, timesteps: 100, sigmaMin: 0.02, sigmaMax: 20)
            XCTAssertEqual(schedule.alpha.count, 101)
            XCTAssertEqual(schedule.alpha[0], 1)
            XCTAssertEqual(schedule.sigma[0], 0)
            // σ/α grows strictly with t: every step is noisier.
            for t in 1...100 { XCTAssertGreaterThan(schedule.sigma[t] / schedule.alpha[t], schedule.sigma[t - 1] / schedule.alpha[t - 1], "\(kind) \(t)") }
            if kind != .ve {
                for t in 0...100 { XCTAssertEqual(schedule.alpha[t] * schedule.alpha[t] + schedule.sigma[t] * schedule.sigma[t], 1, accuracy: 1e-12) }
            }
            // Empirical moments of x_t over 20000 draws per pixel.
            var rng = RandomGenerator(seed: 11)
            let n = 20_000
            let batch = try Tensor.concat(Array(repeating: x0, count: n), axis: 0)
            for t in [1, 37, 100] {
                let xt = try schedule.noised(batch, noise: Tensor.randomNormal(batch.shape, rng: &rng), steps: Array(repeating: t, count: n))
                let v = xt.scalars
                for p in 0..<4 {
                    let values = stride(from: p, to: v.count, by: 4).map { Double(v[$0]) }
                    let mean = values.reduce(0, +) / Double(n)
                    let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n - 1)
                    let (a, s) = (schedule.alpha[t], schedule.sigma[t])
                    XCTAssertEqual(mean, a * Double(x0.scalars[p]), accuracy: 4 * s / Double(n).squareRoot() + 1e-6, "\(kind) t \(t) mean")
                    XCTAssertEqual(variance, s * s, accuracy: 0.05 * s * s + 1e-9, "\(kind) t \(t) variance")
                }
            }
        }
        // DDPM's linear schedule over 1000 steps ends at ᾱ_T ≈ 4.04e-5 (Ho et al.); the cosine one near 0.
        let linear = try NoiseSchedule(kind: .linear, timesteps: 1000)
        XCTAssertEqual(linear.alpha[1000] * linear.alpha[1000], 4.036e-5, accuracy: 0.01e-5)
        XCTAssertEqual(linear.sigma[1] * linear.sigma[1], 1e-4, accuracy: 1e-9)
        let cosine = try NoiseSchedule(kind: .cosine, timesteps: 1000)
        XCTAssertLessThan(cosine.alpha[1000], 1e-3)
        let ve = try NoiseSchedule(kind: .ve, timesteps: 10, sigmaMin: 0.01, sigmaMax: 50)
        XCTAssertEqual(ve.sigma[1], 0.01, accuracy: 1e-12)
        XCTAssertEqual(ve.sigma[10], 50, accuracy: 1e-9)
        XCTAssertEqual(ve.sigma[2] / ve.sigma[1], ve.sigma[10] / ve.sigma[9], accuracy: 1e-9)
        XCTAssertThrowsError(try NoiseSchedule(kind: .ve, timesteps: 10, sigmaMin: 1, sigmaMax: 1))
        XCTAssertThrowsError(try NoiseSchedule(kind: .linear, timesteps: 0))
        // Sampling steps: distinct, from the start down to 1, evenly spaced in log(σ/α).
        XCTAssertLessThan(linear.sigma[linear.samplingStart] / linear.alpha[linear.samplingStart], 100)
        XCTAssertGreaterThan(linear.sigma[linear.samplingStart + 1] / linear.alpha[linear.samplingStart + 1], 100)
        XCTAssertEqual(ve.samplingStart, 10)
        for (schedule, start) in [(linear, nil), (cosine, 400), (linear, 3)] as [(NoiseSchedule, Int?)] {
            let steps = schedule.samplingSteps(20, from: start)
            XCTAssertEqual(steps.first, start ?? schedule.samplingStart)
            XCTAssertEqual(steps.last, 1)
            XCTAssertTrue(zip(steps, steps.dropFirst()).allSatisfy { $0 > $1 })
            XCTAssertLessThanOrEqual(steps.count, 20)
            if start == nil {
                XCTAssertGreaterThanOrEqual(steps.count, 18)
                let levels = steps.map { log(schedule.sigma[$0] / schedule.alpha[$0]) }
                let gaps = zip(levels, levels.dropFirst()).map { $0 - $1 }
                XCTAssertLessThan(gaps.max()!, 2 * gaps.reduce(0, +) / Double(gaps.count), "\(steps)")
            }
        }
        XCTAssertEqual(linear.samplingSteps(3, from: 3), [3, 2, 1])
        XCTAssertEqual(ve.samplingSteps(50), Array((1...10).reversed()))
        XCTAssertEqual(ve.samplingSteps(4), [10, 7, 4, 1])
        XCTAssertEqual(ve.step(noiseToSignal: ve.sigma[4] * 1.01), 4)
    }

    func testPredictionTargetsConvertBackToTheData() throws {
        var rng = RandomGenerator(seed: 3)
        let x0 = Tensor.randomNormal([3, 1, 4, 4], rng: &rng), eps = Tensor.randomNormal([3, 1, 4, 4], rng: &rng)
        for kind in [NoiseSchedule.Kind.cosine, .ve] {
            let schedule = try NoiseSchedule(kind: kind, timesteps: 50, sigmaMin: 0.05, sigmaMax: 30)
            let steps = [1, 25, 50]
            let a = steps.map { schedule.alpha[$0] }, s = steps.map { schedule.sigma[$0] }
            let xt = try schedule.noised(x0, noise: eps, steps: steps)
            for prediction in DiffusionPrediction.allCases {
                let target = try prediction.target(x0: x0, noise: eps, alpha: a, sigma: s)
                let back = try prediction.denoised(target, xt: xt, alpha: a, sigma: s)
                let err = zip(back.scalars, x0.scalars).map { abs($0 - $1) }.max()!
                XCTAssertLessThan(err, 2e-3, "\(kind) \(prediction)")
            }
            // v = α ε − σ x₀ by definition.
            let v = try DiffusionPrediction.v.target(x0: x0, noise: eps, alpha: a, sigma: s)
            XCTAssertEqual(v[2, 0, 1, 3], Float(a[2]) * eps[2, 0, 1, 3] - Float(s[2]) * x0[2, 0, 1, 3], accuracy: 1e-4)
        }
    }

    // MARK: samplers

    /// For x₀ ~ N(μ, τ²) per pixel the exact denoiser is known; every sampler must then draw
    /// from N(μ, τ²), and from the posterior when started at data noised to a level.
    func testSamplersDrawTheDistributionOfAnExactGaussianDenoiser() throws {
        let (mu, tau) = (0.7, 0.4)
        for kind in NoiseSchedule.Kind.allCases {
            let schedule = try NoiseSchedule(kind: kind, timesteps: 200, sigmaMin: 0.01, sigmaMax: 10)
            let denoise = Self.gaussianDenoiser(schedule, mu: mu, tau: tau)
            for sampler in DiffusionSampler.Kind.allCases {
                let steps = sampler == .ddpm ? 200 : (sampler == .langevin ? 40 : (sampler == .ddim ? 100 : 20))
                let correctors = sampler == .langevin ? 5 : 1
                let s = DiffusionSampler(kind: sampler, schedule: schedule, steps: steps, correctorSteps: correctors)
                var rng = RandomGenerator(seed: 5)
                var calls = 0
                let x = try s.sample(shape: [4000, 1, 1, 1], rng: &rng, evaluated: { calls += 1 }, denoise: denoise).scalars.map(Double.init)
                XCTAssertEqual(calls, s.evaluations(), "\(kind) \(sampler)")
                let (mean, sd) = Self.meanAndSD(x)
                // Langevin with a finite step count is an approximation: looser bounds.
                let tol = sampler == .langevin || sampler == .pc ? 0.12 : 0.05
                XCTAssertEqual(mean, mu, accuracy: 0.03, "\(kind) \(sampler) mean")
                XCTAssertEqual(sd, tau, accuracy: tol * tau, "\(kind) \(sampler) std")
            }
            // DDIM is first order: its spread comes closer to τ with more steps.
            let spreads = try [10, 20, 50].map { k -> Double in
                var rng = RandomGenerator(seed: 5)
                let x = try DiffusionSampler(kind: .ddim, schedule: schedule, steps: k)
                    .sample(shape: [4000, 1, 1, 1], rng: &rng, denoise: denoise).scalars.map(Double.init)
                return Self.meanAndSD(x).sd
            }
            XCTAssertTrue(spreads[0] < spreads[1] && spreads[1] < spreads[2] && spreads[2] < tau, "\(kind) DDIM spreads \(spreads)")
        }
        // Posterior sampling from y = x₀ + noise of std 0.3, scaled to the level t* with σ/α ≈ 0.3.
        for kind in NoiseSchedule.Kind.allCases {
            let schedule = try NoiseSchedule(kind: kind, timesteps: 1000, sigmaMin: 0.01, sigmaMax: 10)
            let denoise = Self.gaussianDenoiser(schedule, mu: mu, tau: tau)
            let t0 = schedule.step(noiseToSignal: 0.3)
            let ratio = schedule.sigma[t0] / schedule.alpha[t0]
            let y = 1.5
            let posteriorVar = 1 / (1 / (tau * tau) + 1 / (ratio * ratio))
            let posteriorMean = posteriorVar * (mu / (tau * tau) + y / (ratio * ratio))
            let s = DiffusionSampler(kind: .ddpm, schedule: schedule, steps: 1000)
            var rng = RandomGenerator(seed: 6)
            let start = Tensor(shape: [4000, 1, 1, 1], repeating: Float(schedule.alpha[t0] * y))
            let x = try s.sample(shape: start.shape, start: (t0, start), rng: &rng, denoise: denoise).scalars.map(Double.init)
            let (mean, sd) = Self.meanAndSD(x)
            XCTAssertEqual(mean, posteriorMean, accuracy: 0.02, "\(kind) posterior mean")
            XCTAssertEqual(sd, posteriorVar.squareRoot(), accuracy: 0.05 * posteriorVar.squareRoot(), "\(kind) posterior std")
        }
    }

    /// Antithetic pairs: each sample still has the prior's spread, but a DDIM pair's mean is the
    /// posterior mean (DDIM is affine in its starting noise for a Gaussian prior), where two
    /// independent samples scatter about it by τ/√2.
    func testAntitheticPairsKeepTheSpreadAndCancelInTheMean() throws {
        let (mu, tau) = (0.7, 0.4)
        for kind in NoiseSchedule.Kind.allCases {
            let schedule = try NoiseSchedule(kind: kind, timesteps: 200, sigmaMin: 0.01, sigmaMax: 10)
            let denoise = Self.gaussianDenoiser(schedule, mu: mu, tau: tau)
            let sampler = DiffusionSampler(kind: .ddim, schedule: schedule, steps: 100)
            var rng = RandomGenerator(seed: 9)
            var pair: [[Double]] = []
            var calls = 0
            try sampler.antitheticSamples(2, shape: [4000, 1, 1, 1], rng: &rng, evaluated: { calls += 1 }, denoise: denoise) {
                pair.append($0.scalars.map(Double.init))
            }
            XCTAssertEqual(calls, 2 * sampler.evaluations(), "\(kind)")
            for x in pair {
                let (mean, sd) = Self.meanAndSD(x)
                XCTAssertEqual(mean, mu, accuracy: 0.03, "\(kind) mean")
                XCTAssertEqual(sd, tau, accuracy: 0.05 * tau, "\(kind) std")
            }
            let antithetic = zip(pair[0], pair[1]).map { abs(($0 + $1) / 2 - mu) }.max()!
            XCTAssertLessThan(antithetic, 0.03, "\(kind): an antithetic pair's mean is the posterior mean")
            let independent = try (0..<2).map { _ in
                try sampler.sample(shape: [4000, 1, 1, 1], rng: &rng, denoise: denoise).scalars.map(Double.init)
            }
            let scatter = (zip(independent[0], independent[1]).map { pow(($0 + $1) / 2 - mu, 2) }.reduce(0, +) / 4000).squareRoot()
            XCTAssertEqual(scatter, tau / 2.0.squareRoot(), accuracy: 0.1 * tau, "\(kind): independent pairs scatter")
        }
    }

    /// Mean and sample standard deviation of draws.
    static func meanAndSD(_ x: [Double]) -> (mean: Double, sd: Double) {
        let mean = x.reduce(0, +) / Double(x.count)
        return (mean, (x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(x.count - 1)).squareRoot())
    }

    /// The exact `E[x₀ | x_t]` of x₀ ~ N(μ, τ²).
    static func gaussianDenoiser(_ schedule: NoiseSchedule, mu: Double, tau: Double) -> DiffusionSampler.Denoiser {
        { xt, t in
            let (a, s) = (schedule.alpha[t], schedule.sigma[t])
            let gain = a * tau * tau / (a * a * tau * tau + s * s)
            return xt.map { Float(mu + gain * (Double($0) - a * mu)) }
        }
    }

    func testDDIMIsDeterministicForASeed() throws {
        var rng = RandomGenerator(seed: 1)
        let net = try DiffusionUNet(Self.tinyConfig(condition: 1), rng: &rng)
        Self.randomizeZeroWeights(net, seed: 2)
        let process = DiffusionProcess(schedule: try NoiseSchedule(kind: .cosine, timesteps: 100), prediction: .eps)
        let condition = Tensor.randomNormal([2, 1, 8, 8], rng: &rng)
        func draw(_ kind: DiffusionSampler.Kind, seed: UInt64) throws -> [Float] {
            var r = RandomGenerator(seed: seed)
            return try DiffusionSampler(kind: kind, schedule: process.schedule, steps: 10)
                .sample(shape: [2, 1, 8, 8], rng: &r) { xt, t in try process.denoise(net, xt, step: t, condition: condition) }.scalars
        }
        let a = try draw(.ddim, seed: 7), b = try draw(.ddim, seed: 7), c = try draw(.ddim, seed: 8)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
        XCTAssertTrue(a.allSatisfy(\.isFinite))
        XCTAssertEqual(try draw(.ddpm, seed: 3), try draw(.ddpm, seed: 3))
        XCTAssertNotEqual(try draw(.ddpm, seed: 3), try draw(.ddpm, seed: 4))
    }

    // MARK: the network

    func testDiffusionUNetShapesNamesAndCheckpointState() throws {
        for dims in [2, 3] {
            var rng = RandomGenerator(seed: 4)
            var c = Self.tinyConfig(dims: dims, condition: 1, attention: true)
            c.blocksPerLevel = 2
            let net = try DiffusionUNet(c, rng: &rng)
            let spatial = dims == 2 ? [8, 6] : [4, 6, 8]
            let x = Tensor.randomNormal([3, 2] + spatial, rng: &rng)
            let t = try Tensor(shape: [3], scalars: [0, 500, 999])
            let y = try net(Variable(x), condition: Variable(t))
            XCTAssertEqual(y.shape, [3, 1] + spatial)
            // The zero-initialized output convolution: a fresh net predicts 0.
            XCTAssertTrue(y.value.scalars.allSatisfy { $0 == 0 })
            let names = net.namedParameters.map(\.name)
            XCTAssertEqual(Array(names.prefix(4)), ["embed.0.weight", "embed.0.bias", "embed.2.weight", "embed.2.bias"])
            for name in ["conv_in.weight", "down.0.0.norm1.weight", "down.0.0.conv1.weight", "down.0.0.emb.weight", "down.0.1.conv2.bias",
                         "mid.0.skip.weight", "mid.1.conv1.weight", "mid_attn.qkv.weight", "mid_attn.proj.bias",
                         "up.0.0.skip.weight", "up.0.1.norm2.bias", "norm_out.weight", "conv_out.bias"] {
                XCTAssertTrue(names.contains(name), "\(dims)D: no \(name)")
            }
            let shapes = Dictionary(uniqueKeysWithValues: net.namedParameters.map { ($0.name, $0.parameter.shape) })
            XCTAssertEqual(shapes["conv_in.weight"], [4, 2] + Array(repeating: 3, count: dims))
            XCTAssertEqual(shapes["mid_attn.qkv.weight"], [24, 8] + Array(repeating: 1, count: dims))
            XCTAssertEqual(shapes["up.0.0.conv1.weight"], [4, 12] + Array(repeating: 3, count: dims))
            XCTAssertEqual(shapes["down.0.0.emb.weight"], [4, 16])
            // The state dict holds the moving average of every parameter, which loads back.
            let state = net.stateDict()
            XCTAssertEqual(Set(state.keys), Set(names + names.map { "ema." + $0 } + ["ema.num_updates"]))
            var other = RandomGenerator(seed: 99)
            let copy = try DiffusionUNet(c, rng: &other)
            try copy.loadStateDict(state)
            XCTAssertEqual(copy.namedParameters.map(\.parameter.value.scalars), net.namedParameters.map(\.parameter.value.scalars))
            XCTAssertThrowsError(try net(Variable(x))) { e in XCTAssertTrue("\(e)".contains("needs the noise level"), "\(e)") }
            XCTAssertThrowsError(try net(Variable(x), condition: Variable(Tensor(zeros: [2])))) { e in
                XCTAssertTrue("\(e)".contains("2 noise levels"), "\(e)")
            }
        }
        // The registry rebuilds the config from its kind, as checkpoints do.
        var c = Self.tinyConfig(condition: 2, attention: true)
        c.heads = 2
        let data = try JSONEncoder().encode(c)
        let type = try XCTUnwrap(ModelRegistry.type(named: "diffusion_unet"))
        func decode<T: ModelConfig>(_ t: T.Type) throws -> any ModelConfig { try JSONDecoder().decode(T.self, from: data) }
        let back = try decode(type)
        XCTAssertTrue(back.isSame(as: c))
        XCTAssertEqual(back.inChannels, 3)
        XCTAssertEqual(back.outputChannels, 1)
        XCTAssertEqual(try JSONDecoder().decode(DiffusionUNetConfig.self, from: Data("{}".utf8)), DiffusionUNetConfig())
        var bad = c
        bad.heads = 3
        XCTAssertThrowsError(try bad.validate()) { e in XCTAssertTrue("\(e)".contains("heads 3 must divide the 8 channels"), "\(e)") }
    }

    /// scripts/torch_diffusion.py (the PyTorch reference of the bench) builds the same net: the
    /// same parameter names and shapes, in the same order.
    func testBenchNetMatchesThePyTorchReference() throws {
        try requirePython("torch")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/torch_diffusion.py").path
        let r = try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["python3", script, "--names"])
        XCTAssertEqual(r.status, 0, r.err)
        let torch = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[Any]])
        var c = DiffusionUNetConfig()
        c.conditionChannels = 1
        c.attention = true
        c.ema = false
        var rng = RandomGenerator(seed: 0)
        let net = try DiffusionUNet(c, rng: &rng)
        XCTAssertEqual(net.namedParameters.map(\.name), torch.map { $0[0] as! String })
        XCTAssertEqual(net.namedParameters.map(\.parameter.shape), torch.map { $0[1] as! [Int] })
    }

    func testExponentialMovingAverageFollowsTheWeights() throws {
        let p = Variable(try Tensor(shape: [2], scalars: [1, 2]), requiresGrad: true)
        let ema = ExponentialMovingAverage(of: [("w", p)])
        var expected: [Double] = [1, 2]
        for step in 0..<30 {
            p.value = try Tensor(shape: [2], scalars: [Float(step), -Float(step)])
            let d = min(0.9, Double(1 + step) / Double(10 + step))
            XCTAssertEqual(Double(ema.effectiveDecay(0.9)), d, accuracy: 1e-7)
            try ema.update(from: [("w", p)], decay: 0.9)
            expected = [d * expected[0] + (1 - d) * Double(step), d * expected[1] - (1 - d) * Double(step)]
        }
        XCTAssertEqual(Double(ema.shadows[0].scalars[0]), expected[0], accuracy: 1e-4)
        XCTAssertEqual(Double(ema.shadows[0].scalars[1]), expected[1], accuracy: 1e-4)
        XCTAssertEqual(ema.updates, 30)
        try ema.copy(into: [("w", p)])
        XCTAssertEqual(p.value.scalars, ema.shadows[0].scalars)
        XCTAssertThrowsError(try ema.update(from: [("v", p)], decay: 0.9))
        let restored = ExponentialMovingAverage(of: [("w", Variable(Tensor(zeros: [2])))])
        for (name, b) in ema.ownBuffers { try restored.setOwnBuffer(name, to: b) }
        XCTAssertEqual(restored.updates, 30)
        XCTAssertEqual(restored.shadows[0].scalars, ema.shadows[0].scalars)
    }

    /// Finite-difference checks of the new blocks with all their paths active: the residual
    /// block (GroupNorm, SiLU, the embedding shift, the 1×1 skip), self-attention, and the whole
    /// network (time embedding MLP, pooling, upsampling, concatenation) in 2-D and 3-D.
    func testBlocksAndNetworkGradientsMatchFiniteDifferences() throws {
        var rng = RandomGenerator(seed: 12)
        let block = try ResidualBlock(dims: 2, inChannels: 2, outChannels: 4, embeddingWidth: 3, kernel: 3, groups: { min(2, $0) }, rng: &rng)
        Self.randomizeZeroWeights(block, seed: 1)
        let x = Tensor.randomNormal([2, 2, 4, 5], rng: &rng), e = Tensor.randomNormal([2, 3], rng: &rng)
        let r1 = try GradientCheck.run([x, e]) { v in try block(v[0], embedding: v[1]) }
        XCTAssertLessThan(r1.maxError, 2e-3, "residual block: \(r1)")

        let attention = try SelfAttention(dims: 2, channels: 4, heads: 2, groups: 2, rng: &rng)
        Self.randomizeZeroWeights(attention, seed: 2)
        let r2 = try GradientCheck.run([Tensor.randomNormal([2, 4, 3, 2], rng: &rng)]) { v in try attention(v[0]) }
        XCTAssertLessThan(r2.maxError, 2e-3, "attention: \(r2)")

        for dims in [2, 3] {
            let net = try DiffusionUNet(Self.tinyConfig(dims: dims, condition: 1, attention: true, ema: false), rng: &rng)
            Self.randomizeZeroWeights(net, seed: 3)
            let spatial = dims == 2 ? [4, 6] : [2, 4, 2]
            let input = Tensor.randomNormal([2, 2] + spatial, rng: &rng)
            let t = try Tensor(shape: [2], scalars: [3, 700])
            let target = Tensor.randomNormal([2, 1] + spatial, rng: &rng)
            func loss() throws -> Variable { try mseLoss(net(Variable(input), condition: Variable(t)), Variable(target)) }
            let r3 = try GradientCheck.run([input]) { v in try mseLoss(net(v[0], condition: Variable(t)), Variable(target)) }
            XCTAssertLessThan(r3.maxError, 5e-3, "\(dims)D network input: \(r3)")
            net.zeroGrad()
            try loss().backward()
            let h: Float = 1e-2
            for (name, p) in net.namedParameters {
                let analytic = try XCTUnwrap(p.grad, name)
                for i in Set([0, p.value.count / 2, p.value.count - 1]) {
                    let original = p.value.scalars[i]
                    p.value.withUnsafeMutableBufferPointer { $0[i] = original + h }
                    let fp = try noGrad { try loss().value.scalar }
                    p.value.withUnsafeMutableBufferPointer { $0[i] = original - h }
                    let fm = try noGrad { try loss().value.scalar }
                    p.value.withUnsafeMutableBufferPointer { $0[i] = original }
                    let numeric = (fp - fm) / (2 * h)
                    XCTAssertEqual(analytic.scalars[i], numeric, accuracy: 5e-3 * max(1, abs(numeric)), "\(dims)D \(name)[\(i)]")
                }
            }
        }
    }

    /// A DDPM trained on a mixture of three fixed 8×8 patterns (weights 0.5, 0.3, 0.2) draws
    /// each pattern with its weight, within 5 %.
    func testDDPMReproducesTheModeFrequenciesOfAPatternMixture() throws {
        let patterns: [[Float]] = [
            (0..<64).map { ($0 % 8) < 4 ? 1 : -1 },                      // left | right halves
            (0..<64).map { ($0 / 8) < 4 ? 1 : -1 },                      // top / bottom halves
            (0..<64).map { ($0 % 8) + ($0 / 8) < 8 ? 1 : -1 },           // upper-left triangle
        ]
        let weights = [0.5, 0.3, 0.2]
        var c = DiffusionUNetConfig()
        c.depth = 1
        c.firstFilters = 8
        var rng = RandomGenerator(seed: 0)
        let net = try DiffusionUNet(c, rng: &rng)
        let process = DiffusionProcess(schedule: try NoiseSchedule(kind: .cosine, timesteps: 50), prediction: .v)
        let opt = try Adam(parameters: net.namedParameters, learningRate: 2e-3)
        func pick(_ u: Float) -> Int { u < 0.5 ? 0 : (u < 0.8 ? 1 : 2) }
        let batch = 32
        for _ in 0..<800 {
            var x = Tensor(uninitialized: [batch, 1, 8, 8])
            x.withUnsafeMutableBufferPointer { p in
                for b in 0..<batch { let k = pick(rng.uniform()); for i in 0..<64 { p[b * 64 + i] = patterns[k][i] } }
            }
            net.zeroGrad()
            try process.loss(net, x0: x, condition: nil, rng: &rng).backward()
            try opt.step()
            try net.updateAverage(decay: 0.995)
        }
        let trained = net.stateDict().mapValues(\.scalars)
        let averaged = try net.averaged()
        XCTAssertEqual(net.stateDict().mapValues(\.scalars), trained, "averaging leaves the trained network alone")
        XCTAssertEqual(averaged.stateDict()["conv_in.weight"]?.scalars, trained["ema.conv_in.weight"])
        XCTAssertNotEqual(trained["ema.conv_in.weight"], trained["conv_in.weight"])
        averaged.setTraining(false)
        var sampleRNG = RandomGenerator(seed: 1)
        let n = 2000
        let samples = try DiffusionSampler(kind: .ddpm, schedule: process.schedule, steps: 50)
            .sample(shape: [n, 1, 8, 8], rng: &sampleRNG) { xt, t in try process.denoise(averaged, xt, step: t, condition: nil) }
        var counts = [0, 0, 0]
        var worst = 0.0
        samples.withUnsafeBufferPointer { s in
            for b in 0..<n {
                let d = patterns.map { p in (0..<64).reduce(0.0) { $0 + Double((s[b * 64 + $1] - p[$1]) * (s[b * 64 + $1] - p[$1])) } }
                let k = d.firstIndex(of: d.min()!)!
                counts[k] += 1
                worst = max(worst, d[k] / 64)
            }
        }
        let frequencies = counts.map { Double($0) / Double(n) }
        for k in 0..<3 { XCTAssertEqual(frequencies[k], weights[k], accuracy: 0.05, "frequencies \(frequencies)") }
        // Samples are the patterns themselves, not blends (mean squared distance per pixel).
        XCTAssertLessThan(worst, 0.25, "farthest sample from its pattern: \(worst)")
    }
}
