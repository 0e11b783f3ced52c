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
    public let net: UNet

    public init(checkpoint: Checkpoint, weights: Checkpoint.Weights = .best) throws {
        self.checkpoint = checkpoint
        self.weights = weights
        net = try checkpoint.makeModel(weights: weights)
        net.setTraining(false)
    }

    var metadata: CheckpointMetadata { checkpoint.metadata }

    /// Channels of the network's output (means, then scales for a probabilistic net).
    public var outputChannels: Int { net.config.outChannels * (net.config.probabilistic ? 2 : 1) }

    /// The fixed `y·scale + offset` that maps the network's output back to intensities, or nil
    /// when there is none: no normalization, outputs left normalized by design (a per-image target
    /// normalization), or the inverse of a normalization refitted to each input image.
    public var fixedOutputMap: (scale: Float, offset: Float)? {
        let input = metadata.normalization
        if let target = metadata.targetNormalization {
            return target.perImage || target.method == .none ? nil : (target.scale, target.offset)
        }
        if input.method == .none || input.perImage || input.method == .percentile { return nil }
        return (input.scale, input.offset)
    }

    /// True when the output needs the inverse of the input's own (refitted) normalization, which
    /// only `lucid predict` applies.
    public var outputNeedsRefittedInverse: Bool {
        let input = metadata.normalization
        return metadata.targetNormalization == nil && input.method != .none && (input.perImage || input.method == .percentile)
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

    /// What a program must do to the network's output to get intensities, in words.
    public var outputNormalizationText: String {
        let scaleNote = net.config.probabilistic ? " (the scale channels, the second half, only ·scale)" : ""
        if let (scale, offset) = fixedOutputMap {
            let whose = metadata.targetNormalization == nil ? "the inverse of the input normalization" : "the training targets' normalization undone"
            return "y · \(scale) + \(offset): \(whose)\(scaleNote)"
        }
        if outputNeedsRefittedInverse {
            let n = metadata.normalization
            let map = n.method == .percentile
                ? "y · (p\(format(n.high)) − p\(format(n.low))) + p\(format(n.low))" : "y · std + mean"
            return "per image: \(map) with the input image's own statistics\(scaleNote)"
        }
        if metadata.normalization.method == .none && metadata.targetNormalization == nil { return "none: outputs are intensities" }
        return "none: outputs stay in the targets' per-image normalized units (z-scores for mean/std)"
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
