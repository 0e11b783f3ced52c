import Foundation
import LucidAutograd
import LucidCore
import LucidImaging
import LucidNN

/// `method: diffusion` — denoising diffusion models (Ho et al. 2020; Song et al. 2021) that
/// give the distribution of plausible restorations, not one answer: prediction draws samples
/// per tile and writes their mean and a per-pixel standard deviation.
///
/// - `conditional`: restoration from pairs (as CARE reads them, or simulated): the network
///   sees `x_t` and the degraded input; samples come from noise through a sampler, in
///   antithetic pairs (starting noises `z` and `−z`), whose mean is a much better estimate of the
///   posterior mean than independent samples give (+0.7 dB for 8 DDIM samples on the demo).
/// - `unconditional`: a prior of clean images (`data.train`); prediction treats the input as
///   the clean image plus its estimated Poisson–Gaussian noise, puts it at the matching noise
///   level and runs the sampler from there (posterior samples under a Gaussian approximation).
/// - `selfsupervised`: no clean data at all. A score model of the noisy stacks themselves, in
///   the form Tweedie's formula gives it: the network `f` is trained on recorrupted pairs
///   (Pang et al. 2021) `ŷ = y + α·√v(y)·z`, `ỹ = y − √v(y)·z/α` (z ~ N(0, 1), `v` the
///   Poisson–Gaussian variance measured on the training images), whose noises are uncorrelated,
///   so minimizing `‖f(ŷ) − ỹ‖²` learns `f(ŷ) = E[x | ŷ] = ŷ + (1 + α²)·v·∇ log p(ŷ)` — the
///   score of the recorrupted data scaled by its noise, i.e. Noise2Score's Tweedie denoiser
///   (Kim & Ye 2021), learned without dividing a small-noise score estimate by σ². Prediction
///   averages `f` over `samples` recorruptions of the input (antithetic pairs); the std map is
///   the second-order Tweedie spread `√((1 + α²)·v·∂f/∂ŷ)` (Hutchinson probes of the
///   Jacobian's diagonal), the posterior spread given the recorrupted image.
public struct Diffusion: RestorationMethod, Equatable {
    public static let name = "diffusion"
    public static let summary = "diffusion models (DDPM/DDIM, score SDE): conditional restoration with per-pixel uncertainty, priors, or self-supervised score denoising"
    public static let data = DataNeeds.pairs(simulated: true)
    public static let normalizesTargets = true

    /// What the model learns.
    public enum Mode: String, CaseIterable, Sendable {
        case conditional, unconditional, selfsupervised
    }

    public var mode = Mode.conditional
    public var schedule = NoiseSchedule.Kind.cosine
    public var prediction = DiffusionPrediction.v
    public var timesteps = 1000
    /// VE noise levels (`schedule: ve`), in normalized intensity units.
    public var sigmaMin = 0.01
    public var sigmaMax = 20.0
    /// Decay of the weights' moving average that sampling uses; 0: sample with the weights.
    public var ema = 0.999
    /// Selfsupervised: strength α of the recorrupting noise, in units of the measured noise.
    public var recorruption = 1.0
    /// Self-attention at the lowest resolution.
    public var attention = false
    /// Residual blocks per level.
    public var blocks = 1
    /// Prediction defaults (`lucid predict` overrides them).
    public var sampler = DiffusionSampler.Kind.ddim
    public var steps = 50
    public var samples = 8
    /// Selfsupervised: the Poisson–Gaussian noise of the training images (normalized), measured
    /// when training starts (not a recipe key).
    public var trainingNoise: PoissonGaussianNoise?

    public init() {}

    /// The settings of `mode` with that mode's defaults: the self-supervised model predicts
    /// the posterior mean (x₀).
    public init(mode: Mode) {
        self.mode = mode
        if mode == .selfsupervised { prediction = .x0 }
    }

