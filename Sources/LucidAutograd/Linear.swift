import LucidCore

/// Batched matrix product of variables (see `matmul(_:_:transposeA:transposeB:)` on tensors);
/// gradients are summed over broadcast batch axes.
public func matmul(_ a: Variable, _ b: Variable, transposeA: Bool = false, transposeB: Bool = false) throws -> Variable {
    let x = a.value, y = b.value, ga = a.requiresGrad, gb = b.requiresGrad
    let out = try matmul(x, y, transposeA: transposeA, transposeB: transposeB)
    return Variable.record(out, parents: [a, b], op: "matmul") { g in
        var da: Tensor?, db: Tensor?
        switch (transposeA, transposeB) {
        case (false, false):
            if ga { da = try matmul(g, y, transposeB: true) }
            if gb { db = try matmul(x, g, transposeA: true) }
        case (true, false):
            if ga { da = try matmul(y, g, transposeB: true) }
            if gb { db = try matmul(x, g) }
        case (false, true):
            if ga { da = try matmul(g, y) }
            if gb { db = try matmul(g, x, transposeA: true) }
        case (true, true):
            if ga { da = try matmul(y, g, transposeA: true, transposeB: true) }
            if gb { db = try matmul(g, x, transposeA: true, transposeB: true) }
        }
        return [try da.map { try Tensor.reduce($0, toShape: x.shape) },
                try db.map { try Tensor.reduce($0, toShape: y.shape) }]
    }
}

/// Fully connected layer `x · weightᵀ + bias` with PyTorch layouts: `x` is `[..., in]`,
/// `weight` is `[out, in]`, `bias` is `[out]`; the result is `[..., out]`.
public func linear(_ x: Variable, weight: Variable, bias: Variable?) throws -> Variable {
    let xs = x.shape, ws = weight.shape
    guard ws.count == 2, let inF = xs.last, inF == ws[1] else {
        throw TensorError.shapeMismatch(op: "linear", detail: "input \(xs) vs weight \(ws) (expected [out, \(xs.last ?? 0)])")
    }
    let outF = ws[0]
    if let bias, bias.shape != [outF] {
        throw TensorError.shapeMismatch(op: "linear", detail: "bias \(bias.shape) vs weight \(ws) (expected [\(outF)])")
    }
    let rows = xs.dropLast().reduce(1, *)
    let x2 = try x.value.reshaped([rows, inF]), w = weight.value
    var y = try matmul(x2, w, transposeB: true)
    if let bias { y = try y + bias.value }
    let gx = x.requiresGrad, gw = weight.requiresGrad, hasBias = bias != nil, gbias = bias?.requiresGrad ?? false
    let parents = [x, weight] + (bias.map { [$0] } ?? [])
    return Variable.record(try y.reshaped(Array(xs.dropLast()) + [outF]), parents: parents, op: "linear") { g in
        let g2 = try g.reshaped([rows, outF])
        var grads: [Tensor?] = [
            gx ? try matmul(g2, w).reshaped(xs) : nil,
            gw ? try matmul(g2, x2, transposeA: true) : nil,
        ]
        if hasBias { grads.append(gbias ? try g2.sum(axes: [0]) : nil) }
        return grads
    }
}
