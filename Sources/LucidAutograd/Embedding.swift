import Foundation
import LucidCore

/// Sinusoidal timestep embedding (DDPM / diffusers convention): for `t` flattened to `[N]`,
/// returns `[N, dim]` = `[sin(t·fᵢ), cos(t·fᵢ)]` with `fᵢ = exp(−ln(10000)·i / half)`,
/// `half = dim / 2`; an odd `dim` ends with a zero column. No gradient.
public func sinusoidalEmbedding(_ t: Tensor, dim: Int) -> Tensor {
    let n = t.count, half = Swift.max(dim, 0) / 2
    var out = Tensor(zeros: [n, Swift.max(dim, 0)])
    let ts = t.scalars
    out.withUnsafeMutableBufferPointer { o in
        for i in 0..<half {
            let f = Foundation.exp(-Foundation.log(10000.0) * Double(i) / Double(half))
            for r in 0..<n {
                let a = Double(ts[r]) * f
                o[r * dim + i] = Float(Foundation.sin(a))
                o[r * dim + half + i] = Float(Foundation.cos(a))
            }
        }
    }
    return out
}
