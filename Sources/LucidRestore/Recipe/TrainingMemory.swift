import LucidCore

/// A lower bound on the memory one training step of a recipe needs, so that a patch or batch
/// that cannot fit is refused when the recipe is read, before anything is allocated.
enum TrainingMemory {
    /// Bytes the U-Net's full-resolution level alone keeps for the backward pass: for each of
    /// `training.batch` patches, four `model.filters`-channel Float32 activations per voxel (two
    /// convolutions in the encoder, two in the decoder); nil when that overflows.
    static func lowerBound(_ recipe: Recipe) -> Int? {
        SystemMemory.product(recipe.data.patch + [recipe.training.batch, recipe.model.unet.firstFilters, 4, 4])
    }

    /// Nil when the lower bound fits in the available memory; otherwise why not.
    static func shortfall(_ recipe: Recipe) -> String? {
        SystemMemory.shortfall(lowerBound(recipe)).map {
            "is too large to train: training.batch \(recipe.training.batch) of these patches with model.filters "
                + "\(recipe.model.unet.firstFilters) (4 Float32 activations of that many channels per voxel at least) \($0)"
        }
    }
}
