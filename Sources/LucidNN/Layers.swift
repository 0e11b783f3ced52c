import LucidAutograd
import LucidCore

/// Expands a 1-element per-axis argument to `dims` entries and checks it.
func perAxis(_ v: [Int], dims: Int, name: String, op: String, minimum: Int) throws -> [Int] {
    let out = v.count == 1 ? Array(repeating: v[0], count: dims) : v
    guard out.count == dims, out.allSatisfy({ $0 >= minimum }) else {
        throw TensorError.invalidArgument(op: op, detail: "\(name) \(v) must have 1 or \(dims) entries, each ≥ \(minimum)")
    }
    return out
}

/// Checks that `x` is `[N, channels, spatial…]` with `dims` spatial axes.
func checkInput(_ x: Variable, dims: Int, channels: Int, op: String) throws {
    guard x.shape.count == dims + 2, x.shape[1] == channels else {
        throw TensorError.shapeMismatch(op: op, detail: "expected input [N, \(channels)\(String(repeating: ", _", count: dims))], got \(x.shape)")
    }
}

/// The checked per-axis settings and the initialized parameters of `Conv` and `ConvTranspose`:
/// weight of `weightShape(kernel)` and bias initialized as PyTorch does (uniform ±1/√fanIn).
struct ConvSetup {
    let kernel, stride, padding, dilation: [Int]
    let weight: Variable
    let bias: Variable?

    init(op: String, dims: Int, inChannels: Int, outChannels: Int, kernel: [Int], stride: [Int], padding: [Int],
         dilation: [Int], bias: Bool, weightShape: ([Int]) -> [Int], rng: inout RandomGenerator) throws {
        guard (1...3).contains(dims), inChannels > 0, outChannels > 0 else {
            throw TensorError.invalidArgument(op: op, detail: "dims \(dims) must be 1…3 and channels (\(inChannels), \(outChannels)) positive")
        }
        self.kernel = try perAxis(kernel, dims: dims, name: "kernel", op: op, minimum: 1)
        self.stride = try perAxis(stride, dims: dims, name: "stride", op: op, minimum: 1)
        self.padding = try perAxis(padding, dims: dims, name: "padding", op: op, minimum: 0)
        self.dilation = try perAxis(dilation, dims: dims, name: "dilation", op: op, minimum: 1)
        let shape = weightShape(self.kernel)
        weight = Variable(Initializers.kaimingUniform(shape, rng: &rng), requiresGrad: true)
        self.bias = bias ? Variable(Initializers.bias(count: outChannels, weightShape: shape, rng: &rng), requiresGrad: true) : nil
    }
}

/// An N-d convolution layer (`nn.Conv1d/2d/3d`): weight `[Cout, Cin, k…]`, optional bias,
/// both initialized as PyTorch does (uniform ±1/√fanIn from `rng`).
public final class Conv: Layer {
    public let dims: Int
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: [Int]
    public let stride: [Int]
    public let padding: [Int]
    public let dilation: [Int]
    /// `[outChannels, inChannels, kernel…]`.
    public let weight: Variable
    /// `[outChannels]`, or nil.
    public let bias: Variable?

    /// - Parameters: per-axis arguments take 1 entry (all axes) or `dims` entries.
    public init(dims: Int, inChannels: Int, outChannels: Int, kernel: [Int], stride: [Int] = [1],
                padding: [Int] = [0], dilation: [Int] = [1], bias: Bool = true,
                rng: inout RandomGenerator) throws {
        let s = try ConvSetup(op: "Conv\(dims)d", dims: dims, inChannels: inChannels, outChannels: outChannels,
                              kernel: kernel, stride: stride, padding: padding, dilation: dilation, bias: bias,
                              weightShape: { [outChannels, inChannels] + $0 }, rng: &rng)
        self.dims = dims
        self.inChannels = inChannels
        self.outChannels = outChannels
        (self.kernel, self.stride, self.padding, self.dilation) = (s.kernel, s.stride, s.padding, s.dilation)
        (weight, self.bias) = (s.weight, s.bias)
    }

    /// Square/cubic kernel convenience: `Conv(dims: 2, inChannels: 1, outChannels: 32, kernel: 3, padding: 1, rng: &rng)`.
    public convenience init(dims: Int, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1,
                            padding: Int = 0, dilation: Int = 1, bias: Bool = true, rng: inout RandomGenerator) throws {
        try self.init(dims: dims, inChannels: inChannels, outChannels: outChannels, kernel: [kernel], stride: [stride],
                      padding: [padding], dilation: [dilation], bias: bias, rng: &rng)
    }

