import Foundation
import LucidImaging

/// A validated training recipe with every default filled in.
///
/// Load one with ``Recipe/load(path:overrides:)`` or ``Recipe/parse(yaml:file:overrides:)``;
/// save the resolved form next to the weights with ``Recipe/yaml()`` / ``Recipe/json()``.
/// ```swift
/// let recipe = try Recipe.load(path: "Recipes/noise2void.yaml", overrides: ["training.steps=100"])
/// if case .noise2void(let n2v) = recipe.settings { print(n2v.pixelFraction) }
/// ```
public struct Recipe: Equatable, Sendable {
    /// Where the training pairs come from, and how patches are cut.
    public var data: DataRecipe
    /// The network.
    public var model: ModelRecipe
    /// The optimisation loop.
    public var training: TrainingRecipe
    /// The method and its own settings (the `noise2void:`, `care:` … section).
    public var settings: MethodSettings
    /// Folder for checkpoints, the resolved recipe and logs.
    public var output: String

    /// The restoration method (`method:`).
    public var method: RestorationMethod { settings.method }

    public init(data: DataRecipe, model: ModelRecipe, training: TrainingRecipe, settings: MethodSettings,
                output: String) {
        self.data = data
        self.model = model
        self.training = training
        self.settings = settings
        self.output = output
    }
}

/// The training methods a recipe can name.
public enum RestorationMethod: String, CaseIterable, Sendable {
    case noise2self, noise2void, noise2noise, care, labelfree

    /// Trains on noisy stacks alone (`data.train`).
    public var isSelfSupervised: Bool { self == .noise2self || self == .noise2void }
    /// Trains on input/target pairs (`data.input` + `data.target`).
    public var isPaired: Bool { self == .noise2noise || self == .care }
    /// Predicts one kind of image from another (signal → target pairs from `data.manifest`).
    public var isLabelFree: Bool { self == .labelfree }
}

/// Method-specific settings; the case always matches `Recipe.method`.
public enum MethodSettings: Equatable, Sendable {
    case noise2self(Noise2SelfSettings)
    case noise2void(Noise2VoidSettings)
    case noise2noise(Noise2NoiseSettings)
    case care(CARESettings)
    case labelfree(LabelFreeSettings)

    /// The method these settings belong to.
    public var method: RestorationMethod {
        switch self {
        case .noise2self: return .noise2self
        case .noise2void: return .noise2void
        case .noise2noise: return .noise2noise
        case .care: return .care
        case .labelfree: return .labelfree
        }
    }
}

// MARK: - data

/// The `data:` section.
public struct DataRecipe: Equatable, Sendable {
    /// Which files hold the training images.
    public var source: DataSource
    /// Axis order of every image (`YX`, `ZYX`, `CYX`, `CZYX`).
    public var axes: DataAxes
    /// Spatial patch extent, one entry per spatial axis of `axes` (Z, Y, X order).
    public var patch: [Int]
    /// Fraction of patches held out for validation, in 0 ..< 1.
    public var validation: Double
    /// Intensity normalization applied to inputs (and targets).
    public var normalize: NormalizationRecipe
    /// Random flips and 90° rotations of training patches.
    public var augment: Bool
    /// Normalization of the targets (`data.target_normalize`, labelfree only; nil otherwise).
    public var targetNormalize: NormalizationRecipe?
    /// Pixel size in µm (Y and X) the model works at (`data.pixel_size`, labelfree only): images
    /// are resampled linearly to it, and predictions back to their input's grid.
    public var pixelSize: Double?
    /// Pixel size in µm of images whose metadata has none (`data.source_pixel_size`).
    public var sourcePixelSize: Double?

    public init(source: DataSource, axes: DataAxes, patch: [Int], validation: Double,
                normalize: NormalizationRecipe, augment: Bool, targetNormalize: NormalizationRecipe? = nil,
                pixelSize: Double? = nil, sourcePixelSize: Double? = nil) {
        self.source = source
        self.axes = axes
        self.patch = patch
        self.validation = validation
        self.normalize = normalize
        self.augment = augment
        self.targetNormalize = targetNormalize
        self.pixelSize = pixelSize
        self.sourcePixelSize = sourcePixelSize
    }
}

