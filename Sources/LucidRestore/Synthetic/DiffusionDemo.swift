import Foundation
import LucidCore
import LucidImaging
import LucidNN
import LucidOptics

/// `lucid demo diffusion`: a diffusion model restores a synthetic specimen and shows where it
/// is unsure, in `comparison.png` (input | mean | std | clean).
///
/// - `conditional`: clean specimens are blurred (Gaussian PSF, σ 1.5 pixels) and imaged with
///   Poisson–Gaussian noise; a conditional diffusion model trains on those pairs and samples a
///   held-out acquisition.
/// - `selfsupervised`: the noisy specimen of `lucid demo` (512², 20 photons, read noise 2), and
///   the self-supervised score model trained on it alone.
public struct DiffusionDemo {
    public var mode = Diffusion.Mode.conditional
    /// Folder for the data, images, figure, metrics and checkpoint.
    public var output = "demo-diffusion"
    /// Training time budget in seconds.
    public var seconds = 120.0
    /// Samples per tile (selfsupervised: recorruptions).
    public var samples = 8
    /// Sampler steps (DDIM).
    public var steps = 20
    /// Training pairs (conditional) and their side.
    public var pairs = 8
    public var size = 256
    public var photons = 20.0
    public var readNoise = 2.0
    /// Seed of the specimens, their noise and the sampling.
    public var seed: UInt64 = 1

    public init() {}

    /// Scores of the input and the mean against the clean image, and how the std map ranks the
    /// actual error (Spearman ρ of std and |mean − clean| over pixels).
    public struct Result {
        public var input: MetricReport
        public var mean: MetricReport
        public var stdErrorSpearman: Double
        public var steps: Int
    }

    /// The PSF and noise of the conditional mode's acquisitions.
    var simulation: Simulation {
        Simulation(psf: .model(.gaussian, parameters: ["sigma": 0.15, "pixel_size": 0.1, "nxy": 15]), photons: photons,
                   readNoise: readNoise)
    }

