import Foundation

/// A binary element kernel with a scalar and a 16-lane form (specialized per op at compile time).
protocol BinaryKernel {
    static func apply(_ a: Float, _ b: Float) -> Float
    static func apply(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float>
}

enum AddKernel: BinaryKernel {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a + b }
    @inline(__always) static func apply(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { a + b }
}
enum SubKernel: BinaryKernel {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a - b }
    @inline(__always) static func apply(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { a - b }
}
enum MulKernel: BinaryKernel {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * b }
    @inline(__always) static func apply(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { a * b }
}
enum DivKernel: BinaryKernel {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a / b }
    @inline(__always) static func apply(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { a / b }
}

/// Elements per parallel chunk for cheap elementwise loops.
let elementwiseGrain = 1 << 15

/// `o[i] = K(a[i·sa], b[i·sb])` for `i < n`, strides 0 or 1.
@inline(__always)
private func binaryRun<K: BinaryKernel>(_: K.Type, _ a: UnsafePointer<Float>, _ sa: Int,
                                        _ b: UnsafePointer<Float>, _ sb: Int,
                                        _ o: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    if sa == 1 && sb == 1 {
        while i + 16 <= n {
            let v = K.apply(UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self),
                            UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self))
            UnsafeMutableRawPointer(o + i).storeBytes(of: v, as: SIMD16<Float>.self)
            i += 16
        }
        while i < n { o[i] = K.apply(a[i], b[i]); i += 1 }
    } else if sa == 1 {
        let bv = b[0], bs = SIMD16<Float>(repeating: bv)
        while i + 16 <= n {
            let v = K.apply(UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self), bs)
            UnsafeMutableRawPointer(o + i).storeBytes(of: v, as: SIMD16<Float>.self)
            i += 16
        }
        while i < n { o[i] = K.apply(a[i], bv); i += 1 }
    } else if sb == 1 {
        let av = a[0], as_ = SIMD16<Float>(repeating: av)
        while i + 16 <= n {
            let v = K.apply(as_, UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self))
            UnsafeMutableRawPointer(o + i).storeBytes(of: v, as: SIMD16<Float>.self)
            i += 16
        }
        while i < n { o[i] = K.apply(av, b[i]); i += 1 }
    } else {
        let v = K.apply(a[0], b[0])
        while i < n { o[i] = v; i += 1 }
    }
}

extension Tensor {
    /// Broadcasting binary op through a `BroadcastPlan`; parallel over rows or over the run.
    static func binary<K: BinaryKernel>(_ a: Tensor, _ b: Tensor, _ k: K.Type, op: String) throws -> Tensor {
        let shape = a.shape == b.shape ? a.shape : try broadcastShape(a.shape, b.shape, op: op)
        let out = Tensor(uninitialized: shape)
        let pa = UnsafePointer(a.storage.base), pb = UnsafePointer(b.storage.base), po = out.storage.base
        if a.shape == b.shape {
            Threads.parallelChunks(out.count, minChunk: elementwiseGrain) { r in
                binaryRun(k, pa + r.lowerBound, 1, pb + r.lowerBound, 1, po + r.lowerBound, r.count)
            }
            return out
        }
        let plan = BroadcastPlan(a: a.shape, b: b.shape, out: shape)
        let rows = plan.rows, inner = plan.inner
        if rows == 1 {
            Threads.parallelChunks(inner, minChunk: elementwiseGrain) { r in
                binaryRun(k, pa + r.lowerBound * plan.aInner, plan.aInner,
                          pb + r.lowerBound * plan.bInner, plan.bInner, po + r.lowerBound, r.count)
            }
        } else {
            Threads.parallelChunks(rows, minChunk: Swift.max(1, elementwiseGrain / Swift.max(inner, 1))) { r in
                for row in r {
                    let (oa, ob) = plan.offsets(row: row)
                    binaryRun(k, pa + oa, plan.aInner, pb + ob, plan.bInner, po + row * inner, inner)
                }
            }
        }
        return out
    }

