import LucidAutograd
import LucidCore
import LucidNN

/// `method: zeroshot` — denoising one acquisition with nothing else (ZS-N2N, Mansour & Heckel
/// 2023): every 2×2 block in YX gives two half-resolution images, the means of its two
/// diagonals, whose noise is independent while their signal nearly agrees. A small residual
/// network learns to map each half image to the other (Noise2Noise on the pair), and a
/// consistency term asks that denoising commutes with the downsampling; the trained network
/// then restores the full-resolution image. Its defaults (a one-level U-Net with 24 filters,
/// 1000 steps of 4 patches of 64², Adam 1e-3 with cosine decay) aim at about a minute on 2 cores.
public struct ZeroShot: RestorationMethod, Equatable {
    public static let name = "zeroshot"
    public static let summary = "self-supervised denoising of a single image from its own downsampled pairs (ZS-N2N), about a minute"
    public static let data = DataNeeds.noisy

    /// Weight of the consistency term (ZS-N2N: 1).
    public var consistency = 1.0

    public init() {}

    public static let keys: [RecipeKey<ZeroShot>] = [
        .double("consistency", \.consistency, allowed: "a number ≥ 0",
                "weight of the term asking that denoising commutes with the 2× downsampling") { $0 >= 0 },
    ]

    public static var defaults: MethodDefaults {
        var d = MethodDefaults()
        d.steps = 1000
        d.batch = 4
        d.learningRate = 1e-3
        d.schedule = .cosine
        return d
    }

    /// A small residual net: one level, 24 filters.
    public func modelDefaults(_ model: inout ModelRecipe) {
        model.unet.depth = 1
        model.unet.firstFilters = 24
        model.unet.residual = true
    }

    public func check(_ recipe: Recipe, _ top: MapReader) throws {
        let multiple = 2 << recipe.model.unet.depth
        let yx = recipe.data.patch.suffix(2)
        if yx.contains(where: { $0 % multiple != 0 }) {
            let d = try top.section("data", allowed: nil, what: "")
            throw d.error("patch", "\(recipe.data.patch) is not allowed (zeroshot halves Y and X: each must be divisible by 2 × 2^model.depth = \(multiple))")
        }
    }

    /// The residual loss between the two half images' restorations and each other, plus the
    /// consistency of the full-resolution restoration's halves with them.
    public func loss(_ model: any ImageModel, input: Tensor, target: Tensor?, step: Int,
                     rng: inout RandomGenerator) throws -> Variable {
        let (d1, d2) = try ZeroShot.halves(Variable(input))
        let f1 = try model(d1), f2 = try model(d2)
        let residual = try (try mseLoss(f1, d2) + mseLoss(f2, d1)) * 0.5
        guard consistency > 0 else { return residual }
        let (g1, g2) = try ZeroShot.halves(try model(Variable(input)))
        let consistent = try (try mseLoss(f1, g1) + mseLoss(f2, g2)) * 0.5
        return try residual + consistent * Float(consistency)
    }

    /// The two half-resolution images of `x` (`[B, C, (Z,) Y, X]`, Y and X even): the means of
    /// the main and of the anti-diagonal of every 2×2 block in YX.
    static func halves(_ x: Variable) throws -> (Variable, Variable) {
        let shape = x.value.shape
        let spatial = Array(shape.dropFirst(2))
        let planes = try x.reshaped([shape[0] * shape[1], 1] + spatial)
        let lead = [Int](repeating: 1, count: spatial.count - 2)
        let kernelShape = [1, 1] + lead + [2, 2]
        let stride = lead + [2, 2]
        func half(_ k: [Float]) throws -> Variable {
            let weight = Variable(try Tensor(shape: kernelShape, scalars: k))
            let y = try conv(planes, weight: weight, stride: stride)
            return try y.reshaped(Array(shape.prefix(2)) + Array(y.value.shape.dropFirst(2)))
        }
        return (try half([0.5, 0, 0, 0.5]), try half([0, 0.5, 0.5, 0]))
    }
}