    func recipe(steps: Int, checkpoint: String) throws -> Recipe {
        let data: String, section: String, model: String
        switch mode {
        case .conditional:
            data = "{target: \(Demo.quoted(joinPath(output, "data/*.tif"))), simulate: {psf: {model: gaussian, sigma: 0.15, pixel_size: 0.1, nxy: 15}, photons: \(photons), read_noise: \(readNoise)}, patch: [64, 64], validation: 0.05}"
            section = "{mode: conditional, timesteps: 1000, ema: 0.995, sampler: ddim, steps: \(self.steps), samples: \(samples)}"
            model = "{depth: 2, filters: 16}"
        case .selfsupervised, .unconditional:
            data = "{train: \(Demo.quoted(joinPath(output, "noisy.tif"))), patch: [32, 32], validation: 0.1}"
            section = "{mode: selfsupervised, samples: \(samples)}"
            model = "{depth: 2, filters: 16}"
        }
        let lr = mode == .conditional ? "5.0e-4" : "1.0e-3"
        return try Recipe.parse(yaml: """
            method: diffusion
            data: \(data)
            diffusion: \(section)
            model: \(model)
            training: {steps: \(steps), batch: 8, lr: \(lr), seed: 0, clip_norm: 1.0, validate_every: \(max(10, steps / 4))}
            output: \(Demo.quoted(checkpoint))
            """, file: "diffusion demo recipe")
    }

    /// Checks the settings before anything is written.
    public func validate() throws {
        guard mode != .unconditional else {
            throw TensorError.invalidArgument(op: "demo diffusion", detail: "mode unconditional has no demo (conditional or selfsupervised)")
        }
        guard seconds > 0, samples >= 2, steps >= 1, pairs >= 2, size >= 64, size % 4 == 0 else {
            throw TensorError.invalidArgument(op: "demo diffusion", detail: "needs seconds > 0, samples ≥ 2, steps ≥ 1, pairs ≥ 2 and a size ≥ 64 divisible by 4")
        }
    }

    /// Writes the data, trains for `seconds`, predicts and writes `input.tif`, `mean.tif`,
    /// `std.tif`, `clean.tif`, `comparison.png` and `metrics.json` into `output`.
    public func run(log: (String) -> Void = { _ in }) throws -> Result {
        try validate()
        try PredictionRun.ensureWritableFolder(output)
        let (input, clean) = try writeData(log: log)
        let checkpoint = joinPath(output, "checkpoint")
        let steps = try Demo.train(for: seconds, checkpoint: checkpoint, name: "diffusion (\(mode.rawValue))", log: log) { steps, folder in
            try recipe(steps: steps, checkpoint: folder)
        }
        let restorer = try ImagePredictor(checkpoint: Checkpoint.load(directory: checkpoint), weights: .last,
                                          sampling: SamplingOptions(samples: samples, steps: self.steps, seed: seed))
        let start = Date()
        let parts = try restorer.predictParts(Image(data: input, axes: "YX"))
        log(String(format: "predicted %d samples per tile in %.1f s", samples, Date().timeIntervalSince(start)))
        let mean = parts["mean"]!.data, std = parts["std"]!.data
        for (name, t) in [("input", input), ("mean", mean), ("std", std), ("clean", clean)] {
            try Image(data: t, axes: "YX").write(to: joinPath(output, name + ".tif"))
        }
        try PNG.writeComparison([input, mean, std, clean], to: joinPath(output, "comparison.png"))
        let range = Double(photons)
        let error = try mean.zipMap(clean, op: "error") { Swift.abs($0 - $1) }
        let result = Result(input: try Metrics.evaluate(input, reference: clean, dataRange: range),
                            mean: try Metrics.evaluate(mean, reference: clean, dataRange: range),
                            stdErrorSpearman: try Metrics.spearman(std, error), steps: steps)
        let json = "{\"mode\": \"\(mode.rawValue)\", \"input\": \(result.input.json()), \"mean\": \(result.mean.json()), "
            + "\"std_error_spearman\": \(result.stdErrorSpearman), \"steps\": \(steps), \"samples\": \(samples), "
            + "\"sampler_steps\": \(self.steps), \"photons\": \(photons), \"read_noise\": \(readNoise)}\n"
        try Checkpoint.writeAtomically(Data(json.utf8), to: joinPath(output, "metrics.json"))
        return result
    }

    /// The training data and the held-out acquisition with its clean image (in photons).
    private func writeData(log: (String) -> Void) throws -> (input: Tensor, clean: Tensor) {
        let toPhotons = LucidImaging.Normalization(method: .meanStd, offset: 0, scale: Float(photons))
        if mode == .selfsupervised {
            let clean = try SyntheticSpecimen(shape: [512, 512], seed: seed).render()
            let camera = try DegradationSimulator(config: SimulationConfig(photons: photons, readNoise: readNoise, bits: nil))
            var rng = RandomGenerator(seed: seed &+ 1)
            let noisy = try camera.degrade(clean, rng: &rng)
            try Image(data: noisy, axes: "YX").write(to: joinPath(output, "noisy.tif"))
            log("specimen 512×512 (lucid demo's), \(photons) photons at the brightest structure, read noise \(readNoise) e⁻")
            return (noisy, toPhotons.invert(clean))
        }
        let folder = joinPath(output, "data")
        try? FileManager.default.removeItem(atPath: folder)
        try PredictionRun.ensureWritableFolder(folder)
        for k in 0..<pairs {
            let clean = try SyntheticSpecimen(shape: [size, size], seed: seed &+ UInt64(k)).render()
            try Image(data: toPhotons.invert(clean), axes: "YX").write(to: joinPath(folder, String(format: "%03d.tif", k)))
        }
        let clean = toPhotons.invert(try SyntheticSpecimen(shape: [size, size], seed: seed &+ 1000).render())
        var rng = RandomGenerator(seed: seed &+ 2000)
        let input = try SimulatedPairs(simulation, spatialRank: 2).degrade(try clean.reshaped([1, size, size]), rng: &rng)
        log("\(pairs) specimens \(size)×\(size) blurred (σ 1.5 px) at \(photons) photons, read noise \(readNoise) e⁻; one more held out")
        return (try input.reshaped([size, size]), clean)
    }
}
