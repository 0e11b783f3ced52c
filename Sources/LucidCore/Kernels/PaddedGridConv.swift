/// Stride-1 convolution without a column matrix ("shifted rows" implicit GEMM).
///
/// Outputs are computed on the grid of the zero-padded input: output `(od, oh, ow)` sits at grid
/// column `q = (od·Hp + oh)·Wp + ow`, and its input under tap `(a, b, c)` sits at `q + offset`,
/// `offset = (a·dD·Hp + b·dH)·Wp + c·dW`. So row `(ci, tap)` of the im2col matrix is the padded
/// channel `ci` shifted by `offset`: the GEMM reads it in place. Grid columns with `oh ≥ oH` or
/// `ow ≥ oW` are wasted work (a few percent) and are dropped when storing. Padded planes are laid
/// out channel-major (`[cin, batch, plane]`), so one GEMM column range spans several images:
/// grid column `Q = b·plane + q` (small deep-layer images still give long GEMMs).
struct PaddedGridConv {
    let g: ConvGeometry
    let dP, hP, wP: Int
    /// Elements of one padded channel.
    let plane: Int
    /// Grid columns of one image that hold outputs: up to and including the last valid one.
    let span: Int
    /// Grid columns of the whole batch: `(batch − 1)·plane + span`.
    let total: Int
    let offsets: [Int]

    init(_ g: ConvGeometry) {
        self.g = g
        dP = g.iD + 2 * g.pD; hP = g.iH + 2 * g.pH; wP = g.iW + 2 * g.pW
        plane = dP * hP * wP
        span = ((g.oD - 1) * hP + g.oH - 1) * wP + g.oW
        total = (g.batch - 1) * plane + span
        var o: [Int] = []
        for a in 0..<g.kD { for b in 0..<g.kH { for c in 0..<g.kW {
            o.append((a * g.dD * hP + b * g.dH) * wP + c * g.dW)
        } } }
        offsets = o
    }

    /// Whether this path applies (every stride is 1).
    static func applies(_ g: ConvGeometry) -> Bool { g.sD == 1 && g.sH == 1 && g.sW == 1 }

    /// Zero-padded copies of `planes` (= `channels·batch`) planes from a `[batch, channels, …]`
    /// tensor `x`, laid out `[channels, batch, plane]`; `body` receives them.
    func withPadded<R>(_ x: UnsafePointer<Float>, channels: Int, _ body: (UnsafePointer<Float>) -> R) -> R {
        ScratchPool.with(channels * g.batch * plane) { xp in
            Threads.parallelFor(channels * g.batch) { i in
                let c = i / g.batch, b = i - c * g.batch
                let src = x + (b * channels + c) * g.inPlane, dst = xp + i * plane
                dst.initialize(repeating: 0, count: plane)
                for d in 0..<g.iD {
                    for h in 0..<g.iH {
                        (dst + ((d + g.pD) * hP + h + g.pH) * wP + g.pW).update(from: src + (d * g.iH + h) * g.iW, count: g.iW)
                    }
                }
            }
            return body(UnsafePointer(xp))
        }
    }

    /// Fills `rows` (`cin·taps` entries) with the shifted channel rows of the padded batch
    /// (`[cin, batch, plane]`), from batch-grid column `q0`.
    @inline(__always)
    func fillRows(_ rows: UnsafeMutablePointer<UnsafePointer<Float>>, padded: UnsafePointer<Float>, from q0: Int) {
        var r = 0
        for ci in 0..<g.cin {
            let base = padded + ci * g.batch * plane + q0
            for off in offsets { rows[r] = base + off; r += 1 }
        }
    }