    /// Applies `f` to every element (parallel for large tensors).
    @inlinable
    public func map(_ f: (Float) -> Float) -> Tensor {
        let out = Tensor(uninitialized: shape)
        let src = UnsafePointer(storage.base), dst = out.storage.base
        Threads.parallelChunks(count, minChunk: 1 << 14) { r in
            for i in r { dst[i] = f(src[i]) }
        }
        return out
    }

    /// Combines two tensors of the same shape element by element; throws on a shape mismatch.
    @inlinable
    public func zipMap(_ other: Tensor, op: String, _ f: (Float, Float) -> Float) throws -> Tensor {
        guard shape == other.shape else {
            throw TensorError.shapeMismatch(op: op, detail: "\(shape) vs \(other.shape)")
        }
        let out = Tensor(uninitialized: shape)
        let a = UnsafePointer(storage.base), b = UnsafePointer(other.storage.base), dst = out.storage.base
        Threads.parallelChunks(count, minChunk: 1 << 14) { r in
            for i in r { dst[i] = f(a[i], b[i]) }
        }
        return out
    }

    /// Element-wise sum with broadcasting.
    public static func + (a: Tensor, b: Tensor) throws -> Tensor { try binary(a, b, AddKernel.self, op: "add") }
    /// Element-wise difference with broadcasting.
    public static func - (a: Tensor, b: Tensor) throws -> Tensor { try binary(a, b, SubKernel.self, op: "sub") }
    /// Element-wise product with broadcasting.
    public static func * (a: Tensor, b: Tensor) throws -> Tensor { try binary(a, b, MulKernel.self, op: "mul") }
    /// Element-wise quotient with broadcasting.
    public static func / (a: Tensor, b: Tensor) throws -> Tensor { try binary(a, b, DivKernel.self, op: "div") }

    private static func withScalar<K: BinaryKernel>(_ a: Tensor, _ s: Float, _ k: K.Type, scalarFirst: Bool) -> Tensor {
        let out = Tensor(uninitialized: a.shape)
        let pa = UnsafePointer(a.storage.base), po = out.storage.base
        withUnsafePointer(to: s) { ps in
            Threads.parallelChunks(a.count, minChunk: elementwiseGrain) { r in
                if scalarFirst {
                    binaryRun(k, ps, 0, pa + r.lowerBound, 1, po + r.lowerBound, r.count)
                } else {
                    binaryRun(k, pa + r.lowerBound, 1, ps, 0, po + r.lowerBound, r.count)
                }
            }
        }
        return out
    }

    /// Adds a scalar to every element.
    public static func + (a: Tensor, s: Float) -> Tensor { withScalar(a, s, AddKernel.self, scalarFirst: false) }
    /// Adds a scalar to every element.
    public static func + (s: Float, a: Tensor) -> Tensor { withScalar(a, s, AddKernel.self, scalarFirst: true) }
    /// Subtracts a scalar from every element.
    public static func - (a: Tensor, s: Float) -> Tensor { withScalar(a, s, SubKernel.self, scalarFirst: false) }
    /// `s − a` element-wise.
    public static func - (s: Float, a: Tensor) -> Tensor { withScalar(a, s, SubKernel.self, scalarFirst: true) }
    /// Multiplies every element by a scalar.
    public static func * (a: Tensor, s: Float) -> Tensor { withScalar(a, s, MulKernel.self, scalarFirst: false) }
    /// Multiplies every element by a scalar.
    public static func * (s: Float, a: Tensor) -> Tensor { withScalar(a, s, MulKernel.self, scalarFirst: true) }
    /// Divides every element by a scalar.
    public static func / (a: Tensor, s: Float) -> Tensor { withScalar(a, s, DivKernel.self, scalarFirst: false) }
    /// `s / a` element-wise.
    public static func / (s: Float, a: Tensor) -> Tensor { withScalar(a, s, DivKernel.self, scalarFirst: true) }

