import Foundation
import LucidAutograd
import LucidCore
import LucidImaging
import LucidNN
import LucidRestore
import SwiftProtobuf

/// An export that could not be made; the message names the file and the cause.
public struct ExportError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}

/// Writes a `UNet` as an ONNX model (opset 17): input `input` `[batch, C, (z,) y, x]` and output
/// `output` `[batch, C′, (z,) y, x]` with dynamic batch and spatial axes (multiples of
/// `2^depth`), in the network's normalized units, in evaluation mode (BatchNorm with running
/// statistics, no dropout). A probabilistic net's output holds the means, then the Laplace
/// scales (`exp` of the log-scales), as `lucid predict` gives them before mapping them back.
///
/// Layers map to ONNX operators one to one — Conv, ConvTranspose, MaxPool, Resize (nearest:
/// asymmetric/floor; linear: half-pixel), Concat, Relu, LeakyRelu, BatchNormalization,
/// InstanceNormalization, Add — except GroupNorm (Reshape, ReduceMean, Sub, Mul, Add, Sqrt,
/// Div), N2V2's max-blur pooling (MaxPool stride 1, reflect Pad, depthwise binomial Conv
/// stride 2), SiLU and GELU (Sigmoid/Erf with Mul/Add).
/// ```swift
/// let data = try ONNXExport.model(net, metadata: ["lucid.method": "care"])
/// try data.write(to: URL(fileURLWithPath: "model.onnx"))
/// ```
public enum ONNXExport {
    /// The operator set the graphs use.
    public static let opset = 17
    /// Names of the graph's input and output.
    public static let inputName = "input", outputName = "output"

    /// The serialized model (`ModelProto`) of `net`; `metadata` goes to `metadata_props`.
    public static func model(_ net: UNet, metadata: [(key: String, value: String)] = [], docString: String = "") throws -> Data {
        var g = ONNXGraph()
        let y = try emit(net, input: inputName, into: &g)
        let c = net.config
        var graph = Onnx_GraphProto()
        graph.name = "lucid_unet"
        graph.node = g.nodes
        // The node computing the result writes it under a fresh name; call it `output`.
        guard let last = graph.node.lastIndex(where: { $0.output == [y] }) else {
            throw ExportError(path: "UNet", reason: "the network computes nothing from its input")
        }
        graph.node[last].output = [outputName]
        graph.initializer = g.initializers
        let spatial: [ONNXDimension] = (c.dims == 3 ? ["z", "y", "x"] : ["y", "x"]).map { .named($0) }
        let outChannels = c.outputChannels
        graph.input = [ONNXGraph.valueInfo(inputName, dims: [.named("batch"), .fixed(c.inChannels)] + spatial)]
        graph.output = [ONNXGraph.valueInfo(outputName, dims: [.named("batch"), .fixed(outChannels)] + spatial)]

        var model = Onnx_ModelProto()
        model.irVersion = 8
        model.producerName = "Lucid"
        model.producerVersion = lucidVersion
        model.docString = docString
        var opsetID = Onnx_OperatorSetIdProto()
        opsetID.domain = ""
        opsetID.version = Int64(opset)
        model.opsetImport = [opsetID]
        model.graph = graph
        model.metadataProps = metadata.map { k, v in
            var e = Onnx_StringStringEntryProto()
            e.key = k
            e.value = v
            return e
        }
        return try model.serializedData()
    }