/// Where training images come from. File patterns are globs relative to the working directory.
public enum DataSource: Equatable, Sendable {
    /// Self-supervised methods: the noisy stacks (`data.train`).
    case noisy(train: String)
    /// Paired methods: degraded inputs and targets matched by file name (`data.input`, `data.target`).
    case paired(input: String, target: String)
    /// CARE: targets degraded on the fly by the simulator (`data.target`, `data.simulate`).
    case simulated(target: String, simulation: Simulation)
    /// Label-free prediction: a CSV of signal/target pairs (`data.manifest`; see `LabelFreeManifest`).
    case manifest(String)
}

/// Axis order of the images.
public enum DataAxes: String, CaseIterable, Sendable {
    case yx = "YX", zyx = "ZYX", cyx = "CYX", czyx = "CZYX"

    /// Number of spatial axes (the length `data.patch` must have).
    public var spatialRank: Int { self == .yx || self == .cyx ? 2 : 3 }
    /// Whether images carry a leading channel axis.
    public var hasChannels: Bool { self == .cyx || self == .czyx }
}

/// How intensities are scaled before training (`data.normalize`); see ``normalization`` for the
/// LucidImaging configuration it describes.
public struct NormalizationRecipe: Equatable, Sendable {
    /// Normalization mode.
    public enum Mode: String, CaseIterable, Sendable {
        /// Map the `low` and `high` percentiles to 0 and 1 (CSBDeep).
        case percentile
        /// Subtract the mean, divide by the (population) standard deviation.
        case meanstd
        /// Leave intensities as they are.
        case none
    }
    public var mode: Mode
    /// Lower percentile (0 ..< 100), used by `percentile`.
    public var low: Double
    /// Upper percentile (`low` < high ≤ 100), used by `percentile`.
    public var high: Double
    /// Clip normalized values to [0, 1] (`percentile` only).
    public var clip: Bool
    /// Normalize each image by its own statistics, at training and at prediction (`per_image`,
    /// labelfree only); false fits one normalization to all training images.
    public var perImage: Bool

    public init(mode: Mode = .percentile, low: Double = 1, high: Double = 99.8, clip: Bool = false,
                perImage: Bool = false) {
        self.mode = mode
        self.low = low
        self.high = high
        self.clip = clip
        self.perImage = perImage
    }

    /// The unfitted LucidImaging normalization (fit it to each image with `fitted(to:)`).
    public var normalization: Normalization {
        var n: Normalization
        switch mode {
        case .percentile: n = .percentile(low: low, high: high, clip: clip)
        case .meanstd: n = .meanStd
        case .none: n = .none
        }
        n.perImage = perImage && mode != .none
        return n
    }
}

/// Degradation simulator settings (`data.simulate`): blur by a PSF, then Poisson and read noise.
public struct Simulation: Equatable, Sendable {
    /// The point spread function.
    public var psf: PSFSpec
    /// Expected signal photons at the brightest pixel of the blurred target.
    public var photons: Double
    /// Gaussian read noise standard deviation, in photo-electrons.
    public var readNoise: Double
    /// Constant background added before noise, in photons.
    public var background: Double

    public init(psf: PSFSpec, photons: Double = 20, readNoise: Double = 2, background: Double = 0) {
        self.psf = psf
        self.photons = photons
        self.readNoise = readNoise
        self.background = background
    }
}

/// A PSF for the simulator: a named optical model with its parameters, or a measured PSF file.
public enum PSFSpec: Equatable, Sendable {
    /// A model (`psf: {model: born-wolf, na: 1.2, wavelength: 0.52}`); parameters are positive numbers
    /// named by ``PSFSpec/parameterNames``, LucidOptics' `PSFConfig` fields (lengths in µm).
    case model(PSFModel, parameters: [String: Double])
    /// A measured PSF stack (`psf: measured_psf.tif` or `psf: {file: measured_psf.tif}`).
    case file(String)
}

/// Optical PSF models the simulator knows.
public enum PSFModel: String, CaseIterable, Sendable {
    case gaussian, airy
    case bornWolf = "born-wolf"
    case gibsonLanni = "gibson-lanni"
    case confocal
}

