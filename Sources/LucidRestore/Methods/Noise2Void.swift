import LucidAutograd
import LucidCore
import LucidNN

/// `method: noise2void` — blind-spot training (Krull et al. 2019; N2V2, Höck et al. 2022): a
/// few random pixels of every patch are replaced by neighbours and the loss is taken there.
public struct Noise2Void: RestorationMethod, Equatable {
    public static let name = "noise2void"
    public static let summary = "self-supervised denoising of noisy stacks with random blind spots (N2V, N2V2)"
    public static let data = DataNeeds.noisy

    /// Blind-spot fraction, neighbourhood and replacement.
    public var masker = BlindSpotMasker()
    /// N2V2: blur-pool downsampling, median replacement, no top skip connection.
    public var n2v2 = false

    public init() {}

    public init(masker: BlindSpotMasker, n2v2: Bool = false) {
        self.masker = masker
        self.n2v2 = n2v2
    }

    public static let keys: [RecipeKey<Noise2Void>] = [
        .double("pixel_fraction", \.masker.pixelFraction, allowed: "a number > 0 and ≤ 0.5",
                "fraction of pixels masked per patch") { $0 > 0 && $0 <= 0.5 },
        .int("neighborhood", \.masker.neighborhood, in: 3...31, odd: true, "extent of the window replacement values come from"),
        RecipeKey("n2v2", allowed: "true or false", default: "false",
                  "N2V2: max-blur pooling, median replacement, no top skip connection",
                  read: { s, r, _ in
                      s.n2v2 = try r.bool("n2v2", default: s.n2v2)
                      if s.n2v2 { s.masker.replacement = .median }
                  },
                  write: { .bool($0.n2v2) }),
        .choice("replacement", \.masker.replacement, default: "uniform (n2v2: median)",
                "a random neighbour (N2V) or the neighbourhood median without the centre (N2V2)"),
    ]

    public func modelDefaults(_ model: inout ModelRecipe) {
        if n2v2 { model.unet.pooling = .maxBlur }
    }

    public func check(_ recipe: Recipe, _ top: MapReader) throws {
        let smallest = recipe.data.patch.min() ?? 0
        if masker.neighborhood > smallest {
            let s = try top.section(Self.name, allowed: nil, what: "")
            throw s.error("neighborhood", "\(masker.neighborhood) is not allowed (at most the smallest patch size, \(smallest))")
        }
    }

    /// N2V2 (Höck et al. 2022) also drops the top skip connection and pools with max-blur.
    public func modelConfig(_ recipe: Recipe, spatialRank: Int, inChannels: Int, outChannels: Int) throws -> any ModelConfig {
        var c = try recipe.model.unetConfig(spatialRank: spatialRank, inChannels: inChannels, outChannels: outChannels)
        if n2v2 {
            c.pooling = .maxBlur
            c.skipTop = false
        }
        return c
    }

    /// Masked MSE on the blind-spot pixels, drawn from `rng`.
    public func loss(_ model: any ImageModel, input: Tensor, target: Tensor?, step: Int,
                     rng: inout RandomGenerator) throws -> Variable {
        try loss(model, input: input, target: target, step: step, firstSample: 0, rng: &rng)
    }

    /// Each patch's blind spots come from its own stream (see `BlindSpotMasker.apply`).
    public func loss(_ model: any ImageModel, input: Tensor, target: Tensor?, step: Int, firstSample: Int,
                     rng: inout RandomGenerator) throws -> Variable {
        let masked = try masker.apply(input, firstSample: firstSample, rng: &rng)
        return try maskedMSELoss(try model(Variable(masked.input)), Variable(input), mask: masked.mask)
    }
}