    /// Appends the nodes of `net` applied to the value `input`; returns the output value's name.
    static func emit(_ net: UNet, input: String, into g: inout ONNXGraph) throws -> String {
        let c = net.config
        let k2 = [Int](repeating: 2, count: c.dims)
        var skips: [String] = []
        var h = input
        for i in 0..<c.depth {
            h = try sequential(net.downBlocks[i], h, name: "d\(i)", dims: c.dims, into: &g)
            skips.append(h)
            switch c.pooling {
            case .max:
                h = g.node("MaxPool", [h], [ONNXGraph.ints("kernel_shape", k2), ONNXGraph.ints("strides", k2)], name: "pool\(i)")
            case .strideConv:
                h = try block(net.downsamplers[i], h, name: "down\(i)", dims: c.dims, into: &g)
            case .maxBlur:
                h = try maxBlurPool(h, channels: c.firstFilters << i, dims: c.dims, name: "pool\(i)", into: &g)
            }
        }
        h = try sequential(net.middle, h, name: "mid", dims: c.dims, into: &g)
        for (k, i) in stride(from: c.depth - 1, through: 0, by: -1).enumerated() {
            switch c.upsampling {
            case .nearest, .linear:
                let scales = try g.weight("up\(i).scales", shape: [c.dims + 2], [1, 1] + [Float](repeating: 2, count: c.dims))
                let attributes = c.upsampling == .nearest
                    ? [ONNXGraph.string("mode", "nearest"), ONNXGraph.string("coordinate_transformation_mode", "asymmetric"),
                       ONNXGraph.string("nearest_mode", "floor")]
                    : [ONNXGraph.string("mode", "linear"), ONNXGraph.string("coordinate_transformation_mode", "half_pixel")]
                h = g.node("Resize", [h, "", scales], attributes, name: "up\(i)")
            case .transposed:
                h = try block(net.upsamplers[k], h, name: "up\(i)", dims: c.dims, into: &g)
            }
            if i > 0 || c.skipTop { h = g.node("Concat", [h, skips[i]], [ONNXGraph.int("axis", 1)], name: "cat\(i)") }
            h = try sequential(net.upBlocks[k], h, name: "u\(i)", dims: c.dims, into: &g)
        }
        var y = try conv(net.output, h, name: "out", into: &g)
        if c.probabilistic {
            let n = c.outChannels
            let axis = g.int64s("head.axis", [1])
            var mean = g.node("Slice", [y, g.int64s("head.mean_start", [0]), g.int64s("head.mean_end", [n]), axis], name: "head.mean")
            if c.residual { mean = g.node("Add", [mean, input], name: "head.residual") }
            let logScale = g.node("Slice", [y, g.int64s("head.scale_start", [n]), g.int64s("head.scale_end", [2 * n]), axis],
                                  name: "head.log_scale")
            let scale = g.node("Exp", [logScale], name: "head.scale")
            y = g.node("Concat", [mean, scale], [ONNXGraph.int("axis", 1)], name: "head")
        } else if c.residual {
            y = g.node("Add", [y, input], name: "residual")
        }
        return y
    }

    static func sequential(_ s: Sequential, _ x: String, name: String, dims: Int, into g: inout ONNXGraph) throws -> String {
        var h = x
        for (k, layer) in s.layers.enumerated() {
            guard let b = layer as? ConvBlock else {
                throw ExportError(path: name, reason: "layer \(k) is a \(type(of: layer)), which the ONNX export does not know")
            }
            h = try block(b, h, name: "\(name).\(k)", dims: dims, into: &g)
        }
        return h
    }

    /// Convolution, normalization and activation of a `ConvBlock` (dropout is the identity here).
    static func block(_ b: ConvBlock, _ x: String, name: String, dims: Int, into g: inout ONNXGraph) throws -> String {
        var h: String
        if let c = b.conv as? Conv {
            h = try conv(c, x, name: name + ".conv", into: &g)
        } else if let t = b.conv as? ConvTranspose {
            var attributes = [ONNXGraph.ints("kernel_shape", t.kernel), ONNXGraph.ints("strides", t.stride),
                              ONNXGraph.ints("pads", t.padding + t.padding), ONNXGraph.ints("dilations", t.dilation)]
            if t.outputPadding.contains(where: { $0 != 0 }) { attributes.append(ONNXGraph.ints("output_padding", t.outputPadding)) }
            var inputs = [x, g.weight(name + ".conv.weight", t.weight.value)]
            if let bias = t.bias { inputs.append(g.weight(name + ".conv.bias", bias.value)) }
            h = g.node("ConvTranspose", inputs, attributes, name: name + ".conv")
        } else {
            throw ExportError(path: name, reason: "convolution of type \(type(of: b.conv)) is not exportable")
        }
        if let norm = b.norm {
            h = try normalization(norm, h, name: name + "." + b.normName, dims: dims, into: &g)
        }
        return try activation(b.activation, h, name: name + ".act", into: &g)
    }

    static func conv(_ c: Conv, _ x: String, name: String, into g: inout ONNXGraph) throws -> String {
        var inputs = [x, g.weight(name + ".weight", c.weight.value)]
        if let bias = c.bias { inputs.append(g.weight(name + ".bias", bias.value)) }
        return g.node("Conv", inputs, [ONNXGraph.ints("kernel_shape", c.kernel), ONNXGraph.ints("strides", c.stride),
                                       ONNXGraph.ints("pads", c.padding + c.padding), ONNXGraph.ints("dilations", c.dilation)],
                      name: name)
    }

