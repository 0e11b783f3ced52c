import Foundation
import LucidNN

/// The `model:` section: a U-Net. Its dimensions and channels follow from the data.
public struct ModelRecipe: Equatable, Sendable {
    /// Network architectures.
    public enum Kind: String, CaseIterable, Sendable {
        /// The U-Net the other keys describe.
        case unet
        /// pytorch_fnet's U-Net: the other keys default to depth 4, 32 filters, BatchNorm, stride-2
        /// convolutions down, transposed convolutions up; the output convolution is 3 wide.
        case fnet
    }
    public var kind = Kind.unet
    /// The network's settings (`dims`, `inChannels` and `outChannels` are set from the data).
    public var unet = UNetConfig()

    public init() {}

    /// The keys, in the order recipes list them.
    static let keys = SectionReader<ModelRecipe>(keys: [
        RecipeKey("kind", allowed: "one of unet, fnet", default: "unet",
                  "architecture; fnet changes the other keys' defaults to pytorch_fnet's net",
                  read: { m, r, _ in
                      m.kind = try r.choice("kind", default: m.kind)!
                      if m.kind == .fnet {
                          m.unet.depth = 4
                          m.unet.norm = .batch
                          m.unet.pooling = .strideConv
                          m.unet.upsampling = .transposed
                      }
                  },
                  write: { .string($0.kind.rawValue) }),
        .int("depth", \.unet.depth, in: 1...6, default: "2 (fnet: 4)", "down/up-sampling levels"),
        .int("filters", \.unet.firstFilters, in: 1...1024, "channels of the first level; doubled at each level"),
        .int("kernel", \.unet.kernel, in: 1...15, odd: true, "convolution kernel extent"),
        .bool("residual", \.unet.residual, "adds the input to the output (learns a correction); needs equal input/output channels"),
        .choice("norm", \.unet.norm, default: "none (fnet: batch)", "normalization layers inside the network"),
        .choice("pooling", \.unet.pooling, default: "max (N2V2: maxblur; fnet: conv)",
                "downsampling: 2× max pooling, a learned stride-2 convolution, or N2V2's max-blur pooling"),
        .choice("upsampling", \.unet.upsampling, default: "nearest (fnet: transpose)", "upsampling between levels"),
        .int("convs_per_level", \.unet.convsPerLevel, in: 1...4, "convolutions per level"),
        .bool("probabilistic", \.unet.probabilistic, default: "care.probabilistic",
              "predicts a per-pixel Laplace scale next to the mean (probabilistic CARE)"),
        .double("dropout", \.unet.dropout, allowed: "a number ≥ 0 and < 1",
                "dropout probability after every level convolution's activation (training only)") { $0 >= 0 && $0 < 1 },
    ])

    /// Reads the section from the method's defaults.
    static func read(_ m: MapReader, _ context: RecipeParseContext) throws -> ModelRecipe {
        var initial = ModelRecipe()
        context.method.modelDefaults(&initial)
        let model = try keys.read(initial, m, context)
        let allowing = Methods.all.filter { $0.trainsProbabilisticModels }.map { $0.name }
        if model.unet.probabilistic && !type(of: context.method).trainsProbabilisticModels {
            throw m.error("probabilistic", "true is not allowed (only method \(allowing.joined(separator: ", ")) trains probabilistic models)")
        }
        return model
    }

    /// The U-Net for data of `spatialRank` axes and the given channels.
    public func unetConfig(spatialRank: Int, inChannels: Int, outChannels: Int) throws -> UNetConfig {
        var c = unet
        c.dims = spatialRank
        c.inChannels = inChannels
        c.outChannels = outChannels
        if kind == .fnet { c.outputKernel = 3 }
        if c.norm == .group { c.groups = min(8, c.firstFilters) }
        if c.residual && inChannels != outChannels {
            throw TrainingDataError(path: "model.residual", reason: "true needs as many target channels as input channels (\(inChannels) vs \(outChannels))")
        }
        do { try c.validate() } catch {
            throw TrainingDataError(path: "model", reason: "\(error)")
        }
        return c
    }
}
