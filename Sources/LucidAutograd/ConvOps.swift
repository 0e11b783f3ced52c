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
