import LucidAutograd
import LucidCore
import LucidNN

/// How a training run is split over processes (`mpirun -np N lucid train`): every process
/// builds the same model, takes its rows of every batch and averages its gradients with the
/// others' through the reducer; process 0 alone writes the checkpoint, metrics and progress.
public struct DataParallel {
    /// The processes.
    public var group: any ProcessGroup
    /// The reducer that averages the gradients of these parameters over the processes.
    public var makeReducer: (_ parameters: [(name: String, parameter: Variable)]) -> any GradientReducer

    public init(group: any ProcessGroup,
                makeReducer: @escaping (_ parameters: [(name: String, parameter: Variable)]) -> any GradientReducer) {
        self.group = group
        self.makeReducer = makeReducer
    }

    /// Throws unless every process gets at least one patch of a `batch`-patch batch.
    func check(batch: Int) throws {
        if batch < group.size {
            throw TrainingError(message: "training.batch \(batch) is smaller than the \(group.size) processes; every process needs at least one patch of the (global) batch")
        }
    }

    /// Gives each process's Dropout layers a stream of their own (the same masks on every
    /// process would drop the same units of different patches).
    func seedDropout(_ model: any ImageModel) {
        for case let d as Dropout in model.namedModules.map(\.module) {
            d.rng = RandomGenerator(seed: d.rng.next() ^ (UInt64(group.rank) &* 0xD1B5_4A32_D192_ED03))
        }
    }
}