    /// Calls `body(Q, n, b, pixel)` for each run of `n` valid batch-grid columns starting at
    /// `Q` in `q0..<q1`: image `b`, flat output index `pixel` of the run's first column.
    @inline(__always)
    func forEachRun(_ q0: Int, _ q1: Int, _ body: (Int, Int, Int, Int) -> Void) {
        var q = q0
        while q < q1 {
            let b = q / plane, inImage = q - b * plane
            if inImage >= span { q += plane - inImage; continue }
            let od = inImage / (hP * wP), rem = inImage - od * hP * wP
            let oh = rem / wP, ow = rem - oh * wP
            if oh >= g.oH || ow >= g.oW {
                q += oh >= g.oH ? (hP - oh) * wP - ow : wP - ow
                continue
            }
            let n = min(g.oW - ow, q1 - q)
            body(q, n, b, (od * g.oH + oh) * g.oW + ow)
            q += n
        }
    }

    /// Grid columns per work item of the forward pass (a multiple of the 48-column tile).
    static let forwardChunk = 48 * 32

    /// `y = w ⋆ x + bias` (w packed `[cout, cin·taps]`).
    func forward(x: UnsafePointer<Float>, weight w: Gemm.PackedA, bias: UnsafePointer<Float>?,
                 y: UnsafeMutablePointer<Float>, loop: Gemm.Loop) {
        let chunk = PaddedGridConv.forwardChunk
        let nChunks = (total + chunk - 1) / chunk
        let ld = chunk + 16
        withPadded(x, channels: g.cin) { xp in
            Threads.parallelFor(nChunks) { item in
                let q0 = item * chunk, q1 = min(total, q0 + chunk)
                ScratchPool.with(g.cout * ld) { c in
                    withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: g.k) { rows in
                        fillRows(rows.baseAddress!, padded: xp, from: q0)
                        Gemm.multiply(w, rows: UnsafePointer(rows.baseAddress!), n: q1 - q0, c, ldc: ld, accumulate: false,
                                      loop: loop)
                    }
                    forEachRun(q0, q1) { q, n, b, pixel in
                        let yb = y + b * g.cout * g.outPlane + pixel
                        for co in 0..<g.cout {
                            let src = c + co * ld + (q - q0), dst = yb + co * g.outPlane
                            let v = bias?[co] ?? 0
                            for i in 0..<n { dst[i] = src[i] + v }
                        }
                    }
                }
            }
        }
    }

    /// `dw[co, ci, tap] = Σ dy[co, pixel]·x[ci, pixel + tap]` (overwrites `dw`).
    func backwardWeight(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>) {
        // dy on the batch grid (`[cout, batch, plane]`), zero at wasted columns so they add nothing.
        let pitch = g.batch * plane
        ScratchPool.with(g.cout * pitch) { dyGrid in
            Threads.parallelFor(g.cout * g.batch) { i in
                let co = i / g.batch, b = i - co * g.batch
                let dst = dyGrid + i * plane, src = dy + (b * g.cout + co) * g.outPlane
                dst.initialize(repeating: 0, count: plane)
                forEachRun(0, span) { q, n, _, pixel in (dst + q).update(from: src + pixel, count: n) }
            }
            let chunk = 8192
            let items = (total + chunk - 1) / chunk
            let parts = max(1, min(Threads.count, items))
            let accumulators = (0..<parts).map { _ in DotAccumulator(m: g.cout, n: g.k) }
            withPadded(x, channels: g.cin) { xp in
                Threads.parallelFor(parts) { part in
                    let acc = accumulators[part]
                    withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: g.k) { rows in
                        for item in (items * part / parts)..<(items * (part + 1) / parts) {
                            let q0 = item * chunk, q1 = min(total, q0 + chunk)
                            fillRows(rows.baseAddress!, padded: xp, from: q0)
                            acc.add(k: q1 - q0, dyGrid + q0, lda: pitch, rows: UnsafePointer(rows.baseAddress!))
                        }
                    }
                }
            }
            dw.initialize(repeating: 0, count: g.cout * g.k)
            for acc in accumulators { acc.reduce(into: dw, ldc: g.k) }
        }
    }
}
