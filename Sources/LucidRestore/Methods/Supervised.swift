import Foundation
import LucidAutograd
import LucidCore
import LucidNN

/// Pixel-wise losses of the supervised methods.
public enum PixelLoss: String, CaseIterable, Sendable {
    case mae, mse
    /// Laplace negative log-likelihood (probabilistic CARE).
    case laplace

    /// The loss of `output` against `target`; `laplace` reads `output` as means, then log-scales.
    func loss(_ output: Variable, _ target: Tensor) throws -> Variable {
        switch self {
        case .mse: return try mseLoss(output, Variable(target))
        case .mae: return try maeLoss(output, Variable(target))
        case .laplace:
            let (mean, logScale) = try splitMeanAndLogScale(output, channels: target.shape[1])
            return try laplaceNLL(mean: mean, logScale: logScale, target: Variable(target))
        }
    }
}

/// The loss of a supervised method: `loss` of the network's output on the input against the target.
func supervisedLoss(_ loss: PixelLoss, _ model: any ImageModel, input: Tensor, target: Tensor?) throws -> Variable {
    guard let target else {
        throw TensorError.invalidArgument(op: "supervised loss", detail: "a supervised method needs targets")
    }
    return try loss.loss(try model(Variable(input)), target)
}

/// `method: noise2noise` — pairs of independent noisy acquisitions of the same sample
/// (Lehtinen et al. 2018): the network learns their expected value.
public struct Noise2Noise: RestorationMethod, Equatable {
    public static let name = "noise2noise"
    public static let summary = "denoising from pairs of independent noisy acquisitions"
    public static let data = DataNeeds.pairs(simulated: false)
    /// The second acquisition may be of another brightness: predictions come back in its units.
    public static let normalizesTargets = true

    public var loss = PixelLoss.mse

    public init() {}

    public init(loss: PixelLoss) { self.loss = loss }

    public static let keys: [RecipeKey<Noise2Noise>] = [
        .choice("loss", \.loss, among: [.mse, .mae], "pixel loss"),
    ]

    public func loss(_ model: any ImageModel, input: Tensor, target: Tensor?, step: Int,
                     rng: inout RandomGenerator) throws -> Variable {
        try supervisedLoss(loss, model, input: input, target: target)
    }
}

/// `method: care` — supervised content-aware restoration (Weigert et al. 2018) from degraded
/// inputs and clean targets, on disk or simulated; optionally probabilistic (a Laplace head).
public struct CARE: RestorationMethod, Equatable {
    public static let name = "care"
    public static let summary = "supervised restoration (denoising, deconvolution) from input/target pairs, on disk or simulated"
    public static let data = DataNeeds.pairs(simulated: true)
    public static let normalizesTargets = true
    public static let trainsProbabilisticModels = true

    public var loss = PixelLoss.mae
    /// Predict a Laplace distribution per pixel (trains with `loss: laplace`).
    public var probabilistic = false

    public init() {}

    public init(loss: PixelLoss, probabilistic: Bool) {
        self.loss = loss
        self.probabilistic = probabilistic
    }

    public static let keys: [RecipeKey<CARE>] = [
        .choice("loss", \.loss, default: "mae (probabilistic: laplace)", "pixel loss; laplace is the probabilistic model's"),
        .bool("probabilistic", \.probabilistic, default: "false (loss laplace: true)",
              "predict a Laplace distribution per pixel: a mean and a scale"),
    ]

    /// `loss` and `probabilistic` imply each other: `laplace` ⇔ probabilistic.
    public static func read(_ s: MapReader) throws -> CARE {
        let givenProbabilistic = s.has("probabilistic") ? try s.bool("probabilistic", default: false) : nil
        let givenLoss: PixelLoss? = try s.choice("loss", default: nil)
        if givenProbabilistic == true, let loss = givenLoss, loss != .laplace {
            throw s.error("loss", "\(loss.rawValue) is not allowed (a probabilistic model trains with laplace)")
        }
        if givenProbabilistic == false, givenLoss == .laplace {
            throw s.error("loss", "laplace is not allowed (one of mae, mse; laplace needs care.probabilistic: true)")
        }
        var care = CARE()
        care.probabilistic = givenProbabilistic ?? (givenLoss == .laplace)
        care.loss = givenLoss ?? (care.probabilistic ? .laplace : .mae)
        return care
    }

    public func modelDefaults(_ model: inout ModelRecipe) { model.unet.probabilistic = probabilistic }

    public func check(_ recipe: Recipe, _ top: MapReader) throws {
        if recipe.model.unet.probabilistic != probabilistic {
            let m = try top.section("model", allowed: nil, what: "")
            throw m.error("probabilistic", "\(recipe.model.unet.probabilistic) is not allowed (must match care.probabilistic: \(probabilistic))")
        }
    }

    public func loss(_ model: any ImageModel, input: Tensor, target: Tensor?, step: Int,
                     rng: inout RandomGenerator) throws -> Variable {
        try supervisedLoss(loss, model, input: input, target: target)
    }

    /// A probabilistic net's second half of channels are log-scales: exponentiated into scales.
    public func predictionHead(_ config: any ModelConfig) -> PredictionHead {
        guard probabilistic else { return PredictionHead(intensityChannels: config.outputChannels) }
        let means = config.outputChannels / 2
        return PredictionHead(transform: { try exponentiateScales($0, channels: means) }, intensityChannels: means)
    }
}

/// `exp` of channels `channels..<2·channels` of `[B, 2·channels, …]` (log-scale → scale).
func exponentiateScales(_ y: Tensor, channels c: Int) throws -> Tensor {
    guard y.rank >= 3, y.shape[1] == 2 * c else {
        throw TensorError.shapeMismatch(op: "predict", detail: "a probabilistic network must give \(2 * c) channels, got \(y.shape)")
    }
    var out = y
    out.makeUnique()
    let plane = y.count / (y.shape[0] * y.shape[1])
    let p = out.storage.base, b = y.shape[0]
    Threads.parallelFor(b * c) { job in
        let s = p + ((job / c) * 2 * c + c + job % c) * plane
        for i in 0..<plane { s[i] = Foundation.exp(s[i]) }
    }
    return out
}
