import Foundation
import LucidCore
import LucidImaging
import LucidNN
import LucidRestore

/// A trained checkpoint prepared for export: its network with the chosen weights, and what its
/// normalization means for a program that runs the bare network (text for ONNX metadata and
/// READMEs, the affine map that takes outputs back to intensities where one exists).
public struct ModelExport {
    public let checkpoint: Checkpoint
    public let weights: Checkpoint.Weights
    /// The network (the export knows U-Nets).
    public let net: UNet

    public init(checkpoint: Checkpoint, weights: Checkpoint.Weights = .best) throws {
        self.checkpoint = checkpoint
        self.weights = weights
        let model = try checkpoint.makeModel(weights: weights)
        guard let unet = model as? UNet else {
            throw ExportError(path: checkpoint.directory, reason: "its model is a '\(type(of: model.architecture).kind)'; only U-Nets are exported")
        }
        net = unet
        net.setTraining(false)
    }

    var metadata: CheckpointMetadata { checkpoint.metadata }

    /// Channels of the network's output (means, then scales for a probabilistic net).
    public var outputChannels: Int { net.config.outputChannels }

    /// Whether `lucid predict` refits the input normalization to each image.
    var refitsInput: Bool { metadata.normalization.perImage || metadata.normalization.method == .percentile }

    /// The fixed `y·scale + offset` a package applies to get intensities, or nil when there is
    /// none: no normalization, outputs left normalized by design (a per-image target
    /// normalization), or only the inverse of the input's own normalization would do. With
    /// targets normalized once (CARE, Noise2Noise) it is their normalization undone: exactly
    /// `lucid predict`'s map for inputs normalized like the training inputs.
    public var fixedOutputMap: (scale: Float, offset: Float)? {
        let input = metadata.normalization
        if let target = metadata.targetNormalization {
            return target.perImage || target.method == .none ? nil : (target.scale, target.offset)
        }
        return input.method == .none || refitsInput ? nil : (input.scale, input.offset)
    }

    /// True when `lucid predict` maps outputs back with the statistics of each input image, which
    /// a fixed postprocessing cannot do: the inverse of a refitted input normalization, or the
    /// targets' normalization carried over by the input's own percentiles (`targetUnits`).
    public var outputFollowsEachInput: Bool {
        guard refitsInput, metadata.normalization.method != .none else { return false }
        guard let target = metadata.targetNormalization else { return true }
        return !metadata.normalization.perImage && !target.perImage && target.method != .none
    }

    /// What a program must do to an input image before the network, in words.
    public var inputNormalizationText: String {
        let n = metadata.normalization
        switch n.method {
        case .none: return "none: the network takes raw intensities"
        case .percentile:
            return "per image: (x − p\(format(n.low))) / (p\(format(n.high)) − p\(format(n.low))) with pN the image's "
                + "N-th percentile" + (n.clip ? ", clipped to [0, 1]" : "")
        case .meanStd:
            return n.perImage ? "per image: (x − mean) / std of the image"
                : "(x − \(n.offset)) / \(n.scale): the mean and standard deviation of the training inputs"
        }
    }

    /// What `lucid predict` does to the network's output to get intensities, in words.
    public var outputNormalizationText: String {
        let scaleNote = net.config.probabilistic ? " (the scale channels, the second half, only ·scale)" : ""
        let n = metadata.normalization
        if let target = metadata.targetNormalization, target.method != .none, !target.perImage {
            guard outputFollowsEachInput else { return "y · \(target.scale) + \(target.offset): the training targets' normalization undone\(scaleNote)" }
            return "y · \(target.scale)·s/\(n.scale) + \(target.offset) + \(target.scale / n.scale)·(o − \(n.offset)), with o = "
                + "p\(format(n.low)) and s = p\(format(n.high)) − p\(format(n.low)) of the input image: the training targets' "
                + "normalization, following the input's brightness\(scaleNote)"
        }
        if metadata.targetNormalization != nil { return "none: outputs stay in the targets' per-image normalized units (z-scores for mean/std)" }
        if let (scale, offset) = fixedOutputMap { return "y · \(scale) + \(offset): the inverse of the input normalization\(scaleNote)" }
        if outputFollowsEachInput {
            let map = n.method == .percentile ? "y · (p\(format(n.high)) − p\(format(n.low))) + p\(format(n.low))" : "y · std + mean"
            return "per image: \(map) with the input image's own statistics\(scaleNote)"
        }
        return "none: outputs are intensities"
    }

    /// Key–value pairs for ONNX `metadata_props`.
    public var onnxMetadata: [(key: String, value: String)] {
        func json<T: Encodable>(_ v: T) -> String {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys]
            return (try? e.encode(v)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        }
        let m = metadata
        var out: [(String, String)] = [
            ("lucid.method", m.method),
            ("lucid.axes", m.axes),
            ("lucid.step", String(m.step)),
            ("lucid.weights", weights.rawValue),
            ("lucid.size_multiple", String(net.sizeMultiple)),
            ("lucid.receptive_radius", String(net.config.receptiveRadius)),
            ("lucid.input_normalization", inputNormalizationText),
            ("lucid.output_normalization", outputNormalizationText),
            ("lucid.normalization", json(m.normalization)),
            ("lucid.unet", json(m.model)),
        ]
        if let t = m.targetNormalization { out.append(("lucid.target_normalization", json(t))) }
        if let p = m.pixelSize { out.append(("lucid.pixel_size_um", String(p))) }
        if let s = m.signalChannels { out.append(("lucid.signal_channels", s.map(String.init).joined(separator: ","))) }
        return out
    }

    /// The ONNX model with `onnxMetadata` and a doc string stating the axes and normalizations.
    public func onnx() throws -> Data {
        let c = net.config
        let axes = c.dims == 3 ? "[batch, channel, z, y, x]" : "[batch, channel, y, x]"
        let doc = """
            Lucid \(metadata.method) model (step \(metadata.step), \(weights.rawValue) weights). Input and output \(axes), \
            spatial extents multiples of \(net.sizeMultiple); outputs within \(c.receptiveRadius) pixels of a border \
            depend on the padding. Input normalization: \(inputNormalizationText). Output: \(outputNormalizationText).
            """
        return try ONNXExport.model(net, metadata: onnxMetadata, docString: doc)
    }

    /// Writes `onnx()` to `path` atomically.
    public func writeONNX(to path: String) throws {
        let data = try onnx()
        do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw ExportError(path: path, reason: "cannot write (\(error.localizedDescription))")
        }
    }

    func format(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(v) }
}
