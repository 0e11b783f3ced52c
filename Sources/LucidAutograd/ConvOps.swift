import LucidCore

/// Differentiable convolution (1D/2D/3D by the rank of `x`): `x` `[B, Cin, spatial…]`, `weight`
/// `[Cout, Cin, k…]`, optional `bias` `[Cout]`; PyTorch semantics.
public func conv(_ x: Variable, weight: Variable, bias: Variable? = nil, stride: [Int] = [1], padding: [Int] = [0],
                 dilation: [Int] = [1]) throws -> Variable {
    let y = try LucidCore.conv(x.value, weight: weight.value, bias: bias?.value, stride: stride, padding: padding,
                               dilation: dilation)
    let xv = x.value, wv = weight.value
    let needX = x.requiresGrad, needW = weight.requiresGrad, needB = bias?.requiresGrad
    return Variable.record(y, parents: [x, weight] + (bias.map { [$0] } ?? []), op: "conv") { g in
        var grads: [Tensor?] = [
            needX ? try convBackwardInput(g, weight: wv, inputShape: xv.shape, stride: stride, padding: padding, dilation: dilation) : nil,
            needW ? try convBackwardWeight(g, input: xv, weightShape: wv.shape, stride: stride, padding: padding, dilation: dilation) : nil,
        ]
        if let needB { grads.append(needB ? try convBackwardBias(g) : nil) }
        return grads
    }
}

/// `leakyReLU(conv(x, weight, bias), slope)` as one recorded operation (slope 0: ReLU). The
/// activation is applied in place on the convolution output and the backward pass takes its
/// mask from the output, so the pre-activation tensor is never kept: one pass and one
/// activation-sized buffer fewer per layer than the two separate operations.
public func convLeakyReLU(_ x: Variable, weight: Variable, bias: Variable? = nil, stride: [Int] = [1],
                          padding: [Int] = [0], dilation: [Int] = [1], slope: Float) throws -> Variable {
    guard (0..<1).contains(slope) else {
        throw TensorError.invalidArgument(op: "convLeakyReLU", detail: "slope \(slope) must lie in [0, 1)")
    }
    var y = try LucidCore.conv(x.value, weight: weight.value, bias: bias?.value, stride: stride, padding: padding,
                               dilation: dilation)
    y.withUnsafeMutableBufferPointer { b in
        let p = b.baseAddress!
        let k = SIMD16<Float>(repeating: slope), zero = SIMD16<Float>()
        Threads.parallelChunks(b.count, minChunk: 1 << 15) { r in
            var i = r.lowerBound
            while i + 16 <= r.upperBound {
                let v = load16(p, i)
                store16(v.replacing(with: v * k, where: v .< zero), p, i)
                i += 16
            }
            while i < r.upperBound { if p[i] < 0 { p[i] *= slope }; i += 1 }
        }
    }
    let xv = x.value, wv = weight.value, out = y
    let needX = x.requiresGrad, needW = weight.requiresGrad, needB = bias?.requiresGrad
    return Variable.record(y, parents: [x, weight] + (bias.map { [$0] } ?? []), op: "conv+leakyReLU") { g in
        let gy = try Tensor.leakyReLUBackward(g, input: out, slope: slope)
        var grads: [Tensor?] = [
            needX ? try convBackwardInput(gy, weight: wv, inputShape: xv.shape, stride: stride, padding: padding, dilation: dilation) : nil,
            needW ? try convBackwardWeight(gy, input: xv, weightShape: wv.shape, stride: stride, padding: padding, dilation: dilation) : nil,
        ]
        if let needB { grads.append(needB ? try convBackwardBias(gy) : nil) }
        return grads
    }
}

/// Differentiable transposed convolution: `x` `[B, Cin, spatial…]`, `weight` `[Cin, Cout, k…]`
/// (PyTorch layout), optional `bias` `[Cout]`.
public func convTranspose(_ x: Variable, weight: Variable, bias: Variable? = nil, stride: [Int] = [1],
                          padding: [Int] = [0], outputPadding: [Int] = [0], dilation: [Int] = [1]) throws -> Variable {
    let y = try LucidCore.convTranspose(x.value, weight: weight.value, bias: bias?.value, stride: stride,
                                        padding: padding, outputPadding: outputPadding, dilation: dilation)
    let xv = x.value, wv = weight.value
    let needX = x.requiresGrad, needW = weight.requiresGrad, needB = bias?.requiresGrad
    return Variable.record(y, parents: [x, weight] + (bias.map { [$0] } ?? []), op: "convTranspose") { g in
        // The transposed convolution is conv's input gradient, so its gradients are conv
        // forward (for x) and conv's weight gradient with the roles of input and output swapped.
        var grads: [Tensor?] = [
            needX ? try LucidCore.conv(g, weight: wv, stride: stride, padding: padding, dilation: dilation) : nil,
            needW ? try convBackwardWeight(xv, input: g, weightShape: wv.shape, stride: stride, padding: padding, dilation: dilation) : nil,
        ]
        if let needB { grads.append(needB ? try convBackwardBias(g) : nil) }
        return grads
    }
}