    public static let keys: [RecipeKey<Diffusion>] = [
        .choice("mode", \.mode, "conditional: restoration from input/target pairs; unconditional: a prior of clean images (data.train); selfsupervised: a Tweedie score model of the noisy stacks themselves"),
        .choice("schedule", \.schedule, "noise levels: DDPM's linear or cosine β, or the VP / VE score SDE (not used by selfsupervised)"),
        .choice("prediction", \.prediction, default: "v (selfsupervised: x0)",
                "what the network predicts: the noise ε, the data x₀, or the velocity v (selfsupervised: x0, Tweedie's posterior mean)"),
        .int("timesteps", \.timesteps, in: 2...10_000, "noise levels T of training (not used by selfsupervised)"),
        .double("sigma_min", \.sigmaMin, allowed: "a number > 0", "schedule ve: the smallest noise level (normalized intensities)") { $0 > 0 },
        .double("sigma_max", \.sigmaMax, allowed: "a number > sigma_min", "schedule ve: the largest noise level") { $0 > 0 },
        .double("recorruption", \.recorruption, allowed: "a number > 0 and ≤ 4",
                "selfsupervised: strength α of the recorrupting noise, in units of the noise measured on the images") { $0 > 0 && $0 <= 4 },
        .double("ema", \.ema, allowed: "a number ≥ 0 and < 1", "decay of the weights' moving average that prediction samples with (0: none; not used by selfsupervised)") {
            $0 >= 0 && $0 < 1
        },
        .bool("attention", \.attention, "self-attention at the lowest resolution of the diffusion U-Net (selfsupervised trains the model: U-Net)"),
        .int("blocks", \.blocks, in: 1...4, "residual blocks per level of the diffusion U-Net (GroupNorm, SiLU, time embedding)"),
        .choice("sampler", \.sampler, "prediction: ddpm (ancestral), ddim (deterministic), pc (predictor–corrector), langevin (annealed); not used by selfsupervised"),
        .int("steps", \.steps, in: 1...10_000, "prediction: noise levels the sampler visits (lucid predict --steps)"),
        .int("samples", \.samples, in: 1...1000, "prediction: samples per tile for the mean and std (lucid predict --samples; selfsupervised: recorruptions)"),
    ]

    /// The mode first: it sets the other keys' defaults.
    public static func read(_ s: MapReader) throws -> Diffusion {
        let mode: Mode = try s.choice("mode", default: .conditional)!
        let d = try SectionReader(keys: keys).read(Diffusion(mode: mode), s, RecipeParseContext(method: Diffusion(mode: mode)))
        if d.schedule == .ve && d.sigmaMax <= d.sigmaMin {
            func shown(_ key: String, _ v: Double) -> String { s.value(key).map(RecipeContext.render) ?? RecipeValue.number(v) }
            throw s.error("sigma_max", "\(shown("sigma_max", d.sigmaMax)) is not allowed (a number > sigma_min, \(shown("sigma_min", d.sigmaMin)))")
        }
        if mode == .selfsupervised && d.prediction != .x0 {
            throw s.error("prediction", "\(d.prediction.rawValue) is not allowed (mode selfsupervised predicts x0, Tweedie's posterior mean)")
        }
        return d
    }

    public var dataNeeds: DataNeeds { mode == .conditional ? Self.data : .noisy }

    /// Selfsupervised: measures the noise of the training images.
    public func fitted(to data: TrainingData) throws -> Diffusion {
        guard mode == .selfsupervised else { return self }
        var d = self
        d.trainingNoise = try PoissonGaussianNoise.estimate(data.sources.map { $0[0] })
        return d
    }

    public static var defaults: MethodDefaults {
        var d = MethodDefaults()
        d.schedule = .none
        return d
    }

    /// The `model:` keys a diffusion U-Net has (depth, filters, kernel); the others must keep their defaults.
    public func check(_ recipe: Recipe, _ top: MapReader) throws {
        if mode == .selfsupervised { return }
        let m = recipe.model, standard = ModelRecipe()
        let unused: [(String, Bool)] = [
            ("kind", m.kind != standard.kind), ("residual", m.unet.residual != standard.unet.residual),
            ("norm", m.unet.norm != standard.unet.norm), ("pooling", m.unet.pooling != standard.unet.pooling),
            ("upsampling", m.unet.upsampling != standard.unet.upsampling),
            ("convs_per_level", m.unet.convsPerLevel != standard.unet.convsPerLevel),
            ("dropout", m.unet.dropout != standard.unet.dropout),
        ]
        if let (key, _) = unused.first(where: { $0.1 }) {
            let section = try top.section("model", allowed: nil, what: "")
            throw section.error(key, "not used by method diffusion (its network is a diffusion U-Net: model.depth, model.filters and model.kernel apply; diffusion.blocks and diffusion.attention shape it)")
        }
    }

