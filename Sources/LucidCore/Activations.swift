import Foundation

/// Activation functions and softmax on tensors (gradient-free forward kernels).
extension Tensor {
    /// `max(x, 0)`.
    public func relu() -> Tensor { leakyReLU(slope: 0) }

    /// `x` for positive `x`, else `slope · x` (16-lane loop).
    public func leakyReLU(slope: Float = 0.01) -> Tensor {
        let out = Tensor(uninitialized: shape)
        let src = UnsafePointer(storage.base), dst = out.storage.base
        let zero = SIMD16<Float>(), k = SIMD16<Float>(repeating: slope)
        Threads.parallelChunks(count, minChunk: elementwiseGrain) { r in
            var i = r.lowerBound
            while i + 16 <= r.upperBound {
                let v = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD16<Float>.self)
                let y = v.replacing(with: v * k, where: v .<= zero)
                UnsafeMutableRawPointer(dst + i).storeBytes(of: y, as: SIMD16<Float>.self)
                i += 16
            }
            while i < r.upperBound { dst[i] = src[i] > 0 ? src[i] : slope * src[i]; i += 1 }
        }
        return out
    }

    /// Gradient of `leakyReLU(slope:)` (ReLU for slope 0): `grad` where `input > 0`, else `slope · grad`.
    public static func leakyReLUBackward(_ grad: Tensor, input: Tensor, slope: Float = 0) throws -> Tensor {
        guard grad.shape == input.shape else {
            throw TensorError.shapeMismatch(op: "leakyReLU backward", detail: "\(grad.shape) vs \(input.shape)")
        }
        let out = Tensor(uninitialized: input.shape)
        let g = UnsafePointer(grad.storage.base), x = UnsafePointer(input.storage.base), dst = out.storage.base
        let zero = SIMD16<Float>(), k = SIMD16<Float>(repeating: slope)
        Threads.parallelChunks(input.count, minChunk: elementwiseGrain) { r in
            var i = r.lowerBound
            while i + 16 <= r.upperBound {
                let gv = UnsafeRawPointer(g + i).loadUnaligned(as: SIMD16<Float>.self)
                let xv = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
                let y = gv.replacing(with: gv * k, where: xv .<= zero)
                UnsafeMutableRawPointer(dst + i).storeBytes(of: y, as: SIMD16<Float>.self)
                i += 16
            }
            while i < r.upperBound { dst[i] = x[i] > 0 ? g[i] : slope * g[i]; i += 1 }
        }
        return out
    }
    /// `1 / (1 + e⁻ˣ)`.
    public func sigmoid() -> Tensor { map { 1 / (1 + Foundation.exp(-$0)) } }
    /// Hyperbolic tangent.
    public func tanh() -> Tensor { map { Foundation.tanh($0) } }

    /// `x · sigmoid(x)` (swish), 16 lanes at a time.
    public func silu() -> Tensor {
        let out = Tensor(uninitialized: shape)
        let src = UnsafePointer(storage.base), dst = out.storage.base
        Threads.parallelChunks(count, minChunk: elementwiseGrain) { r in
            var i = r.lowerBound
            while i + 16 <= r.upperBound {
                let v = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD16<Float>.self)
                UnsafeMutableRawPointer(dst + i).storeBytes(of: v / (1 + exp16(-v)), as: SIMD16<Float>.self)
                i += 16
            }
            while i < r.upperBound { dst[i] = src[i] / (1 + Foundation.exp(-src[i])); i += 1 }
        }
        return out
    }

    /// Gradient of `silu()`: `grad · s · (1 + x · (1 − s))` with `s = sigmoid(input)`.
    public static func siluBackward(_ grad: Tensor, input: Tensor) throws -> Tensor {
        guard grad.shape == input.shape else {
            throw TensorError.shapeMismatch(op: "silu backward", detail: "\(grad.shape) vs \(input.shape)")
        }
        let out = Tensor(uninitialized: input.shape)
        let g = UnsafePointer(grad.storage.base), x = UnsafePointer(input.storage.base), dst = out.storage.base
        Threads.parallelChunks(input.count, minChunk: elementwiseGrain) { r in
            var i = r.lowerBound
            while i + 16 <= r.upperBound {
                let gv = UnsafeRawPointer(g + i).loadUnaligned(as: SIMD16<Float>.self)
                let xv = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
                let s = 1 / (1 + exp16(-xv))
                UnsafeMutableRawPointer(dst + i).storeBytes(of: gv * s * (1 + xv * (1 - s)), as: SIMD16<Float>.self)
                i += 16
            }
            while i < r.upperBound {
                let s = 1 / (1 + Foundation.exp(-x[i]))
                dst[i] = g[i] * s * (1 + x[i] * (1 - s))
                i += 1
            }
        }
        return out
    }
    /// `x · Φ(x) = x/2 · (1 + erf(x/√2))` (exact GELU).
    public func gelu() -> Tensor { map { 0.5 * $0 * (1 + Foundation.erf($0 * 0.70710678118654752)) } }

    /// Splits the shape around `axis`: (product before, extent, product after).
    func axisSplit(_ axis: Int, op: String) throws -> (outer: Int, n: Int, inner: Int, axis: Int) {
        guard axis >= -rank && axis < rank else {
            throw TensorError.invalidArgument(op: op, detail: "axis \(axis) out of range for shape \(shape)")
        }
        let ax = axis < 0 ? axis + rank : axis
        return (shape[..<ax].reduce(1, *), shape[ax], shape[(ax + 1)...].reduce(1, *), ax)
    }

    /// Softmax along `axis` (max-subtracted, so large inputs do not overflow).
    public func softmax(axis: Int) throws -> Tensor { try softmaxCore(axis: axis, log: false, op: "softmax") }

    /// Log-softmax along `axis`: `x − max − log Σ exp(x − max)`.
    public func logSoftmax(axis: Int) throws -> Tensor { try softmaxCore(axis: axis, log: true, op: "logSoftmax") }

    private func softmaxCore(axis: Int, log: Bool, op: String) throws -> Tensor {
        let (outer, n, inner, _) = try axisSplit(axis, op: op)
        let out = Tensor(uninitialized: shape)
        if count == 0 { return out }
        let src = UnsafePointer(storage.base), dst = out.storage.base
        if inner == 1 {
            Threads.parallelChunks(outer, minChunk: Swift.max(1, 4096 / n)) { r in
                for o in r { Self.softmaxRow(src + o * n, dst + o * n, n, log: log) }
            }
            return out
        }
        Threads.parallelChunks(outer * inner, minChunk: Swift.max(1, 4096 / n)) { r in
            for t in r {
                let o = t / inner, i = t - o * inner
                let p = src + o * n * inner + i, q = dst + o * n * inner + i
                var m = -Float.infinity
                for j in 0..<n { m = Swift.max(m, p[j * inner]) }
                var s: Float = 0
                for j in 0..<n { let e = Foundation.exp(p[j * inner] - m); q[j * inner] = e; s += e }
                if log {
                    let ls = m + Foundation.log(s)
                    for j in 0..<n { q[j * inner] = p[j * inner] - ls }
                } else {
                    let inv = 1 / s
                    for j in 0..<n { q[j * inner] *= inv }
                }
            }
        }
        return out
    }

    /// Softmax (or log-softmax) of one contiguous row of `n` values, 16 lanes at a time.
    @inline(__always)
    private static func softmaxRow(_ p: UnsafePointer<Float>, _ q: UnsafeMutablePointer<Float>, _ n: Int, log: Bool) {
        var mv = SIMD16<Float>(repeating: -.infinity), j = 0
        while j + 16 <= n { mv = pointwiseMax(mv, load16(p, j)); j += 16 }
        var m = mv.max()
        while j < n { m = Swift.max(m, p[j]); j += 1 }
        let mm = SIMD16<Float>(repeating: m)
        var sv = SIMD16<Float>(), s: Float = 0
        j = 0
        while j + 16 <= n {
            let e = exp16(load16(p, j) - mm)
            if !log { store16(e, q, j) }
            sv += e
            j += 16
        }
        while j < n {
            let e = Foundation.exp(p[j] - m)
            if !log { q[j] = e }
            s += e
            j += 1
        }
        s += sv.sum()
        j = 0
        if log {
            let ls = SIMD16<Float>(repeating: m + Foundation.log(s))
            while j + 16 <= n { store16(load16(p, j) - ls, q, j); j += 16 }
            while j < n { q[j] = p[j] - ls[0]; j += 1 }
        } else {
            let inv = 1 / s
            while j + 16 <= n { store16(load16(q, j) * inv, q, j); j += 16 }
            while j < n { q[j] *= inv; j += 1 }
        }
    }
}

/// `eˣ` of 16 lanes (Cephes' `expf`): `x = n·ln 2 + r` with |r| ≤ ln 2 / 2, a degree-6
/// polynomial for `eʳ`, and `2ⁿ` from the exponent bits; relative error below 2·10⁻⁷. Inputs
/// are clamped to [−87.3, 88.3] (the normal range of Float). `n` is rounded by adding
/// 1.5·2²³, whose float addition leaves `n` in the low mantissa bits (no lane-wise conversion).
@inline(__always)
func exp16(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let lo = SIMD16<Float>(repeating: -87.3), hi = SIMD16<Float>(repeating: 88.3)
    let v = x.replacing(with: hi, where: x .> hi).replacing(with: lo, where: x .< lo)
    let magic = SIMD16<Float>(repeating: 12_582_912)
    let shifted = v * 1.44269504088896341 + magic
    let n = shifted - magic
    let r = v - n * 0.693359375 + n * 2.12194440e-4
    var p = SIMD16<Float>(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    p = p * (r * r) + r + 1
    let exponent = (unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- 0x4B40_0000 &+ 127) &<< 23
    return p * unsafeBitCast(exponent, to: SIMD16<Float>.self)
}
