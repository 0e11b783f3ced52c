import Foundation
import LucidAutograd
import LucidCore

/// A network that maps images to images, `[N, C, spatial…]` → `[N, C′, spatial…]`, of any
/// spatial extent that is a multiple of `sizeMultiple`.
public protocol ImageModel: Layer {
    /// The architecture this model was built from.
    var architecture: any ModelConfig { get }
}

/// A model architecture as a Codable value. A checkpoint stores it with its `kind`, so
/// prediction, tiling and export rebuild any registered model, not only a U-Net.
public protocol ModelConfig: Codable, Sendable {
    /// The name checkpoints record (`unet`).
    static var kind: String { get }
    /// Spatial axes: 2 or 3.
    var spatialRank: Int { get }
    /// Channels of an input sample.
    var inChannels: Int { get }
    /// Channels of an output sample.
    var outputChannels: Int { get }
    /// Spatial extents of inputs must be multiples of this.
    var sizeMultiple: Int { get }
    /// A bound on the receptive-field radius in input pixels: an output pixel depends on input
    /// pixels at most this far away along any axis. Tiles whose overlap exceeds twice this
    /// predict exactly as one pass.
    var receptiveRadius: Int { get }
    /// A model of this architecture with initial weights drawn from `rng`.
    func makeModel(rng: inout RandomGenerator) throws -> any ImageModel
}

/// The model architectures checkpoints can name; a new architecture registers its config here.
public enum ModelRegistry {
    public static let all: [any ModelConfig.Type] = [UNetConfig.self, DiffusionUNetConfig.self]

    /// The config type recorded as `kind`.
    public static func type(named kind: String) -> (any ModelConfig.Type)? {
        all.first { $0.kind == kind }
    }
}

extension ModelConfig {
    /// Whether `other` is the same architecture with the same settings.
    public func isSame(as other: any ModelConfig) -> Bool {
        guard type(of: other).kind == Self.kind else { return false }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(self)) == (try? encoder.encode(other))
    }
}

/// A layer conditioned on a per-sample value besides its input: a diffusion model's time step
/// or noise level `t` (`[N]` or `[N, 1]`), embedded and added inside the network.
public protocol ConditionalLayer: Module {
    /// The forward pass of `x` `[N, C, spatial…]` at conditions `t`.
    func callAsFunction(_ x: Variable, condition t: Variable) throws -> Variable
}
