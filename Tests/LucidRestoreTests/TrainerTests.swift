import Foundation
import LucidAutograd
import LucidCore
import LucidImaging
import LucidNN
import LucidTestSupport
import XCTest
@testable import LucidRestore

final class TrainerTests: XCTestCase {
    /// A noisy synthetic specimen (Poisson-like Gaussian noise around 20 photons), written as float32 TIFF.
    @discardableResult
    private func writeNoisy(_ path: String, shape: [Int], seed: UInt64, axes: String? = nil) throws -> Tensor {
        let clean = try SyntheticSpecimen(shape: shape, seed: seed).render()
        var rng = RandomGenerator(seed: seed &+ 100)
        var noisy = clean.copy()
        noisy.withUnsafeMutableBufferPointer { b in
            for i in b.indices { b[i] = 20 * b[i] + (20 * b[i] + 4).squareRoot() * rng.normal() }
        }
        try Image(data: noisy, axes: axes ?? (shape.count == 2 ? "YX" : "ZYX")).write(to: path)
        return clean
    }

    private func recipe(_ yaml: String, _ overrides: [String] = []) throws -> Recipe {
        try Recipe.parse(yaml: yaml, file: "test.yaml", overrides: overrides)
    }

    private func n2sRecipe(_ dir: String, steps: Int = 6) -> String {
        """
        method: noise2self
        data: {train: "\(dir)/noisy/*.tif", axes: YX, patch: [32, 32], validation: 0.25}
        model: {depth: 1, filters: 8, norm: none}
        training: {steps: \(steps), batch: 4, lr: 1.0e-3, seed: 3, validate_every: 3}
        output: \(dir)/out
        """
    }

    private func run(_ recipe: Recipe, output: String? = nil, resume: Bool = false,
                     before: ((Int, any ImageModel) -> Void)? = nil) throws -> TrainingSummary {
        let trainer = Trainer(recipe: recipe, output: output, resume: resume)
        trainer.showProgress = false
        if let before { trainer.extraCallbacks = [BeforeStep(before)] }
        return try trainer.run()
    }

    // MARK: - masking properties with a real network

    /// Noise2Self's J-invariance: changing a masked pixel of the original batch does not move the
    /// network's output at that pixel (while changing its neighbour does).
    func testNoise2SelfJInvarianceWithUNet() throws {
        var rng = RandomGenerator(seed: 11)
        var config = UNetConfig()
        config.depth = 1
        config.firstFilters = 8
        let net = try UNet(config, rng: &rng)
        let masker = GridMasker(grid: 4, replacement: .interpolate)
        let x = Tensor.randomUniform([1, 1, 32, 32], rng: &rng)
        let phase = 5  // offsets (1, 1)
        func output(_ batch: Tensor) throws -> [Float] {
            try noGrad { try net(Variable(masker.apply(batch, phase: phase).input)).value.scalars }
        }
        let y0 = try output(x)
        for (py, px) in [(1, 1), (13, 9), (29, 21)] {
            let i = py * 32 + px
            XCTAssertEqual(try masker.apply(x, phase: phase).mask.scalars[i], 1, "pixel must be masked")
            var perturbed = x.copy()
            perturbed.withUnsafeMutableBufferPointer { $0[i] += 5 }
            XCTAssertEqual(try output(perturbed)[i], y0[i], "output at masked (\(py), \(px)) moved")
            var neighbour = x.copy()
            neighbour.withUnsafeMutableBufferPointer { $0[i + 1] += 5 }
            XCTAssertGreaterThan(abs(try output(neighbour)[i] - y0[i]), 1e-6, "the test must be able to see a change")
        }
    }

