/// Convolutions on tensors (1D `NCL`, 2D `NCHW`, 3D `NCDHW`, chosen by the input rank), with
/// PyTorch weight layouts and semantics. A one-element `stride`/`padding`/`dilation` applies to
/// every spatial axis. These are the forward and backward kernels of LucidAutograd's `conv`.

/// Per-axis parameters of a convolution after validation.
struct ConvParameters {
    var stride: [Int]
    var padding: [Int]
    var dilation: [Int]

    /// Expands one-element lists to `spatial` axes and checks signs; `op` names the caller.
    init(op: String, spatial: Int, stride: [Int], padding: [Int], dilation: [Int]) throws {
        func expand(_ a: [Int], _ name: String) throws -> [Int] {
            if a.count == 1 { return [Int](repeating: a[0], count: spatial) }
            guard a.count == spatial else {
                throw TensorError.invalidArgument(op: op, detail: "\(name) \(a) needs 1 or \(spatial) entries for \(spatial) spatial axes")
            }
            return a
        }
        self.stride = try expand(stride, "stride")
        self.padding = try expand(padding, "padding")
        self.dilation = try expand(dilation, "dilation")
        guard self.stride.allSatisfy({ $0 > 0 }) else {
            throw TensorError.invalidArgument(op: op, detail: "stride \(stride) must be positive")
        }
        guard self.padding.allSatisfy({ $0 >= 0 }) else {
            throw TensorError.invalidArgument(op: op, detail: "padding \(padding) must not be negative")
        }
        guard self.dilation.allSatisfy({ $0 > 0 }) else {
            throw TensorError.invalidArgument(op: op, detail: "dilation \(dilation) must be positive")
        }
    }
}

/// Checks a convolution of `x` (`[B, Cin, spatial…]`) by `w` (`[Cout, Cin, k…]`) and returns its geometry.
func convGeometry(op: String, input x: [Int], weight w: [Int], stride: [Int], padding: [Int],
                  dilation: [Int]) throws -> ConvGeometry {
    guard (3...5).contains(x.count) else {
        throw TensorError.invalidArgument(op: op, detail: "input \(x) must have rank 3 (NCL), 4 (NCHW) or 5 (NCDHW)")
    }
    guard w.count == x.count else {
        throw TensorError.shapeMismatch(op: op, detail: "input \(x) and weight \(w) must have the same rank")
    }
    guard w[1] == x[1] else {
        throw TensorError.shapeMismatch(op: op, detail: "input \(x) has \(x[1]) channels but weight \(w) expects \(w[1])")
    }
    guard w.allSatisfy({ $0 > 0 }), x.allSatisfy({ $0 > 0 }) else {
        throw TensorError.invalidArgument(op: op, detail: "input \(x) and weight \(w) must have positive extents")
    }
    let sp = x.count - 2
    let p = try ConvParameters(op: op, spatial: sp, stride: stride, padding: padding, dilation: dilation)
    for i in 0..<sp {
        let span = p.dilation[i] * (w[i + 2] - 1) + 1
        guard span <= x[i + 2] + 2 * p.padding[i] else {
            throw TensorError.invalidArgument(op: op, detail: "kernel \(Array(w.dropFirst(2))) with dilation \(p.dilation) spans more than the padded input \(x) (padding \(p.padding)) on spatial axis \(i)")
        }
    }
    return ConvGeometry(batch: x[0], cin: x[1], cout: w[0], spatialIn: Array(x.dropFirst(2)),
                        kernel: Array(w.dropFirst(2)), stride: p.stride, padding: p.padding, dilation: p.dilation)
}

extension ConvGeometry {
    /// `[B, C, spatial…]` of the output, with as many spatial axes as `rank − 2`.
    func outputShape(rank: Int) -> [Int] { [batch, cout] + Array([oD, oH, oW].suffix(rank - 2)) }
}

func checkBias(op: String, _ bias: Tensor?, channels: Int, weight: [Int]) throws {
    if let bias, bias.shape != [channels] {
        throw TensorError.shapeMismatch(op: op, detail: "bias \(bias.shape) must be [\(channels)] for weight \(weight)")
    }
}

/// Convolution (cross-correlation, like PyTorch) of `x` `[B, Cin, spatial…]` with `weight`
/// `[Cout, Cin, k…]`, plus `bias` `[Cout]`.
public func conv(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: [Int] = [1], padding: [Int] = [0],
                 dilation: [Int] = [1]) throws -> Tensor {
    let g = try convGeometry(op: "conv", input: x.shape, weight: weight.shape, stride: stride, padding: padding, dilation: dilation)
    try checkBias(op: "conv", bias, channels: g.cout, weight: weight.shape)
    var y = Tensor(uninitialized: g.outputShape(rank: x.rank))
    y.withUnsafeMutableBufferPointer { yb in
        ConvKernels.forward(g, x: x.storage.base, weight: weight.storage.base, bias: bias.map { UnsafePointer($0.storage.base) },
                            y: yb.baseAddress!)
    }
    return y
}

/// Gradient of `conv` with respect to its input of shape `inputShape`, given the output gradient.
public func convBackwardInput(_ gradOutput: Tensor, weight: Tensor, inputShape: [Int], stride: [Int] = [1],
                              padding: [Int] = [0], dilation: [Int] = [1]) throws -> Tensor {
    let op = "convBackwardInput"
    let g = try convGeometry(op: op, input: inputShape, weight: weight.shape, stride: stride, padding: padding, dilation: dilation)
    guard gradOutput.shape == g.outputShape(rank: inputShape.count) else {
        throw TensorError.shapeMismatch(op: op, detail: "gradient \(gradOutput.shape) does not match the output \(g.outputShape(rank: inputShape.count)) of input \(inputShape) and weight \(weight.shape)")
    }
    var dx = Tensor(uninitialized: inputShape)
    dx.withUnsafeMutableBufferPointer { d in
        ConvKernels.backwardData(g, dy: gradOutput.storage.base, weight: weight.storage.base, dx: d.baseAddress!)
    }
    return dx
}

