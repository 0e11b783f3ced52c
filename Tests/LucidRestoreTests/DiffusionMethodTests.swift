import Foundation
import LucidAutograd
import LucidCore
import LucidImaging
import LucidNN
import LucidOptics
import LucidTestSupport
import XCTest
@testable import LucidRestore

/// `method: diffusion`: its recipe section, training, checkpoints and sampled prediction.
final class DiffusionMethodTests: XCTestCase {
    private func recipe(_ yaml: String) throws -> Recipe { try Recipe.parse(yaml: yaml, file: "test.yaml") }

    func testRecipeSectionDefaultsByModeAndErrors() throws {
        let conditional = try recipe("method: diffusion\ndata: {input: low/*.tif, target: high/*.tif}\n")
        let c = try XCTUnwrap(conditional.method as? Diffusion)
        XCTAssertEqual(c, Diffusion())
        XCTAssertEqual([c.schedule.rawValue, c.prediction.rawValue, c.sampler.rawValue], ["cosine", "v", "ddim"])
        XCTAssertEqual(conditional.data.source, .paired(input: "low/*.tif", target: "high/*.tif"))
        XCTAssertEqual(conditional.training.schedule.kind, .none)
        let simulated = try recipe("method: diffusion\ndata: {target: t/*.tif, simulate: {psf: p.tif}}\n")
        XCTAssertEqual(simulated.data.source, .simulated(target: "t/*.tif", simulation: Simulation(psf: .file("p.tif"))))
        let score = try recipe("method: diffusion\ndiffusion: {mode: selfsupervised}\ndata: {train: n/*.tif}\nmodel: {residual: true}\n")
        let s = try XCTUnwrap(score.method as? Diffusion)
        XCTAssertEqual(s, Diffusion(mode: .selfsupervised))
        XCTAssertEqual(s.prediction, .x0)
        XCTAssertEqual(s.recorruption, 1)
        XCTAssertEqual(score.data.source, .noisy(train: "n/*.tif"))
        // The self-supervised score network is the recipe's U-Net.
        let scoreNet = try XCTUnwrap(try score.method.modelConfig(score, spatialRank: 2, inChannels: 1, outChannels: 1) as? UNetConfig)
        XCTAssertTrue(scoreNet.residual)
        let prior = try recipe("method: diffusion\ndiffusion: {mode: unconditional, schedule: ve, sigma_max: 5, prediction: x0}\ndata: {train: c/*.tif}\n")
        XCTAssertEqual((prior.method as? Diffusion)?.sigmaMax, 5)
        // The network: a diffusion U-Net conditioned on the input's channels, with moving averages.
        let config = try XCTUnwrap(try conditional.method.modelConfig(conditional, spatialRank: 3, inChannels: 2, outChannels: 1) as? DiffusionUNetConfig)
        XCTAssertEqual([config.dims, config.channels, config.conditionChannels, config.depth, config.firstFilters], [3, 1, 2, 2, 32])
        XCTAssertTrue(config.ema)
        let priorConfig = try XCTUnwrap(try prior.method.modelConfig(prior, spatialRank: 2, inChannels: 1, outChannels: 1) as? DiffusionUNetConfig)
        XCTAssertEqual(priorConfig.conditionChannels, 0)
        // The resolved recipe reads back to the same settings.
        for r in [conditional, score, prior] { XCTAssertEqual(try Recipe.parse(yaml: r.yaml()), r) }

        func error(_ yaml: String) -> String {
            do { _ = try recipe(yaml); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(error("method: diffusion\ndiffusion: {mode: selfsupervised, prediction: eps}\ndata: {train: n.tif}\n"),
                       "test.yaml: diffusion.prediction: eps is not allowed (mode selfsupervised predicts x0, Tweedie's posterior mean) [line 2]")
        XCTAssertEqual(error("method: diffusion\ndiffusion: {mode: selfsupervised, recorruption: 0}\ndata: {train: n.tif}\n"),
                       "test.yaml: diffusion.recorruption: 0 is not allowed (a number > 0 and ≤ 4) [line 2]")
        XCTAssertEqual(error("method: diffusion\ndiffusion: {mode: unconditional, schedule: ve, sigma_min: 2, sigma_max: 1}\ndata: {train: n.tif}\n"),
                       "test.yaml: diffusion.sigma_max: 1 is not allowed (a number > sigma_min, 2) [line 2]")
        XCTAssertEqual(error("method: diffusion\ndiffusion: {prediction: noise}\ndata: {input: a, target: b}\n"),
                       "test.yaml: diffusion.prediction: noise is not allowed (one of eps, x0, v) [line 2]")
        XCTAssertEqual(error("method: diffusion\ndiffusion: {mode: selfsupervised}\ndata: {input: a}\n"),
                       "test.yaml: data.train: missing (method diffusion trains on noisy stacks: a file pattern such as stacks/*.tif) [line 3]")
        XCTAssertTrue(error("method: diffusion\ndata: {input: a, target: b}\nmodel: {norm: batch}\n")
            .hasPrefix("test.yaml: model.norm: not used by method diffusion (its network is a diffusion U-Net"), error("method: diffusion\ndata: {input: a, target: b}\nmodel: {norm: batch}\n"))
    }

    func testPoissonGaussianNoiseIsMeasuredFromTheImage() throws {
        // The demo's specimen: a tenth of its pixels show structure, the rest background.
        let clean = try SyntheticSpecimen(shape: [512, 512], seed: 1).render()
        for (photons, read) in [(20.0, 2.0), (100.0, 5.0)] {
            let camera = try DegradationSimulator(config: SimulationConfig(photons: photons, readNoise: read, bits: nil))
            var rng = RandomGenerator(seed: 1)
            // In units of the brightest structure: variance x/photons + (read/photons)².
            let noisy = try camera.degrade(clean, rng: &rng).map { $0 / Float(photons) }
            let noise = try PoissonGaussianNoise.estimate(noisy)
            XCTAssertEqual(noise.gain, 1 / photons, accuracy: 0.15 / photons, "\(photons) photons")
            XCTAssertEqual(noise.floor, read * read / (photons * photons), accuracy: 0.2 * read * read / (photons * photons), "\(photons) photons")
        }
        // Noise-free structure has (almost) no noise.
        XCTAssertLessThan(try PoissonGaussianNoise.estimate(clean).meanVariance(clean), 1e-4)
        XCTAssertThrowsError(try PoissonGaussianNoise.estimate(Tensor(zeros: [3, 1])))
    }

    /// Recorrupted pairs of Poisson–Gaussian-like noisy pixels: the target is unbiased, the two
    /// noises are uncorrelated, and their variances are (1 + α²)·v and (1 + 1/α²)·v.
    func testRecorruptedPairsHaveUncorrelatedNoises() throws {
        let noise = PoissonGaussianNoise(gain: 0.05, floor: 0.01)
        let n = 200_000
        var rng = RandomGenerator(seed: 4)
        let x = (0..<n).map { Float($0 % 100) / 100 }
        let y = try Tensor(shape: [1, 1, 1, n], scalars: x.map { $0 + noise.variance($0).squareRoot() * rng.normal() })
        for alpha in [0.5, 1.0, 2.0] {
            let pair = try Recorruption(noise: noise, strength: alpha).pair(y, rng: &rng)
            let a = zip(pair.input.scalars, x).map { Double($0 - $1) }, b = zip(pair.target.scalars, x).map { Double($0 - $1) }
            let v = x.map { Double(noise.variance($0)) }.reduce(0, +) / Double(n)
            let meanB = b.reduce(0, +) / Double(n)
            let covariance = zip(a, b).map { $0 * $1 }.reduce(0, +) / Double(n)
            let varA = a.map { $0 * $0 }.reduce(0, +) / Double(n), varB = b.map { $0 * $0 }.reduce(0, +) / Double(n)
            XCTAssertEqual(meanB, 0, accuracy: 4 * (varB / Double(n)).squareRoot(), "α \(alpha)")
            XCTAssertEqual(covariance / (varA * varB).squareRoot(), 0, accuracy: 0.01, "α \(alpha)")
            XCTAssertEqual(varA, (1 + alpha * alpha) * v, accuracy: 0.02 * (1 + alpha * alpha) * v, "α \(alpha)")
            XCTAssertEqual(varB, (1 + 1 / (alpha * alpha)) * v, accuracy: 0.02 * (1 + 1 / (alpha * alpha)) * v, "α \(alpha)")
        }
    }

    /// With the exact posterior mean of a Gaussian prior as the network, prediction over
    /// recorruptions is that posterior mean at the recorrupted noise level, and the std map the
    /// posterior standard deviation there (second-order Tweedie).
    func testRecorruptedDenoisingOfAGaussianPriorIsThePosterior() throws {
        let (mu, s, sigma, alpha) = (0.5, 0.3, 0.2, 1.0)
        let total = (1 + alpha * alpha) * sigma * sigma
        let gain = s * s / (s * s + total)
        let network: TiledPredictor.Model = { x in x.map { Float(mu + gain * (Double($0) - mu)) } }
        var rng = RandomGenerator(seed: 2)
        let y = Tensor.randomNormal([1, 1, 64, 64], mean: Float(mu), std: Float((s * s + sigma * sigma).squareRoot()), rng: &rng)
        let tiles = RecorruptedDenoising(network: network, channels: 1, strength: alpha, draws: 4, seed: 0,
                                         noise: PoissonGaussianNoise(gain: 0, floor: sigma * sigma)).tiles()
        XCTAssertEqual(tiles.parts.map(\.name), ["mean", "std"])
        XCTAssertEqual(tiles.evaluationsPerTile, 8)
        var evaluations = 0
        tiles.counter?.onEvaluation = { evaluations += $0 }
        let out = try tiles.run(y)
        XCTAssertEqual(evaluations, 8)
        let posteriorSD = (total * gain).squareRoot()
        for i in stride(from: 0, to: 4096, by: 7) {
            // Antithetic draws cancel in a linear network: the mean is exact.
            XCTAssertEqual(Double(out.scalars[i]), mu + gain * (Double(y.scalars[i]) - mu), accuracy: 1e-4)
            XCTAssertEqual(Double(out.scalars[4096 + i]), posteriorSD, accuracy: 1e-3)
        }
    }

    /// Writes clean specimens and inputs that copy them (lightly noisy) except in a square where
    /// the input is blank: there the input says nothing about the target.
    private func writeMaskedPairs(_ dir: String, count: Int) throws -> (mask: (Range<Int>, Range<Int>), inputs: [Tensor], targets: [Tensor]) {
        for sub in ["low", "high"] { try FileManager.default.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true) }
        let mask = (20..<44, 20..<44)
        var inputs: [Tensor] = [], targets: [Tensor] = []
        for k in 0..<count {
            let clean = try SyntheticSpecimen(shape: [64, 64], seed: UInt64(k)).render().map { 100 * $0 }
            var rng = RandomGenerator(seed: UInt64(100 + k))
            var low = clean.map { $0 + 2 * rng.normal() }
            low.withUnsafeMutableBufferPointer { p in for i in mask.0 { for j in mask.1 { p[i * 64 + j] = 0 } } }
            try Image(data: clean, axes: "YX").write(to: "\(dir)/high/\(k).tif")
            try Image(data: low, axes: "YX").write(to: "\(dir)/low/\(k).tif")
            inputs.append(low)
            targets.append(clean)
        }
        return (mask, inputs, targets)
    }

    /// A conditional model trained on pairs whose inputs are blank in a square: its samples
    /// agree where the input shows the specimen and spread where it does not, so the std map
    /// (written by `lucid predict --std`) is larger there. The checkpoint keeps the moving
    /// average, predictions are a function of the seed, and the mean follows the clean image.
    /// Convolutions by the planner's heuristic: timed plans may differ from run to run, and with
    /// them the rounding, and so this short training run.
    func testStdMapIsLargerWhereTheConditionIsMaskedOut() throws {
        let savedMode = ConvPlanner.mode
        ConvPlanner.mode = .estimate
        ConvPlanner.clearPlans()
        defer { ConvPlanner.mode = savedMode; ConvPlanner.clearPlans() }
        let dir = try temporaryFolder(self).path
        let (mask, inputs, targets) = try writeMaskedPairs(dir, count: 6)
        let r = try recipe("""
            method: diffusion
            data: {input: "\(dir)/low/[0-4].tif", target: "\(dir)/high/[0-4].tif", patch: [32, 32], validation: 0.1}
            diffusion: {timesteps: 200, ema: 0.99, steps: 8, samples: 12}
            model: {depth: 2, filters: 8}
            training: {steps: 400, batch: 8, lr: 2.0e-3, validate_every: 200}
            output: \(dir)/ckpt
            """)
        let trainer = Trainer(recipe: r)
        trainer.showProgress = false
        let summary = try trainer.run()
        XCTAssertLessThan(summary.losses.suffix(50).reduce(0, +) / 50, summary.losses.prefix(50).reduce(0, +) / 50)
        let checkpoint = try Checkpoint.load(directory: "\(dir)/ckpt")
        XCTAssertEqual(checkpoint.metadata.model.inChannels, 2)
        let weights = try checkpoint.weights(.last)
        XCTAssertEqual(weights["ema.num_updates"]?.scalars, [400])
        XCTAssertNotEqual(weights["ema.conv_in.weight"]?.scalars, weights["conv_in.weight"]?.scalars)

        // The held-out pair, through the CLI.
        let r1 = try runLucid(["predict", "\(dir)/ckpt", "\(dir)/low/5.tif", "-o", "\(dir)/mean.tif", "--std", "\(dir)/std.tif",
                               "--save-samples", "\(dir)/samples.tif", "--seed", "3"], in: URL(fileURLWithPath: dir))
        XCTAssertEqual(r1.status, 0, r1.err)
        let mean = try Image.read("\(dir)/mean.tif"), std = try Image.read("\(dir)/std.tif"), samples = try Image.read("\(dir)/samples.tif")
        XCTAssertEqual(mean.data.shape, [64, 64])
        XCTAssertEqual(std.data.shape, [64, 64])
        XCTAssertEqual(samples.axes, "CYX")
        XCTAssertEqual(samples.data.shape, [12, 64, 64])
        var inside = [Double](), outside = [Double](), errIn = 0.0, errOut = 0.0
        for i in 0..<64 {
            for j in 0..<64 {
                let k = i * 64 + j, v = Double(std.data.scalars[k])
                let e = Double(mean.data.scalars[k] - targets[5].scalars[k])
                if mask.0.contains(i) && mask.1.contains(j) { inside.append(v); errIn += e * e } else {
                    outside.append(v)
                    errOut += e * e
                }
            }
        }
        let stdIn = inside.reduce(0, +) / Double(inside.count), stdOut = outside.reduce(0, +) / Double(outside.count)
        // About 1.7× for this 8-filter net after 400 steps.
        XCTAssertGreaterThan(stdIn, 1.5 * stdOut, "std inside the mask \(stdIn), outside \(stdOut)")
        // Outside the mask the mean follows the specimen (explains half its variance after 400 steps of
        // an 8-filter net); inside it errs more.
        let outsideTargets = (0..<4096).filter { !(mask.0.contains($0 / 64) && mask.1.contains($0 % 64)) }.map { Double(targets[5].scalars[$0]) }
        let m = outsideTargets.reduce(0, +) / Double(outsideTargets.count)
        let variance = outsideTargets.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(outsideTargets.count)
        XCTAssertLessThan(errOut / Double(outside.count), 0.5 * variance)
        XCTAssertGreaterThan(errIn / Double(inside.count), 2 * errOut / Double(outside.count))

        // The same seed gives the same samples; another seed others.
        let ckpt = try Checkpoint.load(directory: "\(dir)/ckpt")
        func predict(seed: UInt64) throws -> [String: Image] {
            try ImagePredictor(checkpoint: ckpt, sampling: SamplingOptions(samples: 2, steps: 4, seed: seed)).predictParts(Image(data: inputs[5], axes: "YX"))
        }
        XCTAssertEqual(try predict(seed: 1)["mean"]?.data.scalars, try predict(seed: 1)["mean"]?.data.scalars)
        XCTAssertNotEqual(try predict(seed: 1)["mean"]?.data.scalars, try predict(seed: 2)["mean"]?.data.scalars)
        XCTAssertEqual(Set(try predict(seed: 1).keys), ["mean", "std"])
        XCTAssertThrowsError(try ImagePredictor(checkpoint: ckpt, testTimeAugmentation: true)) { e in
            XCTAssertTrue("\(e)".contains("test-time augmentation would average the samples"), "\(e)")
        }
    }

    /// A self-supervised score model trained on one noisy image denoises it by Tweedie's formula.
    func testSelfSupervisedScoreModelDenoisesItsNoisyImage() throws {
        let dir = try temporaryFolder(self).path
        let clean = try SyntheticSpecimen(shape: [96, 96], seed: 7).render()
        let camera = try DegradationSimulator(config: SimulationConfig(photons: 20, readNoise: 2, bits: nil))
        var rng = RandomGenerator(seed: 8)
        let noisy = try camera.degrade(clean, rng: &rng)
        try Image(data: noisy, axes: "YX").write(to: "\(dir)/noisy.tif")
        let r = try recipe("""
            method: diffusion
            data: {train: "\(dir)/noisy.tif", patch: [32, 32], validation: 0.1}
            diffusion: {mode: selfsupervised, ema: 0.99, samples: 2}
            model: {depth: 2, filters: 8}
            training: {steps: 400, batch: 8, lr: 2.0e-3, validate_every: 200}
            output: \(dir)/ckpt
            """)
        let trainer = Trainer(recipe: r)
        trainer.showProgress = false
        _ = try trainer.run()
        let restorer = try ImagePredictor(checkpoint: Checkpoint.load(directory: "\(dir)/ckpt"))
        XCTAssertEqual(restorer.tiles.parts.map(\.name), ["mean", "std"])
        let parts = try restorer.predictParts(Image(data: noisy, axes: "YX"))
        let reference = clean.map { 20 * $0 }
        let before = try Metrics.evaluate(noisy, reference: reference, dataRange: 20).psnr
        let after = try Metrics.evaluate(try XCTUnwrap(parts["mean"]).data, reference: reference, dataRange: 20).psnr
        XCTAssertGreaterThan(after, before + 5, "noisy \(before) dB, Tweedie \(after) dB")
        XCTAssertTrue(try XCTUnwrap(parts["std"]).data.scalars.allSatisfy { $0.isFinite && $0 >= 0 })
        // A U-Net checkpoint has no std to write.
        XCTAssertThrowsError(try PredictionRun.run(restorer: ImagePredictor(net: PredictionTests.tinyNet(dims: 2), normalization: .none),
                                                   inputs: ["\(dir)/noisy.tif"], output: "\(dir)/o.tif", extraOutputs: ["std": "\(dir)/s.tif"])) { e in
            XCTAssertEqual("\(e)", "'\(dir)/s.tif': no std to write: this model gives only its restoration")
        }
    }

    /// An unconditional prior of clean specimens restores a noisy one: prediction places the
    /// input at the level of its measured noise and samples from there.
    func testUnconditionalPriorDenoisesFromTheMatchingNoiseLevel() throws {
        let dir = try temporaryFolder(self).path
        try FileManager.default.createDirectory(atPath: "\(dir)/clean", withIntermediateDirectories: true)
        for k in 0..<3 {
            try Image(data: try SyntheticSpecimen(shape: [64, 64], seed: UInt64(20 + k)).render(), axes: "YX").write(to: "\(dir)/clean/\(k).tif")
        }
        let r = try recipe("""
            method: diffusion
            data: {train: "\(dir)/clean/*.tif", patch: [32, 32], validation: 0.1, normalize: none}
            diffusion: {mode: unconditional, timesteps: 200, ema: 0.99, sampler: ddpm, steps: 30, samples: 4}
            model: {depth: 2, filters: 8}
            training: {steps: 400, batch: 8, lr: 2.0e-3, validate_every: 200}
            output: \(dir)/ckpt
            """)
        let trainer = Trainer(recipe: r)
        trainer.showProgress = false
        _ = try trainer.run()
        let clean = try SyntheticSpecimen(shape: [64, 64], seed: 99).render()
        var rng = RandomGenerator(seed: 5)
        let noisy = clean.map { $0 + 0.15 * rng.normal() }
        let restorer = try ImagePredictor(checkpoint: Checkpoint.load(directory: "\(dir)/ckpt"))
        XCTAssertEqual(restorer.tiles.parts.map(\.name), ["mean", "std"])
        let parts = try restorer.predictParts(Image(data: noisy, axes: "YX"))
        let before = try Metrics.psnr(noisy, reference: clean, dataRange: 1)
        let after = try Metrics.psnr(try XCTUnwrap(parts["mean"]).data, reference: clean, dataRange: 1)
        XCTAssertGreaterThan(after, before + 2, "noisy \(before) dB, posterior mean \(after) dB")
        let std = try XCTUnwrap(parts["std"]).data.scalars
        let meanStd = std.reduce(0, +) / Float(std.count)
        XCTAssertTrue(meanStd > 0 && meanStd < 0.15, "mean std \(meanStd) (the noise is 0.15)")
    }

    /// A 3-D conditional model predicts a stack through overlapping tiles, with samples.
    func testThreeDimensionalModelPredictsTiledStacks() throws {
        let dir = try temporaryFolder(self).path
        for sub in ["low", "high"] { try FileManager.default.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true) }
        let clean = try SyntheticSpecimen(shape: [12, 40, 40], seed: 3).render()
        try Image(data: clean, axes: "ZYX").write(to: "\(dir)/high/a.tif")
        try Image(data: clean.map { $0 + 0.05 }, axes: "ZYX").write(to: "\(dir)/low/a.tif")
        let r = try recipe("""
            method: diffusion
            data: {input: "\(dir)/low/*.tif", target: "\(dir)/high/*.tif", axes: ZYX, patch: [8, 16, 16], validation: 0.1}
            diffusion: {steps: 3, samples: 2}
            model: {depth: 1, filters: 4}
            training: {steps: 3, batch: 2}
            output: \(dir)/ckpt
            """)
        let trainer = Trainer(recipe: r)
        trainer.showProgress = false
        _ = try trainer.run()
        let checkpoint = try Checkpoint.load(directory: "\(dir)/ckpt")
        XCTAssertEqual(checkpoint.metadata.model.spatialRank, 3)
        // The report shows the sampled mean of the one validation patch: input | prediction | target.
        let report = try String(contentsOfFile: "\(dir)/ckpt/report.html", encoding: .utf8)
        XCTAssertEqual(report.components(separatedBy: "data:image/png").count - 1, 3)
        // Sampling uses a copy with the moving-average weights: the trained network keeps its own.
        let net = try checkpoint.makeModel(weights: .last)
        let before = net.stateDict().mapValues(\.scalars)
        _ = try checkpoint.method().tilePrediction(net, sampling: SamplingOptions(samples: 1))
        XCTAssertEqual(net.stateDict().mapValues(\.scalars), before)
        XCTAssertNotEqual(before["ema.conv_in.weight"], before["conv_in.weight"])
        var restorer = try ImagePredictor(checkpoint: checkpoint, tile: 16, overlap: 8, sampling: SamplingOptions(keepSamples: true))
        var evaluations = 0, tiles = 0
        restorer.predictor.progress = { done, total in if done == 0 { tiles = total } }
        restorer.tiles.counter?.onEvaluation = { evaluations += $0 }
        let parts = try restorer.predictParts(Image(data: clean, axes: "ZYX"))
        XCTAssertEqual(parts["mean"]?.data.shape, [12, 40, 40])
        XCTAssertEqual(parts["std"]?.data.shape, [12, 40, 40])
        XCTAssertEqual(parts["samples"]?.axes, "CZYX")
        XCTAssertEqual(parts["samples"]?.data.shape, [2, 12, 40, 40])
        XCTAssertGreaterThan(tiles, 8)
        XCTAssertEqual(evaluations, tiles * restorer.tiles.evaluationsPerTile)
        XCTAssertTrue(parts.values.allSatisfy { $0.data.scalars.allSatisfy(\.isFinite) })
    }
}
