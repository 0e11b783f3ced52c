import Foundation
import LucidCore
import LucidImaging
import LucidOptics

/// `lucid demo`: a synthetic specimen, its noisy acquisition, Noise2Self trained on the noisy
/// image alone for a time budget, and the restoration, scored against the clean specimen.
public struct Demo {
    /// Folder for the images, the comparison figure, the metrics and the checkpoint.
    public var output = "demo"
    /// Training time budget in seconds (turned into a step count after a short measurement).
    public var seconds = 120.0
    /// Side of the square 2-D specimen.
    public var size = 512
    public var seed: UInt64 = 1
    public var photons = 20.0
    public var readNoise = 2.0

    public init() {}

    /// Scores of the noisy and the restored image against the clean one.
    public struct Result {
        public var noisy: MetricReport
        public var restored: MetricReport
        public var steps: Int
    }

    /// The recipe: Recipes/demo.yaml's network, patches and optimizer with Noise2Self masking.
    func recipe(steps: Int, output: String) throws -> Recipe {
        let yaml = """
            method: noise2self
            data:
              train: \(Demo.quoted(joinPath(self.output, "noisy.tif")))
              axes: YX
              patch: [32, 32]
              validation: 0.1
            noise2self: {grid: 4, replacement: interpolate}
            model: {kind: unet, depth: 2, filters: 16, kernel: 3}
            training: {steps: \(steps), batch: 8, lr: 4.0e-4, seed: 0, validate_every: \(max(10, steps / 6))}
            output: \(Demo.quoted(output))
            """
        return try Recipe.parse(yaml: yaml, file: "demo recipe")
    }

    /// A YAML double-quoted string.
    static func quoted(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// Trains `recipe(steps, checkpoint)` into `checkpoint` for about `seconds` (counted from
    /// the call): a run of `probeSteps` measures the time a step takes (the median step, so
    /// the first steps' convolution planning and the probe's checkpoint do not count), then
    /// the folder is replaced by a run of as many steps as fit (the probe is kept when no more
    /// fit). `name` names the method in the log line. Returns the steps.
    static func train(for seconds: Double, probeSteps: Int = 12, checkpoint: String, name: String, log: (String) -> Void,
                      recipe: (_ steps: Int, _ checkpoint: String) throws -> Recipe) throws -> Int {
        try? FileManager.default.removeItem(atPath: checkpoint)
        let probe = Trainer(recipe: try recipe(probeSteps, checkpoint), output: checkpoint)
        probe.showProgress = false
        let clock = StepClock()
        probe.extraCallbacks.append(clock)
        let start = Date()
        _ = try probe.run()
        let perStep = clock.medianStepSeconds
        let steps = max(probeSteps, Int(max(0, seconds - Date().timeIntervalSince(start)) / perStep))
        log(String(format: "training %@ for %d steps (%.0f ms a step, about %.0f s)", name, steps, perStep * 1000,
                   Double(steps) * perStep))
        if steps == probeSteps { return steps }
        try? FileManager.default.removeItem(atPath: checkpoint)
        _ = try Trainer(recipe: try recipe(steps, checkpoint), output: checkpoint).run()
        return steps
    }

    /// Runs the demo, writing `noisy.tif`, `clean.tif`, `restored.tif`, `comparison.png` and
    /// `metrics.json` into `output`; `log` receives progress lines.
    public func run(log: (String) -> Void = { _ in }) throws -> Result {
        try PredictionRun.ensureWritableFolder(output)
        let clean = try SyntheticSpecimen(shape: [size, size], seed: seed).render()
        // The specimen is already blurred (and peaks at 1): shot and read noise only, in photo-electrons.
        let camera = try DegradationSimulator(config: SimulationConfig(photons: photons, readNoise: readNoise, bits: nil))
        var noiseRNG = RandomGenerator(seed: seed &+ 1)
        let noisy = try camera.degrade(clean, rng: &noiseRNG)
        let cleanCounts = LucidImaging.Normalization(method: .meanStd, offset: 0, scale: Float(photons)).invert(clean)
        try Image(data: noisy, axes: "YX").write(to: joinPath(output, "noisy.tif"))
        try Image(data: cleanCounts, axes: "YX").write(to: joinPath(output, "clean.tif"))
        log("specimen \(size)×\(size), \(photons) photons at the brightest structure, read noise \(readNoise) e⁻")

        // The demo's checkpoint folder is its own: a previous demo run's is replaced.
        let checkpoint = joinPath(output, "checkpoint")
        let steps = try Demo.train(for: seconds, checkpoint: checkpoint, name: "Noise2Self", log: log) { steps, folder in
            try recipe(steps: steps, output: folder)
        }

        let restorer = try ImagePredictor(checkpoint: Checkpoint.load(directory: checkpoint), weights: .best)
        let restored = try restorer.predict(Image(data: noisy, axes: "YX")).data
        try Image(data: restored, axes: "YX").write(to: joinPath(output, "restored.tif"))
        try PNG.writeComparison([noisy, restored, cleanCounts], to: joinPath(output, "comparison.png"))

        let range = Double(photons)
        let before = try Metrics.evaluate(noisy, reference: cleanCounts, dataRange: range)
        let after = try Metrics.evaluate(restored, reference: cleanCounts, dataRange: range)
        let json = "{\"noisy\": \(before.json()), \"restored\": \(after.json()), \"steps\": \(steps), "
            + "\"photons\": \(photons), \"read_noise\": \(readNoise), \"size\": \(size)}\n"
        try Checkpoint.writeAtomically(Data(json.utf8), to: joinPath(output, "metrics.json"))
        return Result(noisy: before, restored: after, steps: steps)
    }
}

/// The median duration of a run's steps (from one step's end to the next one's).
private final class StepClock: TrainingCallback {
    private var ends: [Date] = []

    func stepEnded(_ loop: TrainLoop, _ record: StepRecord) throws { ends.append(Date()) }

    var medianStepSeconds: Double {
        let steps = zip(ends.dropFirst(), ends).map { $0.timeIntervalSince($1) }.sorted()
        return steps.isEmpty ? 1 : max(1e-4, steps[steps.count / 2])
    }
}
