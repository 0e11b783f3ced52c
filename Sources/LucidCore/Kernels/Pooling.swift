/// Pooling on `[B, C, spatial…]` tensors (1 to 3 spatial axes): max (argmax kept for the
/// backward pass), average, blur (anti-aliased) and N2V2 max-blur pooling. Forward and backward
/// kernels; LucidAutograd wraps them as differentiable ops.

/// Planes and 3D extents of a pooling input (leading unit axes for 1D/2D).
struct PoolGeometry {
    var planes: Int
    var i: (Int, Int, Int)
    var k: (Int, Int, Int)
    var s: (Int, Int, Int)
    var o: (Int, Int, Int)
    var inPlane: Int { i.0 * i.1 * i.2 }
    var outPlane: Int { o.0 * o.1 * o.2 }

    /// Validates `kernel`/`stride` (one entry or one per spatial axis) for input `shape`.
    init(op: String, shape: [Int], kernel: [Int], stride: [Int]?) throws {
        guard (3...5).contains(shape.count) else {
            throw TensorError.invalidArgument(op: op, detail: "input \(shape) must have rank 3, 4 or 5 ([B, C, spatial…])")
        }
        let sp = shape.count - 2
        func expand(_ a: [Int], _ name: String) throws -> [Int] {
            if a.count == 1 { return [Int](repeating: a[0], count: sp) }
            guard a.count == sp else {
                throw TensorError.invalidArgument(op: op, detail: "\(name) \(a) needs 1 or \(sp) entries for input \(shape)")
            }
            return a
        }
        let kk = try expand(kernel, "kernel")
        let ss = try expand(stride ?? kernel, "stride")
        guard kk.allSatisfy({ $0 > 0 }), ss.allSatisfy({ $0 > 0 }) else {
            throw TensorError.invalidArgument(op: op, detail: "kernel \(kernel) and stride \(stride ?? kernel) must be positive")
        }
        let spatial = Array(shape.dropFirst(2))
        guard zip(kk, spatial).allSatisfy({ $0 <= $1 }) else {
            throw TensorError.invalidArgument(op: op, detail: "kernel \(kernel) is larger than the input \(shape)")
        }
        func lead(_ a: [Int]) -> (Int, Int, Int) { let b = [Int](repeating: 1, count: 3 - a.count) + a; return (b[0], b[1], b[2]) }
        planes = shape[0] * shape[1]
        i = lead(spatial)
        k = lead(kk)
        s = lead(ss)
        let out = zip(zip(spatial, kk), ss).map { ($0.0 - $0.1) / $1 + 1 }
        o = lead(out)
    }

    func outputShape(_ shape: [Int]) -> [Int] { Array(shape.prefix(2)) + Array([o.0, o.1, o.2].suffix(shape.count - 2)) }
}

/// Max pooling without padding; `stride` defaults to `kernel`.
public func maxPool(_ x: Tensor, kernel: [Int], stride: [Int]? = nil) throws -> Tensor {
    try maxPoolWithIndices(x, kernel: kernel, stride: stride).output
}

/// Max pooling that also returns, per output element, the flat index of its maximum inside the
/// input plane (the first maximum on ties), for `maxPoolBackward`.
public func maxPoolWithIndices(_ x: Tensor, kernel: [Int], stride: [Int]? = nil) throws -> (output: Tensor, indices: [Int32]) {
    let g = try PoolGeometry(op: "maxPool", shape: x.shape, kernel: kernel, stride: stride)
    guard g.inPlane <= Int(Int32.max) else {
        throw TensorError.invalidArgument(op: "maxPool", detail: "input \(x.shape) has planes too large for 32-bit indices")
    }
    var y = Tensor(uninitialized: g.outputShape(x.shape))
    var idx = [Int32](repeating: 0, count: y.count)
    let src = x.storage.base
    y.withUnsafeMutableBufferPointer { yb in
        idx.withUnsafeMutableBufferPointer { ib in
            let yp = yb.baseAddress!, ip = ib.baseAddress!
            Threads.parallelFor(g.planes) { p in
                let xp = src + p * g.inPlane
                var o = p * g.outPlane
                for od in 0..<g.o.0 {
                    for oh in 0..<g.o.1 {
                        for ow in 0..<g.o.2 {
                            var best = -Float.infinity
                            var at = (od * g.s.0 * g.i.1 + oh * g.s.1) * g.i.2 + ow * g.s.2
                            for a in 0..<g.k.0 {
                                for b in 0..<g.k.1 {
                                    let row = ((od * g.s.0 + a) * g.i.1 + oh * g.s.1 + b) * g.i.2 + ow * g.s.2
                                    for c in 0..<g.k.2 {
                                        let v = xp[row + c]
                                        if v > best || v.isNaN { best = v; at = row + c }
                                    }
                                }
                            }
                            yp[o] = best
                            ip[o] = Int32(at)
                            o += 1
                        }
                    }
                }
            }
        }
    }
    return (y, idx)
}

