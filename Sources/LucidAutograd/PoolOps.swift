import LucidCore

/// Differentiable max pooling (no padding; `stride` defaults to `kernel`).
public func maxPool(_ x: Variable, kernel: [Int], stride: [Int]? = nil) throws -> Variable {
    let (y, indices) = try maxPoolWithIndices(x.value, kernel: kernel, stride: stride)
    let shape = x.shape
    return Variable.record(y, parents: [x], op: "maxPool") { g in
        [try maxPoolBackward(g, indices: indices, inputShape: shape)]
    }
}

/// Differentiable average pooling (no padding; `stride` defaults to `kernel`).
public func avgPool(_ x: Variable, kernel: [Int], stride: [Int]? = nil) throws -> Variable {
    let y = try LucidCore.avgPool(x.value, kernel: kernel, stride: stride)
    let shape = x.shape
    return Variable.record(y, parents: [x], op: "avgPool") { g in
        [try avgPoolBackward(g, inputShape: shape, kernel: kernel, stride: stride)]
    }
}

/// Differentiable anti-aliased downsampling (binomial `[1, 2, 1]/4` per axis, reflect pad 1, then `stride`).
public func blurPool(_ x: Variable, stride: Int = 2) throws -> Variable {
    let y = try LucidCore.blurPool(x.value, stride: stride)
    let shape = x.shape
    return Variable.record(y, parents: [x], op: "blurPool") { g in
        [try blurPoolBackward(g, inputShape: shape, stride: stride)]
    }
}

/// Differentiable N2V2 max-blur pooling: max pool (kernel 2, stride 1), then `blurPool` (stride 2).
public func maxBlurPool(_ x: Variable) throws -> Variable {
    try blurPool(maxPool(x, kernel: [2], stride: [1]), stride: 2)
}