    /// Noise2Void never replaces a masked pixel by itself, over many draws.
    func testNoise2VoidReplacementIsNeverTheCentre() throws {
        let side = 16
        let x = try Tensor(shape: [2, 1, side, side], scalars: (0..<(2 * side * side)).map(Float.init))
        let masker = BlindSpotMasker(pixelFraction: 0.05, neighborhood: 3, replacement: .uniform)
        var rng = RandomGenerator(seed: 5)
        var masked = 0
        for _ in 0..<300 {
            let m = try masker.apply(x, rng: &rng)
            let mask = m.mask.scalars, input = m.input.scalars
            for i in mask.indices where mask[i] == 1 {
                masked += 1
                XCTAssertNotEqual(input[i], Float(i), "pixel \(i) replaced by itself")
                // The replacement comes from the 3×3 window of the same image (values are indices).
                let j = Int(input[i])
                XCTAssertEqual(j / (side * side), i / (side * side))
                let (yi, xi, yj, xj) = ((i % (side * side)) / side, i % side, (j % (side * side)) / side, j % side)
                XCTAssertLessThanOrEqual(max(abs(yi - yj), abs(xi - xj)), 1)
            }
        }
        XCTAssertGreaterThan(masked, 5000)
    }

    /// Training crops are whole patches of the data (2-D and 3-D), flipped/turned in XY only,
    /// with inputs and targets cut at the same place.
    func testBatchesAreAugmentedCropsOfTheData() throws {
        for (shape, patch) in [([1, 12, 20], [6, 6]), ([1, 5, 12, 20], [2, 6, 6])] {
            let n = shape.reduce(1, *)
            let image = try Tensor(shape: shape, scalars: (0..<n).map(Float.init))
            let target = try Tensor(shape: shape, scalars: (0..<n).map { Float($0) + 0.5 })
            let data = TrainingData(files: [], axes: patch.count == 2 ? "YX" : "ZYX", spatialRank: patch.count,
                                    inChannels: 1, outChannels: 1, patchShape: patch,
                                    normalization: .none, targetNormalization: nil, sources: [[image, target]],
                                    validationInputs: Tensor(zeros: [0, 1] + patch), validationTargets: nil, augment: true)
            var rng = RandomGenerator(seed: 1)
            let (x, y) = data.batch(size: 40, rng: &rng)
            XCTAssertEqual(x.shape, [40, 1] + patch)
            let per = patch.reduce(1, *), (H, W) = (shape[shape.count - 2], shape[shape.count - 1])
            var transformed = 0
            for b in 0..<40 {
                let values = Array(x.scalars[(b * per)..<((b + 1) * per)])
                XCTAssertEqual(Array(y!.scalars[(b * per)..<((b + 1) * per)]), values.map { $0 + 0.5 })
                // The smallest value is the crop's corner; the patch holds exactly the crop's values.
                let corner = Int(values.min()!)
                let (z0, y0, x0) = (corner / (H * W), (corner % (H * W)) / W, corner % W)
                var crop: [Float] = []
                for z in 0..<(patch.count == 3 ? patch[0] : 1) {
                    for yy in 0..<patch[patch.count - 2] {
                        for xx in 0..<patch[patch.count - 1] { crop.append(Float(((z0 + z) * H + y0 + yy) * W + x0 + xx)) }
                    }
                }
                XCTAssertEqual(values.sorted(), crop, "patch \(b) is not a crop")
                if values != crop { transformed += 1 }
                // Z order is kept: each plane's values come from one plane of the data.
                let plane = patch[patch.count - 2] * patch[patch.count - 1]
                for z in 0..<(per / plane) {
                    let planes = Set(values[(z * plane)..<((z + 1) * plane)].map { Int($0) / (H * W) })
                    XCTAssertEqual(planes, [z0 + z])
                }
            }
            XCTAssertGreaterThan(transformed, 20, "augmentation should transform most patches")
        }
    }

    // MARK: - training from recipes

