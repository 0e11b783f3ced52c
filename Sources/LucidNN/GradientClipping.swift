import LucidAutograd
import LucidCore

/// Gradient clipping, as `torch.nn.utils.clip_grad_norm_` / `clip_grad_value_`.
public enum GradientClipping {
    /// The L2 norm of all gradients together (parameters without a gradient count as zero).
    public static func globalNorm(_ parameters: [Variable]) -> Float {
        var total = 0.0
        for p in parameters {
            guard let g = p.grad else { continue }
            g.withUnsafeBufferPointer { b in
                var s = SIMD16<Float>()
                var i = 0
                let n = b.count, base = b.baseAddress!
                var acc = 0.0
                while i + 16 <= n {
                    let v = load16(base, i)
                    s += v * v
                    i += 16
                    if i & 0xFFFF == 0 { acc += Double(s.sum()); s = SIMD16<Float>() }
                }
                acc += Double(s.sum())
                while i < n { acc += Double(base[i] * base[i]); i += 1 }
                total += acc
            }
        }
        return Float(total.squareRoot())
    }

    /// Scales all gradients by `maxNorm / (norm + 1e-6)` when that is below 1; returns the norm
    /// before clipping. Throws for a negative `maxNorm` or a non-finite norm.
    @discardableResult
    public static func clipByGlobalNorm(_ parameters: [Variable], maxNorm: Float) throws -> Float {
        guard maxNorm >= 0 else {
            throw TensorError.invalidArgument(op: "clipByGlobalNorm", detail: "maxNorm \(maxNorm) must be ≥ 0")
        }
        let norm = globalNorm(parameters)
        guard norm.isFinite else {
            throw TensorError.invalidArgument(op: "clipByGlobalNorm", detail: "gradient norm is \(norm) (NaN or infinite gradients)")
        }
        let coef = maxNorm / (norm + 1e-6)
        guard coef < 1 else { return norm }
        for p in parameters where p.grad != nil {
            p.grad!.withUnsafeMutableBufferPointer { b in for i in b.indices { b[i] *= coef } }
        }
        return norm
    }

    /// Clamps every gradient element to `[-limit, limit]`.
    public static func clipByValue(_ parameters: [Variable], limit: Float) throws {
        guard limit >= 0 else {
            throw TensorError.invalidArgument(op: "clipByValue", detail: "limit \(limit) must be ≥ 0")
        }
        for p in parameters where p.grad != nil {
            p.grad!.withUnsafeMutableBufferPointer { b in
                for i in b.indices { b[i] = Swift.min(Swift.max(b[i], -limit), limit) }
            }
        }
    }
}