    public var ownParameters: [(name: String, parameter: Variable)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func callAsFunction(_ x: Variable) throws -> Variable {
        try checkInput(x, dims: dims, channels: inChannels, op: "Conv\(dims)d")
        return try conv(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation)
    }
}

/// An N-d transposed convolution (`nn.ConvTranspose1d/2d/3d`): weight `[Cin, Cout, k…]`
/// (PyTorch layout; fan-in is `Cout·∏k`, as PyTorch computes it).
public final class ConvTranspose: Layer {
    public let dims: Int
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: [Int]
    public let stride: [Int]
    public let padding: [Int]
    public let outputPadding: [Int]
    public let dilation: [Int]
    /// `[inChannels, outChannels, kernel…]`.
    public let weight: Variable
    /// `[outChannels]`, or nil.
    public let bias: Variable?

    public init(dims: Int, inChannels: Int, outChannels: Int, kernel: [Int], stride: [Int] = [1],
                padding: [Int] = [0], outputPadding: [Int] = [0], dilation: [Int] = [1], bias: Bool = true,
                rng: inout RandomGenerator) throws {
        let op = "ConvTranspose\(dims)d"
        let s = try ConvSetup(op: op, dims: dims, inChannels: inChannels, outChannels: outChannels,
                              kernel: kernel, stride: stride, padding: padding, dilation: dilation, bias: bias,
                              weightShape: { [inChannels, outChannels] + $0 }, rng: &rng)
        self.dims = dims
        self.inChannels = inChannels
        self.outChannels = outChannels
        (self.kernel, self.stride, self.padding, self.dilation) = (s.kernel, s.stride, s.padding, s.dilation)
        self.outputPadding = try perAxis(outputPadding, dims: dims, name: "outputPadding", op: op, minimum: 0)
        (weight, self.bias) = (s.weight, s.bias)
    }

    /// Square/cubic kernel convenience.
    public convenience init(dims: Int, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1,
                            padding: Int = 0, outputPadding: Int = 0, bias: Bool = true, rng: inout RandomGenerator) throws {
        try self.init(dims: dims, inChannels: inChannels, outChannels: outChannels, kernel: [kernel], stride: [stride],
                      padding: [padding], outputPadding: [outputPadding], bias: bias, rng: &rng)
    }

    public var ownParameters: [(name: String, parameter: Variable)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func callAsFunction(_ x: Variable) throws -> Variable {
        try checkInput(x, dims: dims, channels: inChannels, op: "ConvTranspose\(dims)d")
        return try convTranspose(x, weight: weight, bias: bias, stride: stride, padding: padding,
                                 outputPadding: outputPadding, dilation: dilation)
    }
}

/// A fully connected layer (`nn.Linear`): `x · Wᵀ + b` over the last axis, W `[out, in]`.
public final class Linear: Layer {
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: Variable
    public let bias: Variable?

    public init(inFeatures: Int, outFeatures: Int, bias: Bool = true, rng: inout RandomGenerator) throws {
        guard inFeatures > 0, outFeatures > 0 else {
            throw TensorError.invalidArgument(op: "Linear", detail: "features (\(inFeatures), \(outFeatures)) must be positive")
        }
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        let shape = [outFeatures, inFeatures]
        weight = Variable(Initializers.kaimingUniform(shape, rng: &rng), requiresGrad: true)
        self.bias = bias ? Variable(Initializers.bias(count: outFeatures, weightShape: shape, rng: &rng), requiresGrad: true) : nil
    }

    public var ownParameters: [(name: String, parameter: Variable)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func callAsFunction(_ x: Variable) throws -> Variable {
        guard x.shape.last == inFeatures else {
            throw TensorError.shapeMismatch(op: "Linear", detail: "expected input [..., \(inFeatures)], got \(x.shape)")
        }
        return try linear(x, weight: weight, bias: bias)
    }
}

/// Layers applied in order; children are named `"0"`, `"1"`, … as in `nn.Sequential`.
public final class Sequential: Layer {
    public let layers: [any Layer]

    public init(_ layers: [any Layer]) { self.layers = layers }

    public var children: [(name: String, module: any Module)] {
        layers.enumerated().map { (String($0.offset), $0.element as any Module) }
    }

    public func callAsFunction(_ x: Variable) throws -> Variable {
        var h = x
        for l in layers { h = try l(h) }
        return h
    }
}
