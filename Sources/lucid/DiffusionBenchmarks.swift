import Foundation
import LucidAutograd
import LucidCore
import LucidNN

/// Diffusion cases of `lucid bench`, on the net of `scripts/torch_diffusion.py` (same layers,
/// same parameter names): a conditional 2-D diffusion U-Net, depth 2, 32 filters, one residual
/// block a level, self-attention at the lowest resolution.
enum DiffusionBenchmarks {
    static var cases: [BenchCase] {
        [BenchCase(name: "diffusion_train", run: train), BenchCase(name: "ddim_sample", run: sample)]
    }

    /// The benchmark net: `x_t` and a one-channel condition in, one channel out.
    static var config: DiffusionUNetConfig {
        var c = DiffusionUNetConfig()
        c.conditionChannels = 1
        c.attention = true
        c.ema = false
        return c
    }

    static func describe(_ net: DiffusionUNet) -> [String: Any] {
        let c = net.config
        return ["params": net.parameterCount, "depth": c.depth, "first_filters": c.firstFilters, "blocks": c.blocksPerLevel,
                "attention": c.attention, "condition_channels": c.conditionChannels]
    }

    /// One optimizer step per repeat: v-prediction loss at random steps of a cosine schedule
    /// (1000 levels) on 16 patches of 64×64 (uniform-noise targets and conditions), backward, Adam.
    static func train(_ ctx: BenchContext) throws {
        var rng = RandomGenerator(seed: 0)
        let net = try DiffusionUNet(config, rng: &rng)
        let opt = try Adam(parameters: net.namedParameters, learningRate: 2e-4)
        let process = DiffusionProcess(schedule: try NoiseSchedule(kind: .cosine, timesteps: 1000), prediction: .v)
        let (batch, patch) = (16, [64, 64])
        let x0 = Tensor.randomUniform([batch, 1] + patch, rng: &rng), condition = Tensor.randomUniform([batch, 1] + patch, rng: &rng)
        var conf = describe(net)
        conf.merge(["batch": batch, "patch": patch, "optimizer": "adam", "prediction": "v", "schedule": "cosine"]) { a, _ in a }
        var stepRNG = RandomGenerator(seed: 1)
        try ctx.measure("diffusion_train", config: conf, rates: ["patches_per_s": { Double(batch) / $0 }]) {
            opt.zeroGrad()
            try process.loss(net, x0: x0, condition: condition, rng: &stepRNG).backward()
            try opt.step()
        }
    }

    /// One DDIM sample of a 256×256 image in 20 steps (conditional, without gradients).
    static func sample(_ ctx: BenchContext) throws {
        var rng = RandomGenerator(seed: 0)
        let net = try DiffusionUNet(config, rng: &rng)
        net.setTraining(false)
        let process = DiffusionProcess(schedule: try NoiseSchedule(kind: .cosine, timesteps: 1000), prediction: .v)
        let shape = [1, 1, 256, 256]
        let condition = Tensor.randomUniform(shape, rng: &rng)
        let sampler = DiffusionSampler(kind: .ddim, schedule: process.schedule, steps: 20)
        var conf = describe(net)
        conf.merge(["shape": shape, "steps": 20, "evaluations": sampler.evaluations(), "sampler": "ddim"]) { a, _ in a }
        try ctx.measure("ddim_sample", config: conf, rates: ["mpix_per_s": { 256 * 256 / $0 / 1e6 }],
                        repeats: max(5, ctx.repeats / 2)) {
            var r = RandomGenerator(seed: 2)
            _ = try sampler.sample(shape: shape, rng: &r) { xt, t in try process.denoise(net, xt, step: t, condition: condition) }
        }
    }
}
