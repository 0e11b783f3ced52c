import Foundation

/// Sum of `n` contiguous floats: 16-lane blocks added into a Float64 total.
@inline(__always)
func sumRun(_ p: UnsafePointer<Float>, _ n: Int) -> Double {
    var total = 0.0, i = 0
    while i < n {
        let end = Swift.min(n, i + 4096)
        var acc = SIMD16<Float>()
        while i + 16 <= end {
            acc += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
            i += 16
        }
        var tail: Float = 0
        while i < end { tail += p[i]; i += 1 }
        total += Double(acc.sum()) + Double(tail)
    }
    return total
}

/// Maximum of `n ≥ 1` contiguous floats.
@inline(__always)
private func maxRun(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var i = 0, m = -Float.infinity
    if n >= 16 {
        var acc = SIMD16<Float>(repeating: -.infinity)
        while i + 16 <= n {
            acc = pointwiseMax(acc, UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self))
            i += 16
        }
        m = acc.max()
    }
    while i < n { m = Swift.max(m, p[i]); i += 1 }
    return m
}

extension Tensor {
    /// Validated, sorted, non-negative reduction axes (`nil` means every axis); `op` names the
    /// caller in the error for an out-of-range or repeated axis.
    public func reductionAxes(_ axes: [Int]?, op: String) throws -> [Int] {
        guard let axes else { return Array(0..<rank) }
        var out: [Int] = []
        for a in axes {
            let n = a < 0 ? a + rank : a
            guard n >= 0 && n < rank else {
                throw TensorError.invalidArgument(op: op, detail: "axis \(a) out of range for shape \(shape)")
            }
            guard !out.contains(n) else {
                throw TensorError.invalidArgument(op: op, detail: "axis \(a) repeated in \(axes) for shape \(shape)")
            }
            out.append(n)
        }
        return out.sorted()
    }

    /// Shape after reducing `axes` (kept as 1s when `keepDims`).
    public func reducedShape(_ axes: [Int], keepDims: Bool) -> [Int] {
        var s: [Int] = []
        for (i, n) in shape.enumerated() {
            if axes.contains(i) { if keepDims { s.append(1) } } else { s.append(n) }
        }
        return s
    }

    /// Sum (or max) over `axes`; returns the result and the number of elements reduced into each.
    private func reduceCore(_ axesIn: [Int]?, keepDims: Bool, op: String, isMax: Bool) throws -> (Tensor, Int) {
        let axes = try reductionAxes(axesIn, op: op)
        let outShape = reducedShape(axes, keepDims: keepDims)
        let n = axes.reduce(1) { $0 * shape[$1] }
        if isMax && n == 0 {
            throw TensorError.invalidArgument(op: op, detail: "empty reduction over axes \(axes) of shape \(shape)")
        }
        let out = Tensor(zeros: outShape)
        if count == 0 { return (out, n) }
        // Merge runs of kept / reduced axes (unit extents dropped): contiguous input makes that exact.
        var groups: [(n: Int, reduced: Bool)] = []
        for (i, e) in shape.enumerated() where e != 1 {
            let r = axes.contains(i)
            if let last = groups.last, last.reduced == r { groups[groups.count - 1].n *= e } else { groups.append((e, r)) }
        }
        guard groups.contains(where: \.reduced) else {
            out.storage.base.update(from: storage.base, count: count)
            return (out, n)
        }
        let strides = Tensor.strides(of: groups.map(\.n))
        let src = UnsafePointer(storage.base), dst = out.storage.base
        let lastReduced = groups.last!.reduced
        let L = groups.last!.n
        let body = groups.dropLast()
        // Offsets of every combination of the reduced outer axes.
        var redDims: [(n: Int, s: Int)] = []
        var keptDims: [(n: Int, s: Int)] = []
        for (i, g) in body.enumerated() {
            if g.reduced { redDims.append((g.n, strides[i])) } else { keptDims.append((g.n, strides[i])) }
        }
        var redOffsets = [0]
        for d in redDims {
            redOffsets = redOffsets.flatMap { o in (0..<d.n).map { o + $0 * d.s } }
        }
        let outer = keptDims.reduce(1) { $0 * $1.n }
        @inline(__always) func keptOffset(_ o: Int) -> Int {
            var rem = o, off = 0
            for d in keptDims.reversed() { let q = rem / d.n; off += (rem - q * d.n) * d.s; rem = q }
            return off
        }
        redOffsets.withUnsafeBufferPointer { ro in
            if lastReduced {
                Threads.parallelChunks(outer, minChunk: Swift.max(1, 4096 / Swift.max(1, L * ro.count))) { r in
                    for o in r {
                        let base = keptOffset(o)
                        if isMax {
                            var m = -Float.infinity
                            for off in ro { m = Swift.max(m, maxRun(src + base + off, L)) }
                            dst[o] = m
                        } else {
                            var s = 0.0
                            for off in ro { s += sumRun(src + base + off, L) }
                            dst[o] = Float(s)
                        }
                    }
                }
            } else {
                let block = 4096, nb = (L + block - 1) / block
                Threads.parallelChunks(outer * nb, minChunk: Swift.max(1, 64 / Swift.max(1, ro.count))) { r in
                    for t in r {
                        let o = t / nb, c0 = (t % nb) * block, c1 = Swift.min(L, c0 + block)
                        let base = keptOffset(o) + c0
                        let row = dst + o * L + c0
                        let w = c1 - c0
                        if isMax {
                            row.update(from: src + base + ro[0], count: w)
                            for off in ro.dropFirst() {
                                let p = src + base + off
                                for j in 0..<w { row[j] = Swift.max(row[j], p[j]) }
                            }
                        } else {
                            for off in ro {
                                let p = src + base + off
                                var j = 0
                                while j + 16 <= w {
                                    let v = UnsafeRawPointer(row + j).loadUnaligned(as: SIMD16<Float>.self)
                                        + UnsafeRawPointer(p + j).loadUnaligned(as: SIMD16<Float>.self)
                                    UnsafeMutableRawPointer(row + j).storeBytes(of: v, as: SIMD16<Float>.self)
                                    j += 16
                                }
                                while j < w { row[j] += p[j]; j += 1 }
                            }
                        }
                    }
                }
            }
        }
        return (out, n)
    }

    /// Sum over `axes` (all when nil); reduced axes are dropped unless `keepDims`.
    public func sum(axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor {
        try reduceCore(axes, keepDims: keepDims, op: "sum", isMax: false).0
    }

    /// Mean over `axes` (all when nil).
    public func mean(axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor {
        let (s, n) = try reduceCore(axes, keepDims: keepDims, op: "mean", isMax: false)
        return s * (1 / Float(n))
    }

    /// Maximum over `axes` (all when nil); throws for an empty reduction.
    public func max(axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor {
        try reduceCore(axes, keepDims: keepDims, op: "max", isMax: true).0
    }

    /// Variance over `axes` (all when nil): population (divide by n) unless `unbiased` (n − 1).
    public func variance(axes: [Int]? = nil, keepDims: Bool = false, unbiased: Bool = false) throws -> Tensor {
        let ax = try reductionAxes(axes, op: "variance")
        let m = try mean(axes: ax, keepDims: true)
        let d = try self - m
        let (s, n) = try (d * d).reduceCore(ax, keepDims: keepDims, op: "variance", isMax: false)
        return s * (1 / Float(Swift.max(unbiased ? n - 1 : n, 1)))
    }
}
