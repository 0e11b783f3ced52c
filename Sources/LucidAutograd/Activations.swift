import Foundation
import LucidCore

/// `max(x, 0)`.
public func relu(_ x: Variable) -> Variable {
    let v = x.value
    return Variable.record(v.relu(), parents: [x], op: "relu") { g in
        [try Tensor.leakyReLUBackward(g, input: v)]
    }
}

/// `x` for positive `x`, else `slope · x`.
public func leakyReLU(_ x: Variable, slope: Float = 0.01) -> Variable {
    let v = x.value
    return Variable.record(v.leakyReLU(slope: slope), parents: [x], op: "leakyReLU") { g in
        [try Tensor.leakyReLUBackward(g, input: v, slope: slope)]
    }
}

/// `x · sigmoid(x)`.
public func silu(_ x: Variable) -> Variable {
    let v = x.value
    return Variable.record(v.silu(), parents: [x], op: "silu") { g in [try Tensor.siluBackward(g, input: v)] }
}

/// Exact GELU `x · Φ(x)`.
public func gelu(_ x: Variable) -> Variable {
    let v = x.value
    return Variable.record(v.gelu(), parents: [x], op: "gelu") { g in
        [try g.zipMap(v, op: "gelu backward") { g, x in
            let cdf = 0.5 * (1 + Foundation.erf(x * 0.70710678118654752))
            let pdf = Foundation.exp(-0.5 * x * x) * 0.39894228040143268
            return g * (cdf + x * pdf)
        }]
    }
}

/// `1 / (1 + e⁻ˣ)`.
public func sigmoid(_ x: Variable) -> Variable {
    let out = x.value.sigmoid()
    return Variable.record(out, parents: [x], op: "sigmoid") { g in
        [try g.zipMap(out, op: "sigmoid backward") { g, s in g * s * (1 - s) }]
    }
}

/// Hyperbolic tangent.
public func tanh(_ x: Variable) -> Variable {
    let out = x.value.tanh()
    return Variable.record(out, parents: [x], op: "tanh") { g in
        [try g.zipMap(out, op: "tanh backward") { g, t in g * (1 - t * t) }]
    }
}

/// Softmax along `axis`.
public func softmax(_ x: Variable, axis: Int) throws -> Variable {
    let y = try x.value.softmax(axis: axis)
    return Variable.record(y, parents: [x], op: "softmax") { g in
        // dx = y ⊙ (g − Σ_axis g ⊙ y)
        let gy = try g * y
        return [try gy - y * gy.sum(axes: [axis], keepDims: true)]
    }
}

/// Log-softmax along `axis`.
public func logSoftmax(_ x: Variable, axis: Int) throws -> Variable {
    let y = try x.value.logSoftmax(axis: axis)
    return Variable.record(y, parents: [x], op: "logSoftmax") { g in
        // dx = g − softmax ⊙ Σ_axis g
        return [try g - y.exp() * g.sum(axes: [axis], keepDims: true)]
    }
}