/// Gradient of `conv` with respect to its weight of shape `weightShape`.
public func convBackwardWeight(_ gradOutput: Tensor, input: Tensor, weightShape: [Int], stride: [Int] = [1],
                               padding: [Int] = [0], dilation: [Int] = [1]) throws -> Tensor {
    let op = "convBackwardWeight"
    let g = try convGeometry(op: op, input: input.shape, weight: weightShape, stride: stride, padding: padding, dilation: dilation)
    guard gradOutput.shape == g.outputShape(rank: input.rank) else {
        throw TensorError.shapeMismatch(op: op, detail: "gradient \(gradOutput.shape) does not match the output \(g.outputShape(rank: input.rank)) of input \(input.shape) and weight \(weightShape)")
    }
    var dw = Tensor(uninitialized: weightShape)
    dw.withUnsafeMutableBufferPointer { d in
        ConvKernels.backwardWeight(g, dy: gradOutput.storage.base, x: input.storage.base, dw: d.baseAddress!)
    }
    return dw
}

/// Gradient of a per-channel bias: the sum of `gradOutput` over every axis but 1.
public func convBackwardBias(_ gradOutput: Tensor) throws -> Tensor {
    guard gradOutput.rank >= 2 else {
        throw TensorError.invalidArgument(op: "convBackwardBias", detail: "gradient \(gradOutput.shape) needs a channel axis")
    }
    let s = gradOutput.shape
    var db = Tensor(uninitialized: [s[1]])
    db.withUnsafeMutableBufferPointer { d in
        ConvKernels.biasGradient(gradOutput.storage.base, batch: s[0], channels: s[1],
                                 plane: s.dropFirst(2).reduce(1, *), into: d.baseAddress!)
    }
    return db
}

/// Shape of a transposed convolution's output, after validating its arguments; also returns
/// the geometry of the equivalent forward convolution (output → input).
func convTransposeGeometry(input x: [Int], weight w: [Int], stride: [Int], padding: [Int],
                           outputPadding: [Int], dilation: [Int]) throws -> (shape: [Int], geometry: ConvGeometry) {
    let op = "convTranspose"
    guard (3...5).contains(x.count) else {
        throw TensorError.invalidArgument(op: op, detail: "input \(x) must have rank 3 (NCL), 4 (NCHW) or 5 (NCDHW)")
    }
    guard w.count == x.count else {
        throw TensorError.shapeMismatch(op: op, detail: "input \(x) and weight \(w) must have the same rank")
    }
    guard w[0] == x[1] else {
        throw TensorError.shapeMismatch(op: op, detail: "input \(x) has \(x[1]) channels but weight \(w) (layout [Cin, Cout, k…]) expects \(w[0])")
    }
    let sp = x.count - 2
    let p = try ConvParameters(op: op, spatial: sp, stride: stride, padding: padding, dilation: dilation)
    let outPad: [Int]
    if outputPadding.count == 1 { outPad = [Int](repeating: outputPadding[0], count: sp) } else { outPad = outputPadding }
    guard outPad.count == sp, zip(outPad, p.stride).allSatisfy({ $0 >= 0 && $0 < $1 }) else {
        throw TensorError.invalidArgument(op: op, detail: "outputPadding \(outputPadding) must have 1 or \(sp) entries in 0..<stride \(p.stride)")
    }
    var out = [x[0], w[1]]
    for i in 0..<sp {
        out.append((x[i + 2] - 1) * p.stride[i] - 2 * p.padding[i] + p.dilation[i] * (w[i + 2] - 1) + outPad[i] + 1)
    }
    guard out.allSatisfy({ $0 > 0 }) else {
        throw TensorError.invalidArgument(op: op, detail: "input \(x) with weight \(w), padding \(p.padding) gives an empty output \(out)")
    }
    let g = try convGeometry(op: op, input: out, weight: w, stride: p.stride, padding: p.padding, dilation: p.dilation)
    return (out, g)
}

/// Transposed convolution (the adjoint of `conv`): `x` `[B, Cin, spatial…]`, `weight`
/// `[Cin, Cout, k…]` (PyTorch layout); output extent `(n−1)s − 2p + d(k−1) + outputPadding + 1`.
public func convTranspose(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: [Int] = [1], padding: [Int] = [0],
                          outputPadding: [Int] = [0], dilation: [Int] = [1]) throws -> Tensor {
    let (shape, g) = try convTransposeGeometry(input: x.shape, weight: weight.shape, stride: stride, padding: padding,
                                               outputPadding: outputPadding, dilation: dilation)
    try checkBias(op: "convTranspose", bias, channels: shape[1], weight: weight.shape)
    var y = Tensor(uninitialized: shape)
    y.withUnsafeMutableBufferPointer { d in
        ConvKernels.backwardData(g, dy: x.storage.base, weight: weight.storage.base, dx: d.baseAddress!)
        if let bias {
            let plane = shape.dropFirst(2).reduce(1, *)
            let c = shape[1]
            Threads.parallelFor(shape[0] * c) { i in
                let v = bias.storage.base[i % c]
                let p = d.baseAddress! + i * plane
                for j in 0..<plane { p[j] += v }
            }
        }
    }
    return y
}
