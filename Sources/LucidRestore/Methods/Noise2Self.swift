import LucidAutograd
import LucidCore
import LucidNN

/// `method: noise2self` — J-invariant training by grid masking (Batson & Royer 2019): the loss
/// is taken on the masked pixels of a grid whose phase cycles with the step.
public struct Noise2Self: RestorationMethod, Equatable {
    public static let name = "noise2self"
    public static let summary = "self-supervised denoising of noisy stacks by J-invariant grid masking"
    public static let data = DataNeeds.noisy

    /// Grid period and replacement of the masked pixels.
    public var masker = GridMasker()

    public init() {}

    /// Adam at 1e-3 decaying to 0 on a cosine: the last steps average out the noise of
    /// self-supervised gradients (a constant rate leaves the final weights, and with them the
    /// prediction's offset, wherever the last noisy step put them).
    public static var defaults: MethodDefaults {
        var d = MethodDefaults()
        d.learningRate = 1e-3
        d.schedule = .cosine
        return d
    }

    public init(masker: GridMasker) { self.masker = masker }

    public static let keys: [RecipeKey<Noise2Self>] = [
        .int("grid", \.masker.grid, in: 2...16, "grid period: one pixel in grid^d is masked per step"),
        .choice("replacement", \.masker.replacement,
                "what masked pixels are replaced with: the mean of their direct neighbours, or zero"),
    ]

    public func check(_ recipe: Recipe, _ top: MapReader) throws {
        let smallest = recipe.data.patch.min() ?? 0
        if masker.grid > smallest {
            let s = try top.section(Self.name, allowed: nil, what: "")
            throw s.error("grid", "\(masker.grid) is not allowed (at most the smallest patch size, \(smallest))")
        }
    }

    /// Masked MSE on the grid-masked pixels; the phase cycles with `step`.
    public func loss(_ model: any ImageModel, input: Tensor, target: Tensor?, step: Int,
                     rng: inout RandomGenerator) throws -> Variable {
        let phases = masker.phaseCount(spatialRank: input.rank - 2)
        let masked = try masker.apply(input, phase: step % phases)
        return try maskedMSELoss(try model(Variable(masked.input)), Variable(input), mask: masked.mask)
    }
}
