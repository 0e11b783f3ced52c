import Foundation
import LucidCore
import LucidImaging

/// Averages the restorations of several trained models of one image (checkpoint ensembles,
/// `lucid predict --ensemble`): each member normalizes the input and maps its output back its
/// own way, and the results, in intensities, are averaged pixel by pixel. Models trained with
/// other seeds (or at other steps) make errors that partly cancel.
public struct EnsemblePredictor {
    public var members: [ImagePredictor]

    /// Throws unless there is at least one member and all give the same output channels from
    /// the same spatial rank.
    public init(_ members: [ImagePredictor]) throws {
        guard let first = members.first else {
            throw TensorError.invalidArgument(op: "ensemble", detail: "an ensemble needs at least one model")
        }
        if members.count > 1, let sampled = members.first(where: { $0.tiles.parts.count > 1 }) {
            throw TensorError.invalidArgument(op: "ensemble", detail: "a model that samples (\(sampled.tiles.parts.map(\.name).joined(separator: ", "))) averages its own samples; draw more --samples instead of an ensemble")
        }
        for (k, m) in members.enumerated().dropFirst() {
            guard m.config.spatialRank == first.config.spatialRank, m.outputChannels == first.outputChannels,
                  m.intensityChannels == first.intensityChannels else {
                throw TensorError.invalidArgument(op: "ensemble", detail: """
                    model \(k + 1) is \(m.config.spatialRank)-D with \(m.outputChannels) output channels, the first is \
                    \(first.config.spatialRank)-D with \(first.outputChannels): ensemble members must restore alike
                    """)
            }
        }
        self.members = members
    }

    /// The mean of the members' restorations of `image`.
    public func predict(_ image: Image) throws -> Image {
        var mean = try members[0].predict(image)
        guard members.count > 1 else { return mean }
        mean.data = mean.data.copy()
        let sum = mean.data.storage.base
        for m in members.dropFirst() {
            let y = try m.predict(image)
            guard y.data.shape == mean.data.shape else {
                throw TensorError.shapeMismatch(op: "ensemble", detail: "member outputs \(y.data.shape) and \(mean.data.shape) differ")
            }
            let v = y.data.storage.base
            Threads.parallelChunks(y.data.count, minChunk: 1 << 15) { r in for i in r { sum[i] += v[i] } }
        }
        let scale = 1 / Float(members.count)
        Threads.parallelChunks(mean.data.count, minChunk: 1 << 15) { r in for i in r { sum[i] *= scale } }
        return mean
    }
}
