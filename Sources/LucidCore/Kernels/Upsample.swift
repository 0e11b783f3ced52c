/// Upsampling of `[B, C, spatial…]` tensors by integer factors, with PyTorch semantics.

/// Interpolation of `upsample`.
public enum UpsampleMode: Sendable {
    /// Each output sample copies the input sample it falls in.
    case nearest
    /// Linear / bilinear / trilinear interpolation with `align_corners = false`.
    case linear
}

/// Per-axis interpolation table: output `o` reads `lo[o]` with weight `1 − t[o]` and `hi[o]` with `t[o]`.
private struct AxisTable {
    var n: Int, out: Int
    var lo: [Int], hi: [Int], t: [Float]

    init(n: Int, scale: Int, mode: UpsampleMode) {
        self.n = n
        out = n * scale
        lo = []; hi = []; t = []
        for o in 0..<out {
            switch mode {
            case .nearest:
                lo.append(o / scale); hi.append(o / scale); t.append(0)
            case .linear:
                let src = max(0, (Float(o) + 0.5) / Float(scale) - 0.5)
                let i0 = min(Int(src), n - 1)
                lo.append(i0); hi.append(min(i0 + 1, n - 1)); t.append(src - Float(i0))
            }
        }
    }
}

private struct UpsampleGeometry {
    var planes: Int, inPlane: Int, outPlane: Int
    var d: AxisTable, h: AxisTable, w: AxisTable
    var outShape: [Int]

    init(op: String, shape: [Int], scale: [Int], mode: UpsampleMode) throws {
        guard (3...5).contains(shape.count) else {
            throw TensorError.invalidArgument(op: op, detail: "input \(shape) must have rank 3, 4 or 5 ([B, C, spatial…])")
        }
        let sp = shape.count - 2
        let s = scale.count == 1 ? [Int](repeating: scale[0], count: sp) : scale
        guard s.count == sp, s.allSatisfy({ $0 > 0 }) else {
            throw TensorError.invalidArgument(op: op, detail: "scale \(scale) needs 1 or \(sp) positive entries for input \(shape)")
        }
        let spatial = Array(shape.dropFirst(2))
        let full = [Int](repeating: 1, count: 3 - sp) + spatial
        let fs = [Int](repeating: 1, count: 3 - sp) + s
        d = AxisTable(n: full[0], scale: fs[0], mode: mode)
        h = AxisTable(n: full[1], scale: fs[1], mode: mode)
        w = AxisTable(n: full[2], scale: fs[2], mode: mode)
        planes = shape[0] * shape[1]
        inPlane = spatial.reduce(1, *)
        outPlane = d.out * h.out * w.out
        outShape = Array(shape.prefix(2)) + zip(spatial, s).map { $0 * $1 }
    }
}

/// Upsamples every spatial axis by the integer factors `scale` (one entry applies to all axes).
public func upsample(_ x: Tensor, scale: [Int], mode: UpsampleMode) throws -> Tensor {
    let g = try UpsampleGeometry(op: "upsample", shape: x.shape, scale: scale, mode: mode)
    var y = Tensor(uninitialized: g.outShape)
    let src = x.storage.base
    let (iH, iW) = (g.h.n, g.w.n)
    y.withUnsafeMutableBufferPointer { yb in
        let yp = yb.baseAddress!
        Threads.parallelFor(g.planes) { p in
            let xp = src + p * g.inPlane
            var op = yp + p * g.outPlane
            for od in 0..<g.d.out {
                for oh in 0..<g.h.out {
                    switch mode {
                    case .nearest:
                        let row = xp + (g.d.lo[od] * iH + g.h.lo[oh]) * iW
                        for ow in 0..<g.w.out { op[ow] = row[g.w.lo[ow]] }
                    case .linear:
                        let td = g.d.t[od], th = g.h.t[oh]
                        let r00 = xp + (g.d.lo[od] * iH + g.h.lo[oh]) * iW, r01 = xp + (g.d.lo[od] * iH + g.h.hi[oh]) * iW
                        let r10 = xp + (g.d.hi[od] * iH + g.h.lo[oh]) * iW, r11 = xp + (g.d.hi[od] * iH + g.h.hi[oh]) * iW
                        let w00 = (1 - td) * (1 - th), w01 = (1 - td) * th, w10 = td * (1 - th), w11 = td * th
                        for ow in 0..<g.w.out {
                            let a = g.w.lo[ow], b = g.w.hi[ow], t = g.w.t[ow]
                            let va = w00 * r00[a] + w01 * r01[a] + w10 * r10[a] + w11 * r11[a]
                            let vb = w00 * r00[b] + w01 * r01[b] + w10 * r10[b] + w11 * r11[b]
                            op[ow] = va + t * (vb - va)
                        }
                    }
                    op += g.w.out
                }
            }
        }
    }
    return y
}

/// Gradient of `upsample` for an input of shape `inputShape` (the adjoint interpolation).
public func upsampleBackward(_ gradOutput: Tensor, inputShape: [Int], scale: [Int], mode: UpsampleMode) throws -> Tensor {
    let g = try UpsampleGeometry(op: "upsampleBackward", shape: inputShape, scale: scale, mode: mode)
    guard gradOutput.shape == g.outShape else {
        throw TensorError.shapeMismatch(op: "upsampleBackward", detail: "gradient \(gradOutput.shape) does not match the output \(g.outShape) of input \(inputShape)")
    }
    var dx = Tensor(zeros: inputShape)
    let gsrc = gradOutput.storage.base
    let (iH, iW) = (g.h.n, g.w.n)
    dx.withUnsafeMutableBufferPointer { d in
        let dp = d.baseAddress!
        Threads.parallelFor(g.planes) { p in
            let xp = dp + p * g.inPlane
            var gp = gsrc + p * g.outPlane
            for od in 0..<g.d.out {
                for oh in 0..<g.h.out {
                    switch mode {
                    case .nearest:
                        let row = xp + (g.d.lo[od] * iH + g.h.lo[oh]) * iW
                        for ow in 0..<g.w.out { row[g.w.lo[ow]] += gp[ow] }
                    case .linear:
                        let td = g.d.t[od], th = g.h.t[oh]
                        let r00 = xp + (g.d.lo[od] * iH + g.h.lo[oh]) * iW, r01 = xp + (g.d.lo[od] * iH + g.h.hi[oh]) * iW
                        let r10 = xp + (g.d.hi[od] * iH + g.h.lo[oh]) * iW, r11 = xp + (g.d.hi[od] * iH + g.h.hi[oh]) * iW
                        let w00 = (1 - td) * (1 - th), w01 = (1 - td) * th, w10 = td * (1 - th), w11 = td * th
                        for ow in 0..<g.w.out {
                            let a = g.w.lo[ow], b = g.w.hi[ow], t = g.w.t[ow]
                            let ga = gp[ow] * (1 - t), gb = gp[ow] * t
                            r00[a] += w00 * ga; r01[a] += w01 * ga; r10[a] += w10 * ga; r11[a] += w11 * ga
                            r00[b] += w00 * gb; r01[b] += w01 * gb; r10[b] += w10 * gb; r11[b] += w11 * gb
                        }
                    }
                    gp += g.w.out
                }
            }
        }
    }
    return dx
}
