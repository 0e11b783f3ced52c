import LucidAutograd
import LucidCore

/// An exponential moving average of parameters (EMA weights, as diffusion models sample with):
/// after each optimizer step `shadow ← d·shadow + (1 − d)·parameter`, with the decay warmed up
/// as `d = min(decay, (1 + n)/(10 + n))` over the first updates `n`.
///
/// The shadows are buffers named by their parameters (`conv_in.weight`), plus `num_updates`, so
/// a model that holds one as child `ema` saves and loads them in its checkpoints
/// (`ema.conv_in.weight`).
public final class ExponentialMovingAverage: Module {
    /// The parameter names, in order.
    public let names: [String]
    /// The averaged values, one per name.
    public private(set) var shadows: [Tensor]
    /// Updates made so far.
    public private(set) var updates = 0

    /// Starts the averages at the parameters' current values.
    public init(of parameters: [(name: String, parameter: Variable)]) {
        names = parameters.map(\.name)
        shadows = parameters.map { $0.parameter.value.copy() }
    }

    public var ownBuffers: [(name: String, buffer: Tensor)] {
        Array(zip(names, shadows)) + [("num_updates", Tensor(scalar: Float(updates)))]
    }

    public func setOwnBuffer(_ name: String, to value: Tensor) throws {
        if name == "num_updates" {
            guard value.count == 1 else {
                throw TensorError.shapeMismatch(op: "ExponentialMovingAverage.setOwnBuffer", detail: "num_updates must be a scalar, got \(value.shape)")
            }
            updates = Int(value.scalars[0])
            return
        }
        guard let i = names.firstIndex(of: name) else {
            throw TensorError.invalidArgument(op: "ExponentialMovingAverage.setOwnBuffer", detail: "no buffer named '\(name)'")
        }
        shadows[i] = value
    }

    /// The decay the next update uses.
    public func effectiveDecay(_ decay: Double) -> Float {
        Float(min(decay, Double(1 + updates) / Double(10 + updates)))
    }

    /// Moves every average towards its parameter (the same names, in the same order).
    public func update(from parameters: [(name: String, parameter: Variable)], decay: Double) throws {
        guard parameters.map(\.name) == names else {
            throw TensorError.invalidArgument(op: "ExponentialMovingAverage.update", detail: "the parameters are not those the average was made of")
        }
        let d = effectiveDecay(decay)
        for (i, (_, p)) in parameters.enumerated() {
            shadows[i].makeUnique()
            let s = shadows[i].storage.base, v = p.value.storage.base
            Threads.parallelChunks(shadows[i].count, minChunk: 1 << 15) { r in
                for k in r { s[k] = d * s[k] + (1 - d) * v[k] }
            }
        }
        updates += 1
    }

    /// Sets every parameter to its average.
    public func copy(into parameters: [(name: String, parameter: Variable)]) throws {
        guard parameters.map(\.name) == names else {
            throw TensorError.invalidArgument(op: "ExponentialMovingAverage.copy", detail: "the parameters are not those the average was made of")
        }
        for (i, (_, p)) in parameters.enumerated() { p.value = shadows[i].copy() }
    }
}
