import Foundation
import LucidCore

/// `softmax(q·kᵀ / √d) · v` with `query` `[B, heads, Lq, d]`, `key` `[B, heads, Lk, d]`,
/// `value` `[B, heads, Lk, dv]`; returns `[B, heads, Lq, dv]`.
public func scaledDotProductAttention(query: Variable, key: Variable, value: Variable) throws -> Variable {
    let q = query.shape, k = key.shape, v = value.shape
    guard q.count == 4, k.count == 4, v.count == 4, q[0] == k[0], q[1] == k[1], k[0] == v[0], k[1] == v[1],
          q[3] == k[3], k[2] == v[2] else {
        throw TensorError.shapeMismatch(op: "scaledDotProductAttention",
                                        detail: "query \(q), key \(k), value \(v) (expected [B, heads, Lq, d], [B, heads, Lk, d], [B, heads, Lk, dv])")
    }
    // The scale on the query, not on the Lq × Lk scores: one pass over far fewer values.
    let scores = try matmul(query * (1 / Float(q[3]).squareRoot()), key, transposeB: true)
    return try matmul(softmax(scores, axis: -1), value)
}
