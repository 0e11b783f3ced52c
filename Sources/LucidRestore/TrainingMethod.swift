import Foundation
import LucidAutograd
import LucidCore
import LucidNN

/// How a restoration method turns a batch into a loss: Noise2Self's grid masking, Noise2Void's
/// blind spots, or a supervised pixel loss (Noise2Noise, CARE, label-free prediction).
public enum TrainingMethod {
    /// Masked MSE on the grid-masked pixels; the phase cycles with the step.
    case noise2self(GridMasker)
    /// Masked MSE on the blind-spot pixels.
    case noise2void(BlindSpotMasker)
    /// Input → target with a pixel loss (`laplace` needs a probabilistic network).
    case supervised(PixelLoss)

    /// The method of `recipe`.
    public init(_ recipe: Recipe) throws {
        switch recipe.settings {
        case .noise2self(let s):
            self = .noise2self(GridMasker(grid: s.grid, replacement: s.replacement == .zero ? .zero : .interpolate))
        case .noise2void(let s):
            let median = s.n2v2 || s.replacement == .median
            self = .noise2void(BlindSpotMasker(pixelFraction: s.pixelFraction, neighborhood: s.neighborhood,
                                               replacement: median ? .median : .uniform))
        case .noise2noise(let s): self = .supervised(s.loss)
        case .care(let s): self = .supervised(s.loss)
        case .labelfree(let s): self = .supervised(s.loss)
        }
    }

    /// The U-Net of the recipe's `model:` section for images of `spatialRank` axes.
    public static func networkConfig(_ recipe: Recipe, spatialRank: Int, inChannels: Int, outChannels: Int) throws -> UNetConfig {
        let m = recipe.model
        var c = UNetConfig()
        c.dims = spatialRank
        c.inChannels = inChannels
        c.outChannels = outChannels
        c.depth = m.depth
        c.firstFilters = m.filters
        c.kernel = m.kernel
        c.convsPerLevel = m.convsPerLevel
        c.residual = m.residual
        c.probabilistic = m.probabilistic
        switch m.norm {
        case .none: c.norm = .none
        case .batch: c.norm = .batch
        case .group: c.norm = .group
        case .instance: c.norm = .instance
        }
        switch m.pooling {
        case .max: c.pooling = .max
        case .conv: c.pooling = .strideConv
        case .maxblur: c.pooling = .maxBlur
        }
        switch m.upsampling {
        case .nearest: c.upsampling = .nearest
        case .linear: c.upsampling = .linear
        case .transpose: c.upsampling = .transposed
        }
        c.dropout = Float(m.dropout)
        if m.kind == .fnet { c.outputKernel = 3 }
        if case .noise2void(let s) = recipe.settings, s.n2v2 {
            // N2V2 (Höck et al. 2022): max-blur pooling and no top skip connection.
            c.pooling = .maxBlur
            c.skipTop = false
        }
        if c.norm == .group { c.groups = min(8, c.firstFilters) }
        if c.residual && inChannels != outChannels {
            throw TrainingDataError(path: "model.residual", reason: "true needs as many target channels as input channels (\(inChannels) vs \(outChannels))")
        }
        do { try c.validate() } catch {
            throw TrainingDataError(path: "model", reason: "\(error)")
        }
        return c
    }

    /// The loss of `net` on one batch; `phase` is the grid phase (Noise2Self), `rng` draws blind spots (Noise2Void).
    public func loss(_ net: UNet, input: Tensor, target: Tensor?, phase: Int,
                     rng: inout RandomGenerator) throws -> Variable {
        switch self {
        case .noise2self(let masker):
            let masked = try masker.apply(input, phase: phase)
            return try maskedMSELoss(try net(Variable(masked.input)), Variable(input), mask: masked.mask)
        case .noise2void(let masker):
            let masked = try masker.apply(input, rng: &rng)
            return try maskedMSELoss(try net(Variable(masked.input)), Variable(input), mask: masked.mask)
        case .supervised(let kind):
            guard let target else {
                throw TensorError.invalidArgument(op: "TrainingMethod.loss", detail: "a supervised method needs targets")
            }
            return try TrainingMethod.supervisedLoss(kind, net, output: try net(Variable(input)), target: target)
        }
    }

    /// The pixel loss `kind` of `net`'s `output` against `target`.
    static func supervisedLoss(_ kind: PixelLoss, _ net: UNet, output y: Variable, target: Tensor) throws -> Variable {
        switch kind {
        case .mse: return try mseLoss(y, Variable(target))
        case .mae: return try maeLoss(y, Variable(target))
        case .laplace:
            let (mean, logScale) = try net.splitProbabilistic(y)
            return try laplaceNLL(mean: mean, logScale: logScale, target: Variable(target))
        }
    }

    /// Number of grid phases (Noise2Self), 1 otherwise.
    public func phaseCount(spatialRank: Int) -> Int {
        if case .noise2self(let m) = self { return m.phaseCount(spatialRank: spatialRank) }
        return 1
    }
}