// MARK: - model

/// The `model:` section (a U-Net).
public struct ModelRecipe: Equatable, Sendable {
    /// Network architectures.
    public enum Kind: String, CaseIterable, Sendable {
        /// The U-Net the other keys describe.
        case unet
        /// pytorch_fnet's U-Net: the other keys default to depth 4, 32 filters, BatchNorm, stride-2
        /// convolutions down, transposed convolutions up; the output convolution is 3 wide.
        case fnet
    }
    /// Normalization layers inside the network.
    public enum Norm: String, CaseIterable, Sendable { case none, batch, group, instance }
    /// Downsampling between levels: 2× max pooling, a learned stride-2 convolution, or N2V2's
    /// max-pool followed by a blur-pool (`maxblur`).
    public enum Pooling: String, CaseIterable, Sendable { case max, conv, maxblur }
    /// Upsampling between levels.
    public enum Upsampling: String, CaseIterable, Sendable { case nearest, linear, transpose }

    public var kind: Kind
    /// Number of down/up-sampling levels (1 ... 6).
    public var depth: Int
    /// Channels of the first level; doubled at each level.
    public var filters: Int
    /// Convolution kernel extent (odd).
    public var kernel: Int
    /// Adds the input to the output (learns a correction); needs equal input/output channels.
    public var residual: Bool
    public var norm: Norm
    public var pooling: Pooling
    public var upsampling: Upsampling
    /// Convolutions per level (1 ... 4).
    public var convsPerLevel: Int
    /// Predicts a per-pixel Laplace scale next to the mean (probabilistic CARE).
    public var probabilistic: Bool
    /// Dropout probability after every level convolution's activation (training only), in 0 ..< 1.
    public var dropout: Double

    public init(kind: Kind = .unet, depth: Int = 2, filters: Int = 32, kernel: Int = 3, residual: Bool = false,
                norm: Norm = .none, pooling: Pooling = .max, upsampling: Upsampling = .nearest,
                convsPerLevel: Int = 2, probabilistic: Bool = false, dropout: Double = 0) {
        self.kind = kind
        self.depth = depth
        self.filters = filters
        self.kernel = kernel
        self.residual = residual
        self.norm = norm
        self.pooling = pooling
        self.upsampling = upsampling
        self.convsPerLevel = convsPerLevel
        self.probabilistic = probabilistic
        self.dropout = dropout
    }
}

// MARK: - training

/// The `training:` section.
public struct TrainingRecipe: Equatable, Sendable {
    /// Optimizers.
    public enum Optimizer: String, CaseIterable, Sendable { case adam, adamw, sgd }

    /// Total optimizer steps.
    public var steps: Int
    /// Patches per step.
    public var batch: Int
    /// Initial learning rate.
    public var lr: Double
    /// Seed for patch sampling, masking and initialization.
    public var seed: Int
    public var optimizer: Optimizer
    /// L2 weight decay (decoupled for `adamw`).
    public var weightDecay: Double
    /// Momentum for `sgd`.
    public var momentum: Double
    /// Learning-rate schedule.
    public var schedule: Schedule
    /// Validate (and checkpoint the best model) every this many steps.
    public var validateEvery: Int
    /// Stop after this many validations without improvement; 0 never stops early.
    public var patience: Int
    /// Smallest validation-loss decrease that counts as improvement.
    public var minDelta: Double
    /// Clip the global gradient norm to this value; 0 disables clipping.
    public var clipNorm: Double

    public init(steps: Int = 4000, batch: Int = 16, lr: Double = 4e-4, seed: Int = 0, optimizer: Optimizer = .adam,
                weightDecay: Double = 0, momentum: Double = 0.9, schedule: Schedule = Schedule(),
                validateEvery: Int = 200, patience: Int = 0, minDelta: Double = 0, clipNorm: Double = 0) {
        self.steps = steps
        self.batch = batch
        self.lr = lr
        self.seed = seed
        self.optimizer = optimizer
        self.weightDecay = weightDecay
        self.momentum = momentum
        self.schedule = schedule
        self.validateEvery = validateEvery
        self.patience = patience
        self.minDelta = minDelta
        self.clipNorm = clipNorm
    }
}