    static func normalization(_ layer: any Layer, _ x: String, name: String, dims: Int, into g: inout ONNXGraph) throws -> String {
        func affine(_ w: Variable?, _ b: Variable?, channels: Int) -> (String, String) {
            (g.weight(name + ".weight", w?.value ?? Tensor(ones: [channels])),
             g.weight(name + ".bias", b?.value ?? Tensor(zeros: [channels])))
        }
        switch layer {
        case let bn as BatchNorm:
            let (w, b) = affine(bn.weight, bn.bias, channels: bn.channels)
            let mean = g.weight(name + ".running_mean", bn.statistics.mean)
            let variance = g.weight(name + ".running_var", bn.statistics.variance)
            return g.node("BatchNormalization", [x, w, b, mean, variance], [ONNXGraph.float("epsilon", bn.eps)], name: name)
        case let n as InstanceNorm:
            let (w, b) = affine(n.weight, n.bias, channels: n.channels)
            return g.node("InstanceNormalization", [x, w, b], [ONNXGraph.float("epsilon", n.eps)], name: name)
        case let n as GroupNorm:
            // (x − mean) / √(var + eps) over each group of channels and all positions, then
            // the per-channel affine map.
            let shape = g.node("Shape", [x], name: name + ".shape")
            let grouped = g.node("Reshape", [x, g.int64s(name + ".groups", [0, n.groups, -1])], name: name + ".grouped")
            let axes = ONNXGraph.ints("axes", [2])
            let mean = g.node("ReduceMean", [grouped], [axes, ONNXGraph.int("keepdims", 1)], name: name + ".mean")
            let centred = g.node("Sub", [grouped, mean], name: name + ".centred")
            let square = g.node("Mul", [centred, centred], name: name + ".square")
            let variance = g.node("ReduceMean", [square], [axes, ONNXGraph.int("keepdims", 1)], name: name + ".var")
            let eps = try g.weight(name + ".eps", shape: [], [n.eps])
            let std = g.node("Sqrt", [g.node("Add", [variance, eps], name: name + ".var_eps")], name: name + ".std")
            let normalized = g.node("Div", [centred, std], name: name + ".normalized")
            let back = g.node("Reshape", [normalized, shape], name: name + ".ungrouped")
            let perChannel = [n.channels] + [Int](repeating: 1, count: dims)
            let w = g.weight(name + ".weight", try (n.weight?.value ?? Tensor(ones: [n.channels])).reshaped(perChannel))
            let b = g.weight(name + ".bias", try (n.bias?.value ?? Tensor(zeros: [n.channels])).reshaped(perChannel))
            return g.node("Add", [g.node("Mul", [back, w], name: name + ".scaled"), b], name: name)
        default:
            throw ExportError(path: name, reason: "normalization \(type(of: layer)) is not exportable")
        }
    }

    static func activation(_ a: Activation, _ x: String, name: String, into g: inout ONNXGraph) throws -> String {
        switch a {
        case .relu: return g.node("Relu", [x], name: name)
        case .leakyReLU: return g.node("LeakyRelu", [x], [ONNXGraph.float("alpha", 0.01)], name: name)
        case .sigmoid: return g.node("Sigmoid", [x], name: name)
        case .tanh: return g.node("Tanh", [x], name: name)
        case .identity: return x
        case .silu: return g.node("Mul", [x, g.node("Sigmoid", [x], name: name + ".sigmoid")], name: name)
        case .gelu:
            let scaled = g.node("Mul", [x, try g.weight(name + ".rsqrt2", shape: [], [0.70710678118654752])], name: name + ".scaled")
            let erf = g.node("Erf", [scaled], name: name + ".erf")
            let onePlus = g.node("Add", [erf, try g.weight(name + ".one", shape: [], [1])], name: name + ".one_plus")
            let half = g.node("Mul", [x, try g.weight(name + ".half", shape: [], [0.5])], name: name + ".half")
            return g.node("Mul", [half, onePlus], name: name)
        }
    }

    /// N2V2's max-blur pooling: 2× max pool with stride 1, reflect padding of 1, then the
    /// binomial [1, 2, 1]/4 filter on every spatial axis as a depthwise convolution with stride 2.
    static func maxBlurPool(_ x: String, channels: Int, dims: Int, name: String, into g: inout ONNXGraph) throws -> String {
        let k2 = [Int](repeating: 2, count: dims), ones = [Int](repeating: 1, count: dims)
        let maxed = g.node("MaxPool", [x], [ONNXGraph.ints("kernel_shape", k2), ONNXGraph.ints("strides", ones)], name: name + ".max")
        let pads = g.int64s(name + ".pads", [0, 0] + ones + [0, 0] + ones)
        let padded = g.node("Pad", [maxed, pads], [ONNXGraph.string("mode", "reflect")], name: name + ".pad")
        let taps: [Float] = [0.25, 0.5, 0.25]
        var kernel: [Float] = [1]
        for _ in 0..<dims { kernel = kernel.flatMap { a in taps.map { a * $0 } } }
        let weight = try g.weight(name + ".blur", shape: [channels, 1] + [Int](repeating: 3, count: dims),
                              (0..<channels).flatMap { _ in kernel })
        return g.node("Conv", [padded, weight], [ONNXGraph.ints("kernel_shape", [Int](repeating: 3, count: dims)),
                                                 ONNXGraph.ints("strides", k2), ONNXGraph.int("group", channels)],
                      name: name + ".blur")
    }
}
