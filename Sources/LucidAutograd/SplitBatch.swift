import LucidCore

extension Autograd {
    /// The processes the batch of the current training step is split over (nil: this process
    /// holds the whole batch). Losses then divide by the whole batch's element count (or mask
    /// weight), and batch normalization uses the whole batch's statistics, so that the mean of
    /// the processes' gradients is the gradient of the whole batch. Set with `splitBatch(over:_:)`.
    public private(set) nonisolated(unsafe) static var batchGroup: (any ProcessGroup)?

    /// Runs `body` (a training step's forward and backward) with its batch split over `group`.
    public static func splitBatch<R>(over group: (any ProcessGroup)?, _ body: () throws -> R) rethrows -> R {
        let outer = batchGroup
        batchGroup = group
        defer { batchGroup = outer }
        return try body()
    }

    /// The divisor of a loss that averages over `local` elements (or mask weight) of this
    /// process's share: `local` alone, or the whole batch's total over the processes' count
    /// (the mean of the processes' losses is then the whole batch's loss).
    static func lossNormalizer(_ local: Double) throws -> Double {
        guard let group = batchGroup else { return local }
        return try group.sum([local])[0] / Double(group.size)
    }
}