/// Gradient of max pooling: each output gradient goes to its recorded argmax.
public func maxPoolBackward(_ gradOutput: Tensor, indices: [Int32], inputShape: [Int]) throws -> Tensor {
    guard inputShape.count >= 3, gradOutput.rank == inputShape.count, gradOutput.count == indices.count,
          Array(gradOutput.shape.prefix(2)) == Array(inputShape.prefix(2)) else {
        throw TensorError.shapeMismatch(op: "maxPoolBackward", detail: "gradient \(gradOutput.shape) with \(indices.count) indices does not fit input \(inputShape)")
    }
    let planes = inputShape[0] * inputShape[1]
    let inPlane = inputShape.dropFirst(2).reduce(1, *), outPlane = gradOutput.shape.dropFirst(2).reduce(1, *)
    var dx = Tensor(zeros: inputShape)
    let g = gradOutput.storage.base
    dx.withUnsafeMutableBufferPointer { d in
        indices.withUnsafeBufferPointer { ib in
            let dp = d.baseAddress!, ip = ib.baseAddress!
            Threads.parallelFor(planes) { p in
                let base = dp + p * inPlane
                for o in (p * outPlane)..<((p + 1) * outPlane) { base[Int(ip[o])] += g[o] }
            }
        }
    }
    return dx
}

/// Average pooling without padding; `stride` defaults to `kernel`.
public func avgPool(_ x: Tensor, kernel: [Int], stride: [Int]? = nil) throws -> Tensor {
    let g = try PoolGeometry(op: "avgPool", shape: x.shape, kernel: kernel, stride: stride)
    var y = Tensor(uninitialized: g.outputShape(x.shape))
    let src = x.storage.base
    let scale = 1 / Float(g.k.0 * g.k.1 * g.k.2)
    y.withUnsafeMutableBufferPointer { yb in
        let yp = yb.baseAddress!
        Threads.parallelFor(g.planes) { p in
            let xp = src + p * g.inPlane
            var o = p * g.outPlane
            for od in 0..<g.o.0 {
                for oh in 0..<g.o.1 {
                    for ow in 0..<g.o.2 {
                        var sum: Float = 0
                        for a in 0..<g.k.0 {
                            for b in 0..<g.k.1 {
                                let row = ((od * g.s.0 + a) * g.i.1 + oh * g.s.1 + b) * g.i.2 + ow * g.s.2
                                for c in 0..<g.k.2 { sum += xp[row + c] }
                            }
                        }
                        yp[o] = sum * scale
                        o += 1
                    }
                }
            }
        }
    }
    return y
}

/// Gradient of average pooling for an input of shape `inputShape`.
public func avgPoolBackward(_ gradOutput: Tensor, inputShape: [Int], kernel: [Int], stride: [Int]? = nil) throws -> Tensor {
    let g = try PoolGeometry(op: "avgPoolBackward", shape: inputShape, kernel: kernel, stride: stride)
    guard gradOutput.shape == g.outputShape(inputShape) else {
        throw TensorError.shapeMismatch(op: "avgPoolBackward", detail: "gradient \(gradOutput.shape) does not match the output \(g.outputShape(inputShape)) of input \(inputShape)")
    }
    var dx = Tensor(zeros: inputShape)
    let gp = gradOutput.storage.base
    let scale = 1 / Float(g.k.0 * g.k.1 * g.k.2)
    dx.withUnsafeMutableBufferPointer { d in
        let dp = d.baseAddress!
        Threads.parallelFor(g.planes) { p in
            let xp = dp + p * g.inPlane
            var o = p * g.outPlane
            for od in 0..<g.o.0 {
                for oh in 0..<g.o.1 {
                    for ow in 0..<g.o.2 {
                        let v = gp[o] * scale
                        o += 1
                        for a in 0..<g.k.0 {
                            for b in 0..<g.k.1 {
                                let row = ((od * g.s.0 + a) * g.i.1 + oh * g.s.1 + b) * g.i.2 + ow * g.s.2
                                for c in 0..<g.k.2 { xp[row + c] += v }
                            }
                        }
                    }
                }
            }
        }
    }
    return dx
}

/// Taps of the blur filter along one axis: for each output position, three input indices
/// (reflect padding of 1) with binomial weights 1/4, 1/2, 1/4; a unit axis passes through.
private func blurTaps(_ n: Int, stride s: Int, unit: Bool) -> (out: Int, index: [Int], weight: [Float]) {
    if unit { return (1, [0, 0, 0], [1, 0, 0]) }
    let out = (n - 1) / s + 1
    var index = [Int](), weight = [Float]()
    for o in 0..<out {
        for t in 0..<3 {
            var i = o * s - 1 + t
            if i < 0 { i = -i }
            if i >= n { i = 2 * (n - 1) - i }
            index.append(i)
            weight.append(t == 1 ? 0.5 : 0.25)
        }
    }
    return (out, index, weight)
}

