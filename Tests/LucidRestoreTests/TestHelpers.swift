import LucidNN
import XCTest
@testable import LucidRestore

extension CheckpointMetadata {
    /// The checkpoint's network as the U-Net it must be.
    func unet() throws -> UNetConfig { try XCTUnwrap(model as? UNetConfig, "\(type(of: model).kind) is not a U-Net") }
}

/// A training callback that runs a closure before each step (1-based step, the model).
final class BeforeStep: TrainingCallback {
    let body: (Int, any ImageModel) -> Void
    init(_ body: @escaping (Int, any ImageModel) -> Void) { self.body = body }
    func stepWillStart(_ loop: TrainLoop, step: Int) throws { body(step, loop.model) }
}

/// The U-Net `recipe`'s method trains for data of the given rank and channels.
func networkConfig(_ recipe: Recipe, spatialRank: Int, inChannels: Int, outChannels: Int) throws -> UNetConfig {
    let config = try recipe.method.modelConfig(recipe, spatialRank: spatialRank, inChannels: inChannels, outChannels: outChannels)
    return try XCTUnwrap(config as? UNetConfig)
}