    /// The diffusion U-Net: it generates the target channels, conditioned (mode conditional) on the input's.
    public func modelConfig(_ recipe: Recipe, spatialRank: Int, inChannels: Int, outChannels: Int) throws -> any ModelConfig {
        if mode == .selfsupervised {
            return try recipe.model.unetConfig(spatialRank: spatialRank, inChannels: inChannels, outChannels: outChannels)
        }
        var c = DiffusionUNetConfig()
        c.dims = spatialRank
        c.channels = outChannels
        c.conditionChannels = mode == .conditional ? inChannels : 0
        c.depth = recipe.model.unet.depth
        c.firstFilters = recipe.model.unet.firstFilters
        c.kernel = recipe.model.unet.kernel
        c.blocksPerLevel = blocks
        c.attention = attention
        c.ema = ema > 0
        do { try c.validate() } catch {
            throw TrainingDataError(path: "model", reason: "\(error)")
        }
        return c
    }

    /// The noise schedule and prediction target.
    public func process() throws -> DiffusionProcess {
        DiffusionProcess(schedule: try NoiseSchedule(kind: schedule, timesteps: timesteps, sigmaMin: sigmaMin, sigmaMax: sigmaMax),
                         prediction: prediction)
    }

    static func network(_ model: any ImageModel) throws -> DiffusionUNet {
        guard let net = model as? DiffusionUNet else {
            throw TensorError.invalidArgument(op: "diffusion", detail: "method diffusion needs a diffusion U-Net, got a \(type(of: model.architecture).kind)")
        }
        return net
    }

    /// The denoising loss: conditional on the input, the target is generated; otherwise the
    /// training images themselves (clean ones, or for the score model the noisy ones).
    public func loss(_ model: any ImageModel, input: Tensor, target: Tensor?, step: Int,
                     rng: inout RandomGenerator) throws -> Variable {
        if mode == .selfsupervised {
            guard let noise = trainingNoise else {
                throw TensorError.invalidArgument(op: "diffusion loss", detail: "mode selfsupervised measures the noise of its training images first (fitted(to:))")
            }
            let pair = try Recorruption(noise: noise, strength: recorruption).pair(input, rng: &rng)
            return try mseLoss(model(Variable(pair.input)), Variable(pair.target))
        }
        let net = try Self.network(model)
        if mode == .conditional {
            guard let target else {
                throw TensorError.invalidArgument(op: "diffusion loss", detail: "mode conditional needs targets")
            }
            return try process().loss(net, x0: target, condition: input, rng: &rng)
        }
        return try process().loss(net, x0: input, condition: nil, rng: &rng)
    }

    /// Updates the moving average after every optimizer step (before the checkpoint saves it).
    public func trainingCallbacks(for model: any ImageModel) throws -> [any TrainingCallback] {
        guard let net = model as? DiffusionUNet, net.ema != nil else { return [] }
        return [MovingAverageUpdate(net: net, decay: ema)]
    }

    /// Sampling with the moving-average weights (conditional, unconditional), or Tweedie's
    /// posterior mean over recorruptions (selfsupervised) per tile.
    public func tilePrediction(_ model: any ImageModel, sampling: SamplingOptions) throws -> TilePrediction {
        let count = sampling.samples ?? samples
        if mode == .selfsupervised {
            return RecorruptedDenoising(network: TiledPredictor.model(model), channels: model.architecture.outputChannels,
                                        strength: recorruption, draws: count, seed: sampling.seed, noise: nil).tiles()
        }
        let net = try Self.network(model).averaged()
        net.setTraining(false)
        let sampler = DiffusionSampler(kind: sampling.sampler ?? self.sampler, schedule: try process().schedule,
                                       steps: sampling.steps ?? steps)
        return PosteriorSampling(net: net, process: try process(), sampler: sampler, samples: count, seed: sampling.seed,
                                 conditional: mode == .conditional, keepSamples: sampling.keepSamples).tiles()
    }
}

/// Moves a diffusion U-Net's moving average after each optimizer step.
final class MovingAverageUpdate: TrainingCallback {
    let net: DiffusionUNet
    let decay: Double

    init(net: DiffusionUNet, decay: Double) {
        self.net = net
        self.decay = decay
    }

    func stepEnded(_ loop: TrainLoop, _ record: StepRecord) throws { try net.updateAverage(decay: decay) }
}