    /// Negation.
    public static prefix func - (a: Tensor) -> Tensor { withScalar(a, -1, MulKernel.self, scalarFirst: false) }

    /// `eˣ` element-wise.
    public func exp() -> Tensor { map { Foundation.exp($0) } }
    /// Natural logarithm element-wise.
    public func log() -> Tensor { map { Foundation.log($0) } }
    /// Square root element-wise.
    public func sqrt() -> Tensor { map { $0.squareRoot() } }
    /// `xᵖ` element-wise (squares and integer powers take fast paths).
    public func pow(_ p: Float) -> Tensor {
        switch p {
        case 1: return self.copy()
        case 2: return map { $0 * $0 }
        case 0.5: return map { $0.squareRoot() }
        case -1: return map { 1 / $0 }
        default: return map { Foundation.pow($0, p) }
        }
    }
    /// Absolute value element-wise.
    public func abs() -> Tensor { map { Swift.abs($0) } }
    /// Clamps every element into `[min, max]` (either bound may be nil).
    public func clamped(min lo: Float? = nil, max hi: Float? = nil) -> Tensor {
        let l = lo ?? -.infinity, h = hi ?? .infinity
        return map { Swift.min(Swift.max($0, l), h) }
    }

    /// Picks `a` where `cond != 0`, else `b`, with broadcasting of all three.
    public static func `where`(_ cond: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        let s1 = try broadcastShape(cond.shape, a.shape, op: "where")
        let shape = try broadcastShape(s1, b.shape, op: "where")
        if cond.shape == shape, a.shape == shape, b.shape == shape {
            let out = Tensor(uninitialized: shape)
            let c = UnsafePointer(cond.storage.base), pa = UnsafePointer(a.storage.base)
            let pb = UnsafePointer(b.storage.base), po = out.storage.base
            Threads.parallelChunks(out.count, minChunk: elementwiseGrain) { r in
                for i in r { po[i] = c[i] != 0 ? pa[i] : pb[i] }
            }
            return out
        }
        return try Tensor.where(cond.broadcast(to: shape), a.broadcast(to: shape), b.broadcast(to: shape))
    }

    /// This tensor materialized at a broadcast-compatible `shape`.
    public func broadcast(to shape: [Int]) throws -> Tensor {
        if self.shape == shape { return self }
        let s = try Tensor.broadcastShape(self.shape, shape, op: "broadcast(to:)")
        guard s == shape else {
            throw TensorError.shapeMismatch(op: "broadcast(to:)", detail: "\(self.shape) vs \(shape)")
        }
        let out = Tensor(uninitialized: shape)
        let plan = BroadcastPlan(a: self.shape, b: [], out: shape)
        let src = UnsafePointer(storage.base), dst = out.storage.base, inner = plan.inner
        Threads.parallelChunks(plan.rows, minChunk: Swift.max(1, elementwiseGrain / Swift.max(inner, 1))) { r in
            for row in r {
                let (oa, _) = plan.offsets(row: row)
                if plan.aInner == 1 {
                    (dst + row * inner).update(from: src + oa, count: inner)
                } else {
                    (dst + row * inner).update(repeating: src[oa], count: inner)
                }
            }
        }
        return out
    }

    /// A tensor of `shape` filled with `value`.
    public static func full(_ shape: [Int], _ value: Float) -> Tensor { Tensor(shape: shape, repeating: value) }

    /// `count` evenly spaced values from `start` to `end` inclusive.
    public static func linspace(_ start: Float, _ end: Float, count: Int) -> Tensor {
        let t = Tensor(uninitialized: [Swift.max(count, 0)])
        let step = count > 1 ? (end - start) / Float(count - 1) : 0
        for i in 0..<t.count { t.storage.base[i] = start + Float(i) * step }
        return t
    }
}
