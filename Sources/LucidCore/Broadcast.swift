/// NumPy broadcasting: shape rules, the strided binary-loop plan, and `reduce(_:toShape:)`.
extension Tensor {
    /// The broadcast shape of `a` and `b` (right-aligned; an extent of 1 stretches), or a
    /// `shapeMismatch` naming `op` and both shapes.
    public static func broadcastShape(_ a: [Int], _ b: [Int], op: String) throws -> [Int] {
        let r = Swift.max(a.count, b.count)
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            let x = i < r - a.count ? 1 : a[i - (r - a.count)]
            let y = i < r - b.count ? 1 : b[i - (r - b.count)]
            if x == y || y == 1 { out[i] = x } else if x == 1 { out[i] = y } else {
                throw TensorError.shapeMismatch(op: op, detail: "\(a) vs \(b)")
            }
        }
        return out
    }

    /// Sums `g` over the axes along which a tensor of shape `toShape` was broadcast to `g.shape`
    /// (the vector-Jacobian product of broadcasting).
    public static func reduce(_ g: Tensor, toShape shape: [Int]) throws -> Tensor {
        if g.shape == shape { return g }
        let r = g.rank
        guard shape.count <= r else {
            throw TensorError.shapeMismatch(op: "reduce(toShape:)", detail: "\(g.shape) vs \(shape)")
        }
        let lead = r - shape.count
        var axes: [Int] = Array(0..<lead)
        for i in 0..<shape.count {
            let s = shape[i], e = g.shape[lead + i]
            if s == e { continue }
            guard s == 1 else {
                throw TensorError.shapeMismatch(op: "reduce(toShape:)", detail: "\(g.shape) vs \(shape)")
            }
            axes.append(lead + i)
        }
        return try g.sum(axes: axes, keepDims: true).reshaped(shape)
    }
}

/// A loop plan for a broadcasting binary op: outer rows (odometer over merged axes) and one
/// inner run along which each operand either advances by one element or stays (stride 0).
struct BroadcastPlan {
    /// Merged extents of the outer axes (all but the inner run).
    var outer: [Int] = []
    var aOuterStrides: [Int] = []
    var bOuterStrides: [Int] = []
    /// Length of the contiguous inner run.
    var inner = 1
    /// Stride (0 or 1) of each operand along the inner run.
    var aInner = 1, bInner = 1
    var rows: Int { outer.reduce(1, *) }

    init(a: [Int], b: [Int], out: [Int]) {
        let r = out.count
        func stridesAligned(_ s: [Int]) -> [Int] {
            let padded = [Int](repeating: 1, count: r - s.count) + s
            var st = Tensor.strides(of: padded)
            for i in 0..<r where padded[i] == 1 { st[i] = 0 }
            return st
        }
        let sa = stridesAligned(a), sb = stridesAligned(b)
        // Merge adjacent axes whose strides compose, dropping unit extents.
        var dims: [(n: Int, a: Int, b: Int)] = []
        for i in 0..<r where out[i] != 1 {
            if let last = dims.last, last.a == sa[i] * out[i], last.b == sb[i] * out[i] {
                dims[dims.count - 1] = (last.n * out[i], sa[i], sb[i])
            } else {
                dims.append((out[i], sa[i], sb[i]))
            }
        }
        if let last = dims.popLast() {
            inner = last.n; aInner = last.a; bInner = last.b
        }
        outer = dims.map(\.n)
        aOuterStrides = dims.map(\.a)
        bOuterStrides = dims.map(\.b)
    }

    /// Offsets of operand `a` and `b` at outer row `row`.
    @inline(__always)
    func offsets(row: Int) -> (Int, Int) {
        var rem = row, oa = 0, ob = 0
        var i = outer.count - 1
        while i >= 0 {
            let n = outer[i]
            let q = rem / n, k = rem - q * n
            oa += k * aOuterStrides[i]; ob += k * bOuterStrides[i]
            rem = q; i -= 1
        }
        return (oa, ob)
    }
}
