import Foundation
import LucidAutograd
import LucidCore
import LucidImaging
import LucidNN

/// A restoration method: its recipe section, the data it trains on, its model, its loss, its
/// validation metrics and how its network's output becomes an image.
///
/// A method is one file: a struct holding its settings (the recipe section of its `name`)
/// that conforms to this protocol, registered in `Methods.all`. Everything else (data
/// loading, the training loop, checkpoints, tiled prediction) is shared.
public protocol RestorationMethod: Sendable {
    /// The `method:` value and the name of the method's own recipe section.
    static var name: String { get }
    /// One line for the docs and the key table.
    static var summary: String { get }
    /// The keys of the method's section.
    static var keys: [RecipeKey<Self>] { get }
    /// The names of `keys` (the section's allowed keys).
    static var keyNames: [String] { get }
    /// The key-table rows of the method's section.
    static var keyRows: [KeyRow] { get }
    /// The settings with every default.
    init()
    /// Reads the method's section (its keys in order, from the defaults); override for checks
    /// across the section's keys.
    static func read(_ section: MapReader) throws -> Self

    /// The images the method trains on.
    static var data: DataNeeds { get }
    /// The images these settings train on (`data` unless a setting changes it: a diffusion
    /// model's mode).
    var dataNeeds: DataNeeds { get }
    /// The defaults the method gives the shared `data:` and `training:` sections.
    static var defaults: MethodDefaults { get }
    /// Sets the method's defaults of the `model:` section before its keys are read (N2V2's
    /// pooling, CARE's probabilistic head).
    func modelDefaults(_ model: inout ModelRecipe)
    /// Checks across sections once the whole recipe is read; errors point at keys through `top`.
    func check(_ recipe: Recipe, _ top: MapReader) throws

    /// The network for data of `spatialRank` axes and the given channels.
    func modelConfig(_ recipe: Recipe, spatialRank: Int, inChannels: Int, outChannels: Int) throws -> any ModelConfig
    /// Whether the method may train a network with a Laplace head (`model.probabilistic`).
    static var trainsProbabilisticModels: Bool { get }
    /// Whether training targets get a normalization of their own (fitted on the targets, and
    /// used to map predictions back), rather than the inputs'.
    static var normalizesTargets: Bool { get }
    /// The training loss of `model` on one batch at optimizer step `step` (validation passes
    /// the batch's index); `rng` draws whatever the method randomizes (blind spots).
    func loss(_ model: any ImageModel, input: Tensor, target: Tensor?, step: Int,
              rng: inout RandomGenerator) throws -> Variable
    /// The training loss on rows `firstSample…` of step `step`'s batch (a data-parallel
    /// process's share; 0: the whole batch). A method that randomizes each patch (blind
    /// spots) draws it for the patch's index in the whole batch, so that its randomness does not
    /// depend on how the batch is split; the default ignores `firstSample`.
    func loss(_ model: any ImageModel, input: Tensor, target: Tensor?, step: Int, firstSample: Int,
              rng: inout RandomGenerator) throws -> Variable
    /// The loss on validation batch `index` and, where validation metrics need it, the output.
    func validationStep(_ model: any ImageModel, input: Tensor, target: Tensor?, index: Int,
                        rng: inout RandomGenerator) throws -> (loss: Variable, output: Tensor?)
    /// Metrics measured on the validation patches besides the loss (columns of `metrics.csv`).
    func validationMetrics(outChannels: Int) -> [any ValidationMetric]
    /// How the network's output becomes the prediction (e.g. a Laplace head's log-scales
    /// exponentiated), and which of its channels are intensities.
    func predictionHead(_ config: any ModelConfig) -> PredictionHead
    /// The settings completed with what they measure on the training data before the loop
    /// starts (a noise model); the default returns them as they are.
    func fitted(to data: TrainingData) throws -> Self
    /// Callbacks the method adds to its training runs, before the standard ones (a moving
    /// average of the weights).
    func trainingCallbacks(for model: any ImageModel) throws -> [any TrainingCallback]
    /// What prediction runs on each batch of tiles: by default the network once, through
    /// `predictionHead`; a generative method draws samples (`sampling`) and returns their mean,
    /// the samples and their spread.
    func tilePrediction(_ net: any ImageModel, sampling: SamplingOptions) throws -> TilePrediction
}