    func testNoise2SelfTrainsFromTIFFFiles() throws {
        let dir = try temporaryFolder(self).path
        try FileManager.default.createDirectory(atPath: dir + "/noisy", withIntermediateDirectories: true)
        try writeNoisy(dir + "/noisy/a.tif", shape: [48, 48], seed: 1)
        try writeNoisy(dir + "/noisy/b.tif", shape: [40, 56], seed: 2)
        let summary = try run(try recipe(n2sRecipe(dir)))
        XCTAssertEqual(summary.stop, .completed)
        XCTAssertEqual(summary.step, 6)
        XCTAssertEqual(summary.losses.count, 6)
        XCTAssertEqual(summary.validationLosses.map(\.step), [3, 6])
        let ckpt = try Checkpoint.load(directory: dir + "/out")
        XCTAssertEqual(ckpt.metadata.step, 6)
        XCTAssertEqual(ckpt.metadata.method, "noise2self")
        XCTAssertEqual(ckpt.metadata.axes, "YX")
        XCTAssertEqual(ckpt.metadata.dataFiles.map { ($0.path as NSString).lastPathComponent }, ["a.tif", "b.tif"])
        XCTAssertEqual(ckpt.metadata.dataFiles[0].sha256,
                       SHA256.hex(try Data(contentsOf: URL(fileURLWithPath: dir + "/noisy/a.tif"))))
        XCTAssertEqual(ckpt.metadata.normalization.method, .percentile)
        XCTAssertEqual(ckpt.metadata.bestValidationLoss, summary.bestValidationLoss)
        let net = try ckpt.makeModel(weights: .best)
        let y = try noGrad { try net(Variable(Tensor(zeros: [1, 1, 32, 32]))) }
        XCTAssertTrue(y.value.scalars.allSatisfy(\.isFinite))
        let csv = try String(contentsOfFile: dir + "/out/metrics.csv", encoding: .utf8)
            .split(separator: "\n").map(String.init)
        XCTAssertEqual(csv.first, "step,loss,val_loss,lr,patches_per_s,elapsed")
        XCTAssertEqual(csv.count, 7)
        XCTAssertEqual(csv[3].split(separator: ",", omittingEmptySubsequences: false).count, 6)
        XCTAssertEqual(Double(csv[3].split(separator: ",", omittingEmptySubsequences: false)[2]),
                       summary.validationLosses[0].loss)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/out/recipe.yaml"))
        // The saved recipe reads back to the one trained.
        let saved = try Recipe.load(path: dir + "/out/recipe.yaml")
        XCTAssertEqual(saved, try recipe(n2sRecipe(dir)))
    }

    func testNoise2Void3DTrainsFromAStack() throws {
        let dir = try temporaryFolder(self).path
        try writeNoisy(dir + "/stack.tif", shape: [12, 32, 32], seed: 4)
        let yaml = """
            method: noise2void
            data: {train: "\(dir)/stack.tif", axes: ZYX, patch: [8, 16, 16], validation: 0.2}
            noise2void: {n2v2: true, pixel_fraction: 0.02}
            model: {depth: 1, filters: 8, norm: batch}
            training: {steps: 3, batch: 2, seed: 1, validate_every: 3}
            output: \(dir)/out
            """
        let summary = try run(try recipe(yaml))
        XCTAssertEqual(summary.step, 3)
        XCTAssertTrue(summary.losses.allSatisfy(\.isFinite))
        let ckpt = try Checkpoint.load(directory: dir + "/out")
        XCTAssertEqual(ckpt.metadata.spatialRank, 3)
        XCTAssertEqual(try ckpt.metadata.unet().dims, 3)
        XCTAssertEqual(try ckpt.metadata.unet().pooling, .maxBlur)
        XCTAssertFalse(try ckpt.metadata.unet().skipTop)
        XCTAssertNoThrow(try ckpt.makeModel(weights: .last))
    }

