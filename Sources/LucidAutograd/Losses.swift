import Foundation
import LucidCore

/// Requires equal shapes (losses never broadcast silently).
private func checkSameShape(_ a: [Int], _ b: [Int], op: String) throws {
    guard a == b else { throw TensorError.shapeMismatch(op: op, detail: "\(a) vs \(b)") }
}

/// `Σ wᵢ·f(pᵢ, tᵢ) / Σ wᵢ` (weights 1 without `weights`) as a scalar variable; `df` is ∂f/∂p
/// and the target gets −∂f/∂p. An all-zero weight tensor gives a zero loss and zero gradients.
private func pointwiseLoss(_ p: Variable, _ t: Variable, weights: Tensor?, op: String,
                           _ f: @escaping (Float, Float) -> Float, _ df: @escaping (Float, Float) -> Float) throws -> Variable {
    try checkSameShape(p.shape, t.shape, op: op)
    if let weights { try checkSameShape(p.shape, weights.shape, op: op) }
    let pv = p.value, tv = t.value, n = pv.count
    let pp = UnsafePointer(pv.storage.base), tp = UnsafePointer(tv.storage.base)
    let wp = weights.map { UnsafePointer($0.storage.base) }
    var total = 0.0, norm = 0.0
    for i in 0..<n {
        let w = wp?[i] ?? 1
        if w != 0 { total += Double(w * f(pp[i], tp[i])); norm += Double(w) }
    }
    norm = try Autograd.lossNormalizer(norm)
    let scale: Float = norm > 0 ? Float(1 / norm) : 0
    let value = Tensor(scalar: scale * Float(total))
    let gp = p.requiresGrad, gt = t.requiresGrad
    return Variable.record(value, parents: [p, t], op: op) { g in
        let pp = UnsafePointer(pv.storage.base), tp = UnsafePointer(tv.storage.base)
        let wp = weights.map { UnsafePointer($0.storage.base) }
        let s = g.scalar * scale
        var d = Tensor(uninitialized: pv.shape)
        d.withUnsafeMutableBufferPointer { dp in
            for i in 0..<n {
                let w = wp?[i] ?? 1
                dp[i] = w != 0 ? s * w * df(pp[i], tp[i]) : 0
            }
        }
        return [gp ? d : nil, gt ? -d : nil]
    }
}

/// Mean squared error `mean((p − t)²)`.
public func mseLoss(_ p: Variable, _ t: Variable) throws -> Variable {
    try pointwiseLoss(p, t, weights: nil, op: "mseLoss", { let d = $0 - $1; return d * d }, { 2 * ($0 - $1) })
}

/// Mean absolute error `mean(|p − t|)` (gradient 0 where `p == t`).
public func maeLoss(_ p: Variable, _ t: Variable) throws -> Variable {
    try pointwiseLoss(p, t, weights: nil, op: "maeLoss", { Swift.abs($0 - $1) }) { p, t in
        p > t ? 1 : (p < t ? -1 : 0)
    }
}

/// Squared error averaged over the masked elements only: `Σ m·(p − t)² / Σ m` (Noise2Void);
/// zero when the mask is empty.
public func maskedMSELoss(_ p: Variable, _ t: Variable, mask: Tensor) throws -> Variable {
    try pointwiseLoss(p, t, weights: mask, op: "maskedMSELoss", { let d = $0 - $1; return d * d }, { 2 * ($0 - $1) })
}

/// Huber loss (PyTorch `HuberLoss`): `½d²` for `|d| ≤ delta`, else `delta·(|d| − ½delta)`, averaged.
public func huberLoss(_ p: Variable, _ t: Variable, delta: Float = 1) throws -> Variable {
    try pointwiseLoss(p, t, weights: nil, op: "huberLoss", { p, t in
        let d = Swift.abs(p - t)
        return d <= delta ? 0.5 * d * d : delta * (d - 0.5 * delta)
    }) { p, t in
        let d = p - t
        return Swift.abs(d) <= delta ? d : (d > 0 ? delta : -delta)
    }
}

/// Laplace negative log-likelihood `mean(log(2b) + |y − μ| / b)` with `b = exp(logScale)`;
/// `mean`, `logScale` and `target` share one shape.
public func laplaceNLL(mean: Variable, logScale: Variable, target: Variable) throws -> Variable {
    try checkSameShape(mean.shape, logScale.shape, op: "laplaceNLL")
    try checkSameShape(mean.shape, target.shape, op: "laplaceNLL")
    let mu = mean.value, ls = logScale.value, y = target.value, n = mu.count
    let mp = UnsafePointer(mu.storage.base), lp = UnsafePointer(ls.storage.base), yp = UnsafePointer(y.storage.base)
    var total = 0.0
    let log2 = Foundation.log(2.0)
    for i in 0..<n {
        total += log2 + Double(lp[i]) + Double(Swift.abs(yp[i] - mp[i])) * Foundation.exp(-Double(lp[i]))
    }
    let norm = try Autograd.lossNormalizer(Double(n))
    let scale: Float = norm > 0 ? Float(1 / norm) : 0
    let value = Tensor(scalar: Float(total) * scale)
    let needs = [mean.requiresGrad, logScale.requiresGrad, target.requiresGrad]
    return Variable.record(value, parents: [mean, logScale, target], op: "laplaceNLL") { g in
        let mp = UnsafePointer(mu.storage.base), lp = UnsafePointer(ls.storage.base), yp = UnsafePointer(y.storage.base)
        let s = g.scalar * scale
        var dmu = Tensor(uninitialized: mu.shape), dls = Tensor(uninitialized: mu.shape)
        dmu.withUnsafeMutableBufferPointer { dm in
            dls.withUnsafeMutableBufferPointer { dl in
                for i in 0..<n {
                    let r = yp[i] - mp[i], invB = Foundation.exp(-lp[i])
                    let sign: Float = r > 0 ? 1 : (r < 0 ? -1 : 0)
                    dm[i] = -s * sign * invB
                    dl[i] = s * (1 - Swift.abs(r) * invB)
                }
            }
        }
        return [needs[0] ? dmu : nil, needs[1] ? dls : nil, needs[2] ? -dmu : nil]
    }
}
