/// Axis permutation, slicing and concatenation (each returns a new contiguous tensor).
extension Tensor {
    /// The tensor with its axes reordered: output axis `i` is input axis `axes[i]`.
    public func permuted(_ axes: [Int]) throws -> Tensor {
        guard axes.count == rank, axes.sorted() == Array(0..<rank) else {
            throw TensorError.invalidArgument(op: "permute", detail: "axes \(axes) are not a permutation for shape \(shape)")
        }
        if axes == Array(0..<rank) { return self }
        // Merge output axes that stay adjacent and in order in the input.
        let inStrides = Tensor.strides(of: shape)
        var dims: [(n: Int, s: Int)] = []
        for a in axes where shape[a] != 1 {
            if let last = dims.last, last.s == inStrides[a] * shape[a] {
                dims[dims.count - 1] = (last.n * shape[a], inStrides[a])
            } else {
                dims.append((shape[a], inStrides[a]))
            }
        }
        let out = Tensor(uninitialized: axes.map { shape[$0] })
        if count == 0 { return out }
        let src = UnsafePointer(storage.base), dst = out.storage.base
        let inner = dims.last?.n ?? 1, innerStride = dims.last?.s ?? 1
        let outer = Array(dims.dropLast())
        let rows = count / inner
        Threads.parallelChunks(rows, minChunk: Swift.max(1, 8192 / inner)) { r in
            for row in r {
                var rem = row, off = 0
                for d in outer.reversed() { let q = rem / d.n; off += (rem - q * d.n) * d.s; rem = q }
                let o = dst + row * inner, p = src + off
                if innerStride == 1 {
                    o.update(from: p, count: inner)
                } else {
                    for j in 0..<inner { o[j] = p[j * innerStride] }
                }
            }
        }
        return out
    }

    /// The elements with index in `range` along `axis` (a copy).
    public func slice(axis: Int, range: Range<Int>) throws -> Tensor {
        guard axis >= -rank && axis < rank else {
            throw TensorError.invalidArgument(op: "slice", detail: "axis \(axis) out of range for shape \(shape)")
        }
        let ax = axis < 0 ? axis + rank : axis
        guard range.lowerBound >= 0 && range.upperBound <= shape[ax] else {
            throw TensorError.invalidArgument(op: "slice", detail: "range \(range) out of bounds for axis \(ax) of shape \(shape)")
        }
        var outShape = shape
        outShape[ax] = range.count
        let out = Tensor(uninitialized: outShape)
        let inner = shape[(ax + 1)...].reduce(1, *)
        let outerCount = shape[..<ax].reduce(1, *)
        let run = range.count * inner, srcRow = shape[ax] * inner
        let src = UnsafePointer(storage.base), dst = out.storage.base
        Threads.parallelChunks(outerCount, minChunk: Swift.max(1, 8192 / Swift.max(1, run))) { r in
            for o in r { (dst + o * run).update(from: src + o * srcRow + range.lowerBound * inner, count: run) }
        }
        return out
    }

    /// Joins tensors along `axis`; every other extent must agree.
    public static func concat(_ xs: [Tensor], axis: Int) throws -> Tensor {
        guard let first = xs.first else {
            throw TensorError.invalidArgument(op: "concat", detail: "no tensors to concatenate")
        }
        let rank = first.rank
        guard axis >= -rank && axis < rank else {
            throw TensorError.invalidArgument(op: "concat", detail: "axis \(axis) out of range for shape \(first.shape)")
        }
        let ax = axis < 0 ? axis + rank : axis
        var total = 0
        for x in xs {
            var a = x.shape, b = first.shape
            guard a.count == rank else {
                throw TensorError.shapeMismatch(op: "concat", detail: "\(first.shape) vs \(x.shape)")
            }
            a[ax] = 0; b[ax] = 0
            guard a == b else { throw TensorError.shapeMismatch(op: "concat", detail: "\(first.shape) vs \(x.shape) along axis \(ax)") }
            total += x.shape[ax]
        }
        var outShape = first.shape
        outShape[ax] = total
        let out = Tensor(uninitialized: outShape)
        let inner = first.shape[(ax + 1)...].reduce(1, *)
        let outer = first.shape[..<ax].reduce(1, *)
        let dstRow = total * inner
        let dst = out.storage.base
        var start = 0
        for x in xs {
            let run = x.shape[ax] * inner, src = UnsafePointer(x.storage.base), s0 = start
            Threads.parallelChunks(outer, minChunk: Swift.max(1, 8192 / Swift.max(1, run))) { r in
                for o in r { (dst + o * dstRow + s0).update(from: src + o * run, count: run) }
            }
            start += run
        }
        return out
    }
}