    func testPairedMethodsMatchFilesByName() throws {
        let dir = try temporaryFolder(self).path
        for sub in ["low", "high"] {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true)
        }
        for (name, seed) in [("a.tif", UInt64(1)), ("b.tif", 2)] {
            let clean = try writeNoisy("\(dir)/low/\(name)", shape: [32, 32], seed: seed)
            try Image(data: clean, axes: "YX").write(to: "\(dir)/high/\(name)")
        }
        let care = """
            method: care
            data: {input: "\(dir)/low/*.tif", target: "\(dir)/high/*.tif", axes: YX, patch: [16, 16], validation: 0.2}
            care: {probabilistic: true}
            model: {depth: 1, filters: 8, norm: none}
            training: {steps: 2, batch: 2, validate_every: 2}
            output: \(dir)/care
            """
        let s = try run(try recipe(care))
        XCTAssertTrue(s.losses.allSatisfy(\.isFinite))
        let ckpt = try Checkpoint.load(directory: dir + "/care")
        XCTAssertTrue(try ckpt.metadata.unet().probabilistic)
        XCTAssertNotNil(ckpt.metadata.targetNormalization)
        let n2n = care.replacingOccurrences(of: "method: care", with: "method: noise2noise")
            .replacingOccurrences(of: "care: {probabilistic: true}", with: "noise2noise: {loss: mse}")
            .replacingOccurrences(of: "output: \(dir)/care", with: "output: \(dir)/n2n")
        XCTAssertEqual(try run(try recipe(n2n)).step, 2)
        // Noise2Noise records its targets' normalization too: a second acquisition may be brighter.
        XCTAssertNotNil(try Checkpoint.load(directory: dir + "/n2n").metadata.targetNormalization)
    }

    /// CARE predicts in its targets' intensities, even when they are far from the input's: a
    /// clean target 3× as bright as its noisy input, plus an offset.
    func testCAREPredictsInTheTargetsIntensities() throws {
        let dir = try temporaryFolder(self).path
        for sub in ["low", "high"] { try FileManager.default.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true) }
        var rng = RandomGenerator(seed: 4)
        let clean = try SyntheticSpecimen(shape: [96, 96], seed: 3).render()
        let noisy = clean.map { 30 * $0 + 5 + 2 * rng.normal() }
        let target = clean.map { 90 * $0 + 400 }
        try Image(data: noisy, axes: "YX").write(to: "\(dir)/low/a.tif")
        try Image(data: target, axes: "YX").write(to: "\(dir)/high/a.tif")
        let r = try recipe("""
            method: care
            data: {input: "\(dir)/low/*.tif", target: "\(dir)/high/*.tif", patch: [32, 32], validation: 0.1}
            model: {depth: 1, filters: 8}
            training: {steps: 200, batch: 8, lr: 2.0e-3, validate_every: 100}
            output: \(dir)/care
            """)
        _ = try run(r)
        let restorer = try ImagePredictor(checkpoint: Checkpoint.load(directory: dir + "/care"))
        let prediction = try restorer.predict(Image(data: noisy, axes: "YX")).data
        // The best affine map from prediction to target is close to the identity.
        let (slope, intercept) = Self.affineFit(prediction.scalars, target.scalars)
        XCTAssertEqual(slope, 1, accuracy: 0.08, "target ≈ \(slope) · prediction + \(intercept)")
        XCTAssertEqual(Double(prediction.scalars.reduce(0, +)) / Double(prediction.count),
                       Double(target.scalars.reduce(0, +)) / Double(target.count), accuracy: 6)
        // A twice as bright input (percentiles refitted) predicts twice as bright targets.
        let brighter = try restorer.predict(Image(data: noisy.map { 2 * $0 }, axes: "YX")).data
        let (twice, _) = Self.affineFit(prediction.scalars.map { 2 * $0 }, brighter.scalars)
        XCTAssertEqual(twice, 1, accuracy: 1e-3)
    }

    /// Least-squares `y ≈ slope · x + intercept`.
    static func affineFit(_ x: [Float], _ y: [Float]) -> (Double, Double) {
        let n = Double(x.count)
        let mx = x.reduce(0.0) { $0 + Double($1) } / n, my = y.reduce(0.0) { $0 + Double($1) } / n
        var sxy = 0.0, sxx = 0.0
        for (a, b) in zip(x, y) { sxy += (Double(a) - mx) * (Double(b) - my); sxx += (Double(a) - mx) * (Double(a) - mx) }
        let slope = sxy / sxx
        return (slope, my - slope * mx)
    }

    /// CARE on pairs simulated from clean targets: inputs blurred and noisy, aligned with their
    /// targets, reproducible from the seed; the recipe's pooling and dropout reach the network.
    func testCARETrainsOnSimulatedPairs() throws {
        let dir = try temporaryFolder(self).path
        try FileManager.default.createDirectory(atPath: "\(dir)/high", withIntermediateDirectories: true)
        let clean = try SyntheticSpecimen(shape: [48, 48], seed: 5).render()
        try Image(data: LucidImaging.Normalization(method: .meanStd, offset: 10, scale: 500).invert(clean), axes: "YX")
            .write(to: "\(dir)/high/a.tif")
        let yaml = """
            method: care
            data:
              target: "\(dir)/high/*.tif"
              simulate: {psf: {model: gaussian, sigma: 0.15, nxy: 9}, photons: 40, read_noise: 2}
              axes: YX
              patch: [16, 16]
              validation: 0.2
            model: {depth: 1, filters: 8, norm: none, pooling: conv, dropout: 0.1}
            training: {steps: 3, batch: 2, seed: 2, validate_every: 3}
            output: \(dir)/out
            """
        let r = try recipe(yaml)
        let data = try TrainingData.load(r, seed: 2)
        XCTAssertEqual(data.files, ["\(dir)/high/a.tif"])
        XCTAssertNotNil(data.targetNormalization)
        let (input, target) = (data.sources[0][0], data.sources[0][1])
        XCTAssertEqual(input.shape, [1, 48, 48])
        XCTAssertEqual(target.shape, input.shape)
        XCTAssertEqual(try TrainingData.load(r, seed: 2).sources[0][0].scalars, input.scalars, "seeded simulation repeats")
        XCTAssertNotEqual(try TrainingData.load(r, seed: 3).sources[0][0].scalars, input.scalars)
        // Noisier: neighbouring input pixels differ far more than neighbouring target pixels.
        func roughness(_ t: Tensor) -> Double {
            let v = t.scalars.map(Double.init)
            var total = 0.0
            for y in 0..<48 { for x in 0..<47 { total += abs(v[y * 48 + x + 1] - v[y * 48 + x]) } }
            return total / Double(48 * 47)
        }
        XCTAssertGreaterThan(roughness(input), 2 * roughness(target), "input \(roughness(input)), target \(roughness(target))")
        // Aligned: the input follows the target (correlation of the normalized images).
        let (a, b) = (input.scalars.map(Double.init), target.scalars.map(Double.init))
        let (ma, mb) = (a.reduce(0, +) / Double(a.count), b.reduce(0, +) / Double(b.count))
        let cov: Double = zip(a, b).reduce(0) { $0 + ($1.0 - ma) * ($1.1 - mb) }
        let va: Double = a.reduce(0) { $0 + ($1 - ma) * ($1 - ma) }
        let vb: Double = b.reduce(0) { $0 + ($1 - mb) * ($1 - mb) }
        let corr = cov / (va * vb).squareRoot()
        XCTAssertGreaterThan(corr, 0.75, "correlation")

        let summary = try run(r)
        XCTAssertEqual(summary.step, 3)
        XCTAssertTrue(summary.losses.allSatisfy(\.isFinite))
        let ckpt = try Checkpoint.load(directory: dir + "/out")
        XCTAssertEqual(try ckpt.metadata.unet().pooling, .strideConv)
        XCTAssertEqual(try ckpt.metadata.unet().dropout, 0.1)
        XCTAssertNotNil(ckpt.metadata.targetNormalization)
        XCTAssertNoThrow(try ckpt.makeModel(weights: .best))
    }

    /// `background` photons join the signal's `photons` at the peak: a flat target gets mean and
    /// variance photons + background (Poisson), and recipe PSF names map onto LucidOptics' fields.
    func testSimulatedBackgroundAndPSFParameters() throws {
        let psf = PSFSpec.model(.gaussian, parameters: ["sigma": 0.3, "pixel_size": 0.2, "nxy": 5])
        let config = try XCTUnwrap(psf.config())
        XCTAssertEqual(config.sigmaXY, 0.3)
        XCTAssertEqual(config.dxy, 0.2)
        XCTAssertEqual(config.nxy, 5)
        XCTAssertNil(config.nz)
        let pairs = try SimulatedPairs(Simulation(psf: psf, photons: 50, readNoise: 0, background: 10), spatialRank: 2)
        var rng = RandomGenerator(seed: 4)
        let noisy = try pairs.degrade(Tensor(shape: [1, 128, 128], repeating: 3), rng: &rng).scalars.map(Double.init)
        let mean = noisy.reduce(0, +) / Double(noisy.count)
        let variance = noisy.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(noisy.count - 1)
        XCTAssertEqual(mean, 60, accuracy: 0.5)      // 5σ of the mean is 0.38
        XCTAssertEqual(variance, 60, accuracy: 4)
    }

    // MARK: - resume, interruption, divergence

    /// An interrupted run (SIGINT) resumed from its checkpoint reproduces the uninterrupted run's
    /// losses, validation losses and final weights exactly.
    func testResumeReproducesTheUninterruptedRun() throws {
        let dir = try temporaryFolder(self).path
        try FileManager.default.createDirectory(atPath: dir + "/noisy", withIntermediateDirectories: true)
        try writeNoisy(dir + "/noisy/a.tif", shape: [48, 48], seed: 7)
        let yaml = """
            method: noise2void
            data: {train: "\(dir)/noisy/*.tif", axes: YX, patch: [16, 16], validation: 0.2}
            noise2void: {pixel_fraction: 0.05}
            model: {depth: 1, filters: 8, norm: batch}
            training: {steps: 8, batch: 4, lr: 1.0e-3, seed: 9, validate_every: 2,
                       schedule: {kind: plateau, patience: 1, factor: 0.5}}
            output: \(dir)/full
            """
        let r = try recipe(yaml)
        let full = try run(r)
        XCTAssertEqual(full.step, 8)

        let first = try run(r, output: dir + "/split", before: { step, _ in
            if step == 6 {
                Trainer.installInterruptHandler()
                raise(SIGINT)
            }
        })
        XCTAssertEqual(first.stop, .interrupted)
        XCTAssertEqual(first.step, 5)
        XCTAssertEqual(try Checkpoint.load(directory: dir + "/split").metadata.step, 5)
        let second = try run(r, output: dir + "/split", resume: true)
        XCTAssertEqual(second.startStep, 5)
        XCTAssertEqual(second.step, 8)
        XCTAssertEqual(first.losses + second.losses, full.losses)
        XCTAssertEqual((first.validationLosses + second.validationLosses).map(\.loss), full.validationLosses.map(\.loss))
        let a = try Checkpoint.load(directory: dir + "/full"), b = try Checkpoint.load(directory: dir + "/split")
        for (name, t) in try a.weights(.last) {
            XCTAssertEqual(try b.weights(.last)[name]?.scalars, t.scalars, name)
        }
        XCTAssertEqual(a.metadata.training.plateau, b.metadata.training.plateau)
        XCTAssertEqual(a.metadata.bestStep, b.metadata.bestStep)
        // metrics.csv holds each step once, with the same losses.
        func lossColumn(_ out: String) throws -> [String] {
            try String(contentsOfFile: "\(dir)/\(out)/metrics.csv", encoding: .utf8).split(separator: "\n").dropFirst()
                .map { $0.split(separator: ",", omittingEmptySubsequences: false).prefix(3).joined(separator: ",") }
        }
        XCTAssertEqual(try lossColumn("split"), try lossColumn("full"))
        // Resuming a finished run does nothing; changing the recipe is refused.
        XCTAssertEqual(try run(r, output: dir + "/split", resume: true).losses, [])
        XCTAssertThrowsError(try run(try recipe(yaml, ["training.lr=0.01"]), output: dir + "/split", resume: true)) {
            XCTAssertEqual("\($0)", "\(dir)/split: --resume needs the recipe the checkpoint was trained with (see \(dir)/split/recipe.yaml); only training.steps may change")
        }
    }

    /// Early stopping ends the run after `patience` validations without improvement; the best
    /// weights stay those of the best validation.
    func testEarlyStoppingKeepsTheBestWeights() throws {
        let dir = try temporaryFolder(self).path
        try FileManager.default.createDirectory(atPath: dir + "/noisy", withIntermediateDirectories: true)
        try writeNoisy(dir + "/noisy/a.tif", shape: [48, 48], seed: 1)
        let r = try recipe(n2sRecipe(dir, steps: 20), ["training.validate_every=1", "training.early_stopping.patience=2",
                                                       "training.early_stopping.min_delta=1000"])
        let s = try run(r)
        XCTAssertEqual(s.stop, .earlyStopped)
        XCTAssertEqual(s.step, 3)
        XCTAssertEqual(s.bestStep, 1)
        let ckpt = try Checkpoint.load(directory: dir + "/out")
        XCTAssertEqual(ckpt.metadata.step, 3)
        XCTAssertEqual(ckpt.metadata.bestStep, 1)
        XCTAssertEqual(ckpt.metadata.files.weightsBest, "weights_best-00000001.safetensors")
        XCTAssertNotEqual(try ckpt.weights(.best)["out.weight"]?.scalars, try ckpt.weights(.last)["out.weight"]?.scalars)
    }

    /// A NaN loss stops training with a clear message and keeps the last good checkpoint.
    func testNonFiniteLossStopsAndKeepsTheLastCheckpoint() throws {
        let dir = try temporaryFolder(self).path
        try FileManager.default.createDirectory(atPath: dir + "/noisy", withIntermediateDirectories: true)
        try writeNoisy(dir + "/noisy/a.tif", shape: [48, 48], seed: 1)
        let r = try recipe(n2sRecipe(dir, steps: 10), ["training.validate_every=2"])
        XCTAssertThrowsError(try run(r, before: { step, net in
            if step == 5 { net.parameters[0].value = Tensor(shape: net.parameters[0].value.shape, repeating: .nan) }
        })) {
            XCTAssertEqual("\($0)", "\(dir)/out: training loss is nan at step 5; stopped. The last good checkpoint (step 4) is kept; try a lower training.lr or set training.clip_norm")
        }
        let ckpt = try Checkpoint.load(directory: dir + "/out")
        XCTAssertEqual(ckpt.metadata.step, 4)
        XCTAssertTrue(try ckpt.weights(.last).values.allSatisfy { $0.scalars.allSatisfy(\.isFinite) })
    }

    // MARK: - bad input

    private func trainError(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        var message = ""
        XCTAssertThrowsError(try run(try recipe(yaml)), file: file, line: line) { message = "\($0)" }
        return message
    }

    func testBadInputErrorsNameTheFileAndCause() throws {
        let dir = try temporaryFolder(self).path
        try FileManager.default.createDirectory(atPath: dir + "/noisy", withIntermediateDirectories: true)
        // Patch larger than the image.
        try writeNoisy(dir + "/noisy/small.tif", shape: [16, 24], seed: 1)
        XCTAssertEqual(try trainError(n2sRecipe(dir)),
                       "\(dir)/noisy/small.tif: image of spatial shape [16, 24] (axes YX) is smaller than data.patch [32, 32]")
        // A non-finite pixel.
        var t = Tensor(shape: [32, 32], repeating: 1)
        t.withUnsafeMutableBufferPointer { $0[3 * 32 + 5] = .nan }
        try FileManager.default.removeItem(atPath: dir + "/noisy/small.tif")
        try Image(data: t, axes: "YX").write(to: dir + "/noisy/nan.tif")
        XCTAssertEqual(try trainError(n2sRecipe(dir)),
                       "\(dir)/noisy/nan.tif: pixel [3, 5] (axes YX) is nan; non-finite pixels cannot be trained on")
        // A corrupt TIFF.
        try FileManager.default.removeItem(atPath: dir + "/noisy/nan.tif")
        try Data("not a tiff at all".utf8).write(to: URL(fileURLWithPath: dir + "/noisy/bad.tif"))
        XCTAssertTrue(try trainError(n2sRecipe(dir)).hasPrefix("cannot read '\(dir)/noisy/bad.tif'"))
        // An empty glob.
        try FileManager.default.removeItem(atPath: dir + "/noisy/bad.tif")
        XCTAssertEqual(try trainError(n2sRecipe(dir)),
                       "no image files match '\(dir)/noisy/*.tif': the pattern matches no file")
        // A 2-D image for a 3-D recipe.
        try writeNoisy(dir + "/noisy/a.tif", shape: [32, 32], seed: 1)
        XCTAssertEqual(try trainError(n2sRecipe(dir).replacingOccurrences(of: "axes: YX, patch: [32, 32]", with: "axes: ZYX, patch: [4, 32, 32]")),
                       "\(dir)/noisy/a.tif: has axes YX without Z, but data.axes ZYX trains on 3-D stacks")
        // An unwritable output folder (below a regular file): nothing is trained or written.
        let blocked = n2sRecipe(dir).replacingOccurrences(of: "output: \(dir)/out", with: "output: \(dir)/noisy/a.tif/out")
        XCTAssertTrue(try trainError(blocked).hasPrefix("\(dir)/noisy/a.tif/out: cannot create the output folder"))
        // An existing checkpoint is not overwritten without --resume.
        _ = try run(try recipe(n2sRecipe(dir, steps: 1)))
        XCTAssertEqual(try trainError(n2sRecipe(dir)),
                       "\(dir)/out: already holds a checkpoint; continue it with --resume or choose another --output")
        // Mismatched pair shapes.
        for sub in ["low", "high"] {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true)
        }
        try writeNoisy(dir + "/low/p.tif", shape: [32, 32], seed: 1)
        try writeNoisy(dir + "/high/p.tif", shape: [32, 40], seed: 1)
        let care = """
            method: care
            data: {input: "\(dir)/low/*.tif", target: "\(dir)/high/*.tif", axes: YX, patch: [16, 16]}
            model: {depth: 1, filters: 8}
            training: {steps: 1, batch: 2}
            output: \(dir)/care
            """
        XCTAssertEqual(try trainError(care),
                       "\(dir)/high/p.tif: shape 1 × [1, 32, 40] differs from its input \(dir)/low/p.tif's 1 × [1, 32, 32]")
        // Simulated 3-D inputs need a 3-D PSF.
        let simulated = """
            method: care
            data: {target: "\(dir)/high/*.tif", simulate: {psf: {model: gaussian, sigma: 0.15}}, axes: ZYX, patch: [2, 16, 16]}
            model: {depth: 1, filters: 8}
            output: \(dir)/sim
            """
        XCTAssertEqual(try trainError(simulated), "data.simulate.psf: 3-D data (data.axes ZYX or CZYX) needs a 3-D PSF: give nz (odd plane count) and dz")
    }
}