/// A learning-rate schedule (`training.schedule`: a name, or a map with `kind` and its knobs).
public struct Schedule: Equatable, Sendable {
    /// Schedule kinds.
    public enum Kind: String, CaseIterable, Sendable {
        /// Constant learning rate.
        case none
        /// Cosine decay from `lr` to 0 over the training steps.
        case cosine
        /// Multiply by `factor` every `every` steps.
        case step
        /// Multiply by `factor` after `patience` validations without improvement (CSBDeep's default).
        case plateau
    }
    public var kind: Kind
    /// Decay factor for `step` and `plateau` (0 < factor < 1).
    public var factor: Double
    /// Step interval for `step`.
    public var every: Int
    /// Validations without improvement before `plateau` lowers the rate.
    public var patience: Int
    /// Linear warm-up steps before the schedule starts.
    public var warmup: Int

    public init(kind: Kind = .plateau, factor: Double = 0.5, every: Int = 1000, patience: Int = 10, warmup: Int = 0) {
        self.kind = kind
        self.factor = factor
        self.every = every
        self.patience = patience
        self.warmup = warmup
    }
}

// MARK: - method sections

/// `noise2self:` — J-invariant training by grid masking (Batson & Royer 2019).
public struct Noise2SelfSettings: Equatable, Sendable {
    /// What masked pixels are replaced with.
    public enum Replacement: String, CaseIterable, Sendable {
        /// The mean of the 4 (6 in 3D) direct neighbours.
        case interpolate
        /// Zero.
        case zero
    }
    /// Grid period: one pixel in `grid`^d is masked per pass.
    public var grid: Int
    public var replacement: Replacement

    public init(grid: Int = 4, replacement: Replacement = .interpolate) {
        self.grid = grid
        self.replacement = replacement
    }
}

/// `noise2void:` — blind-spot training (Krull et al. 2019; N2V2, Höck et al. 2022).
public struct Noise2VoidSettings: Equatable, Sendable {
    /// How a masked pixel's value is replaced.
    public enum Replacement: String, CaseIterable, Sendable {
        /// A random pixel from the neighbourhood, not the centre (N2V).
        case uniform
        /// The neighbourhood median without the centre (N2V2).
        case median
    }
    /// Fraction of pixels masked per patch (N2V: 0.198 %).
    public var pixelFraction: Double
    /// Neighbourhood extent for replacement values (odd).
    public var neighborhood: Int
    /// N2V2: blur-pool downsampling, median replacement, no top skip connection.
    public var n2v2: Bool
    public var replacement: Replacement

    public init(pixelFraction: Double = 0.002, neighborhood: Int = 5, n2v2: Bool = false,
                replacement: Replacement = .uniform) {
        self.pixelFraction = pixelFraction
        self.neighborhood = neighborhood
        self.n2v2 = n2v2
        self.replacement = replacement
    }
}

/// Pixel-wise training losses.
public enum PixelLoss: String, CaseIterable, Sendable {
    case mae, mse
    /// Laplace negative log-likelihood (probabilistic CARE).
    case laplace
}

/// `noise2noise:` — pairs of independent noisy acquisitions.
public struct Noise2NoiseSettings: Equatable, Sendable {
    /// `mse` or `mae`.
    public var loss: PixelLoss
    public init(loss: PixelLoss = .mse) { self.loss = loss }
}

/// `care:` — supervised content-aware restoration (Weigert et al. 2018).
public struct CARESettings: Equatable, Sendable {
    public var loss: PixelLoss
    /// Predict a Laplace distribution per pixel (needs `loss: laplace`).
    public var probabilistic: Bool
    public init(loss: PixelLoss = .mae, probabilistic: Bool = false) {
        self.loss = loss
        self.probabilistic = probabilistic
    }
}

/// `labelfree:` — predicting a fluorescence channel from transmitted light (Ounkomol et al. 2018).
public struct LabelFreeSettings: Equatable, Sendable {
    /// `mse` or `mae`.
    public var loss: PixelLoss
    public init(loss: PixelLoss = .mse) { self.loss = loss }
}
