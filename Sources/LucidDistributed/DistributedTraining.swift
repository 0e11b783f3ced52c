import LucidRestore

extension MPIWorld {
    /// Training split over these ranks, with gradients averaged in `GradientBuckets`.
    public var dataParallel: DataParallel {
        DataParallel(group: self) { GradientBuckets(parameters: $0, world: self) }
    }
}