/// Shared geometry of `blurPool` and its backward pass.
private struct BlurGeometry {
    var planes: Int, inPlane: Int, outPlane: Int
    var i: (Int, Int, Int)
    var axes: [(out: Int, index: [Int], weight: [Float])]
    var outShape: [Int]

    init(op: String, shape: [Int], stride: Int) throws {
        guard (3...5).contains(shape.count) else {
            throw TensorError.invalidArgument(op: op, detail: "input \(shape) must have rank 3, 4 or 5 ([B, C, spatial…])")
        }
        guard stride > 0 else { throw TensorError.invalidArgument(op: op, detail: "stride \(stride) must be positive") }
        let spatial = Array(shape.dropFirst(2))
        guard spatial.allSatisfy({ $0 >= 2 }) else {
            throw TensorError.invalidArgument(op: op, detail: "input \(shape) needs at least 2 samples per spatial axis for reflect padding")
        }
        let full = [Int](repeating: 1, count: 3 - spatial.count) + spatial
        axes = full.enumerated().map { blurTaps($1, stride: stride, unit: $0 < 3 - spatial.count) }
        planes = shape[0] * shape[1]
        i = (full[0], full[1], full[2])
        inPlane = spatial.reduce(1, *)
        outPlane = axes.map(\.out).reduce(1, *)
        outShape = Array(shape.prefix(2)) + axes.suffix(spatial.count).map(\.out)
    }

    /// Visits every (output, input, weight) triple of one plane.
    @inline(__always) func forEach(_ body: (Int, Int, Float) -> Void) {
        let (ad, ah, aw) = (axes[0], axes[1], axes[2])
        var o = 0
        for od in 0..<ad.out {
            for oh in 0..<ah.out {
                for ow in 0..<aw.out {
                    for a in 0..<3 where ad.weight[od * 3 + a] != 0 {
                        for b in 0..<3 where ah.weight[oh * 3 + b] != 0 {
                            let wab = ad.weight[od * 3 + a] * ah.weight[oh * 3 + b]
                            let row = (ad.index[od * 3 + a] * i.1 + ah.index[oh * 3 + b]) * i.2
                            for c in 0..<3 where aw.weight[ow * 3 + c] != 0 {
                                body(o, row + aw.index[ow * 3 + c], wab * aw.weight[ow * 3 + c])
                            }
                        }
                    }
                    o += 1
                }
            }
        }
    }
}

/// Anti-aliased downsampling: a depthwise binomial `[1, 2, 1]/4` filter on every spatial axis
/// (reflect padding 1), sampled every `stride`; output extent `(n − 1)/stride + 1`.
public func blurPool(_ x: Tensor, stride: Int = 2) throws -> Tensor {
    let g = try BlurGeometry(op: "blurPool", shape: x.shape, stride: stride)
    var y = Tensor(zeros: g.outShape)
    let src = x.storage.base
    y.withUnsafeMutableBufferPointer { yb in
        let yp = yb.baseAddress!
        Threads.parallelFor(g.planes) { p in
            let xp = src + p * g.inPlane, op = yp + p * g.outPlane
            g.forEach { o, i, w in op[o] += w * xp[i] }
        }
    }
    return y
}

/// Gradient of `blurPool` for an input of shape `inputShape`.
public func blurPoolBackward(_ gradOutput: Tensor, inputShape: [Int], stride: Int = 2) throws -> Tensor {
    let g = try BlurGeometry(op: "blurPoolBackward", shape: inputShape, stride: stride)
    guard gradOutput.shape == g.outShape else {
        throw TensorError.shapeMismatch(op: "blurPoolBackward", detail: "gradient \(gradOutput.shape) does not match the output \(g.outShape) of input \(inputShape)")
    }
    var dx = Tensor(zeros: inputShape)
    let gp = gradOutput.storage.base
    dx.withUnsafeMutableBufferPointer { d in
        let dp = d.baseAddress!
        Threads.parallelFor(g.planes) { p in
            let xp = dp + p * g.inPlane, op = gp + p * g.outPlane
            g.forEach { o, i, w in xp[i] += w * op[o] }
        }
    }
    return dx
}

/// N2V2 max-blur pooling: max pooling with kernel 2 and stride 1, then `blurPool` with stride 2
/// (halves each spatial extent like a 2×2 max pool, without its aliasing).
public func maxBlurPool(_ x: Tensor) throws -> Tensor {
    try blurPool(maxPool(x, kernel: [2], stride: [1]), stride: 2)
}
