import Foundation
import LucidCore

/// Builds an ONNX graph node by node: fresh value names, float initializers from tensors,
/// int64 constants, and typed attributes (protobuf messages of `onnx.pb.swift`).
struct ONNXGraph {
    private(set) var nodes: [Onnx_NodeProto] = []
    private(set) var initializers: [Onnx_TensorProto] = []
    private var used: [String: Int] = [:]

    /// A name not used before, from `hint` (`d0.0.conv` → `d0.0.conv`, then `d0.0.conv_1`, …).
    mutating func fresh(_ hint: String) -> String {
        let n = used[hint, default: 0]
        used[hint] = n + 1
        return n == 0 ? hint : "\(hint)_\(n)"
    }

    /// A float initializer holding `tensor` (little-endian raw data); returns its name.
    mutating func weight(_ name: String, _ tensor: Tensor) -> String {
        var t = Onnx_TensorProto()
        t.name = fresh(name)
        t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        t.dims = tensor.shape.map(Int64.init)
        t.rawData = tensor.withUnsafeBufferPointer { Data(buffer: $0) }
        initializers.append(t)
        return t.name
    }

    /// A float initializer of the given shape and values.
    mutating func weight(_ name: String, shape: [Int], _ values: [Float]) throws -> String {
        weight(name, try Tensor(shape: shape, scalars: values))
    }

    /// An int64 initializer (shapes, pads, axes, slice bounds).
    mutating func int64s(_ name: String, _ values: [Int]) -> String {
        var t = Onnx_TensorProto()
        t.name = fresh(name)
        t.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        t.dims = [Int64(values.count)]
        t.int64Data = values.map(Int64.init)
        initializers.append(t)
        return t.name
    }

    /// Appends a node `op(inputs)` and returns the name of its (single) output.
    @discardableResult
    mutating func node(_ op: String, _ inputs: [String], _ attributes: [Onnx_AttributeProto] = [], name hint: String) -> String {
        var n = Onnx_NodeProto()
        n.opType = op
        n.name = fresh(hint + "/" + op)
        n.input = inputs
        n.output = [fresh(hint)]
        n.attribute = attributes
        nodes.append(n)
        return n.output[0]
    }

    static func ints(_ name: String, _ values: [Int]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .ints
        a.ints = values.map(Int64.init)
        return a
    }

    static func int(_ name: String, _ value: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .int
        a.i = Int64(value)
        return a
    }

    static func float(_ name: String, _ value: Float) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .float
        a.f = value
        return a
    }

    static func string(_ name: String, _ value: String) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .string
        a.s = Data(value.utf8)
        return a
    }

    /// A float tensor value `[dims…]`; string entries are symbolic (dynamic) dimensions.
    static func valueInfo(_ name: String, dims: [ONNXDimension]) -> Onnx_ValueInfoProto {
        var v = Onnx_ValueInfoProto()
        v.name = name
        var tensorType = Onnx_TypeProto.Tensor()
        tensorType.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        tensorType.shape.dim = dims.map { d in
            var dim = Onnx_TensorShapeProto.Dimension()
            switch d {
            case .fixed(let n): dim.dimValue = Int64(n)
            case .named(let s): dim.dimParam = s
            }
            return dim
        }
        v.type.tensorType = tensorType
        return v
    }
}

/// A dimension of a graph input or output: a fixed extent or a named, dynamic one.
enum ONNXDimension: Equatable {
    case fixed(Int)
    case named(String)
}