/// The images a method trains on; it decides which `data:` keys a recipe needs and allows.
public enum DataNeeds: Sendable, Equatable {
    /// Noisy stacks alone (`data.train`).
    case noisy
    /// Degraded inputs and targets matched by file name (`data.input`, `data.target`);
    /// `simulated` methods may instead degrade the targets with `data.simulate`.
    case pairs(simulated: Bool)
    /// Signal → target pairs from a CSV manifest (`data.manifest`) or from `data.input` and
    /// `data.target`; only these methods read `target_normalize`, `pixel_size` and
    /// `source_pixel_size`.
    case signalToTarget
}

/// Defaults a method gives the shared sections.
public struct MethodDefaults: Sendable {
    /// `data.patch` of 2-D data.
    public var patch2D = [64, 64]
    /// `data.patch` of 3-D data.
    public var patch3D = [16, 64, 64]
    /// `training.steps`.
    public var steps = 4000
    /// `training.batch`.
    public var batch = 16
    /// `data.normalize`.
    public var normalize = Normalization.percentile()
    /// `training.lr`.
    public var learningRate = 4e-4
    /// `training.schedule`.
    public var schedule = LearningRateSchedule.Kind.plateau

    public init() {}
}

/// What prediction does with a network's output before mapping it back to intensities.
public struct PredictionHead {
    /// Applied to every batch of network output.
    public var transform: ((Tensor) throws -> Tensor)?
    /// The leading output channels that are intensities (mapped back with offset and scale);
    /// the rest are spreads (scaled only).
    public var intensityChannels: Int

    public init(transform: ((Tensor) throws -> Tensor)? = nil, intensityChannels: Int) {
        self.transform = transform
        self.intensityChannels = intensityChannels
    }
}

extension RestorationMethod {
    public static func read(_ section: MapReader) throws -> Self {
        try SectionReader(keys: keys).read(Self(), section, RecipeParseContext(method: Self()))
    }

    public static var defaults: MethodDefaults { MethodDefaults() }
    public static var normalizesTargets: Bool { false }
    public static var trainsProbabilisticModels: Bool { false }
    public func modelDefaults(_ model: inout ModelRecipe) {}
    public func check(_ recipe: Recipe, _ top: MapReader) throws {}
    public func validationMetrics(outChannels: Int) -> [any ValidationMetric] { [] }
    public var dataNeeds: DataNeeds { Self.data }
    public func fitted(to data: TrainingData) throws -> Self { self }
    public func trainingCallbacks(for model: any ImageModel) throws -> [any TrainingCallback] { [] }

    /// The network once, through `predictionHead`; sampling options do not apply.
    public func tilePrediction(_ net: any ImageModel, sampling: SamplingOptions) throws -> TilePrediction {
        TilePrediction(net: net, head: predictionHead(net.architecture))
    }

    public func loss(_ model: any ImageModel, input: Tensor, target: Tensor?, step: Int, firstSample: Int,
                     rng: inout RandomGenerator) throws -> Variable {
        try loss(model, input: input, target: target, step: step, rng: &rng)
    }

    /// The training loss with the batch's index as the step (Noise2Self's grid phase cycles
    /// with it); no output.
    public func validationStep(_ model: any ImageModel, input: Tensor, target: Tensor?, index: Int,
                               rng: inout RandomGenerator) throws -> (loss: Variable, output: Tensor?) {
        (try loss(model, input: input, target: target, step: index, rng: &rng), nil)
    }

    /// The recipe's U-Net (`model:` section).
    public func modelConfig(_ recipe: Recipe, spatialRank: Int, inChannels: Int, outChannels: Int) throws -> any ModelConfig {
        try recipe.model.unetConfig(spatialRank: spatialRank, inChannels: inChannels, outChannels: outChannels)
    }

    /// Every output channel is an intensity.
    public func predictionHead(_ config: any ModelConfig) -> PredictionHead {
        PredictionHead(intensityChannels: config.outputChannels)
    }

    /// The method's section as an ordered value tree.
    var sectionValue: RecipeValue { SectionReader(keys: Self.keys).value(self) }

    public static var keyNames: [String] { keys.map(\.name) }
    public static var keyRows: [KeyRow] { keys.flatMap { $0.rows(prefix: name + ".", defaults: Self()) } }
}

/// The registered methods, in the order recipes and messages list them.
public enum Methods {
    public static let all: [any RestorationMethod.Type] = [
        Noise2Self.self, Noise2Void.self, Noise2Noise.self, CARE.self, LabelFree.self, ZeroShot.self, Diffusion.self,
    ]

    /// The `method:` names.
    public static var names: [String] { all.map { $0.name } }

    /// The method called `name`.
    public static func named(_ name: String) -> (any RestorationMethod.Type)? {
        all.first { $0.name == name }
    }
}
