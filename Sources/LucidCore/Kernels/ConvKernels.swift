/// Convolution drivers on raw buffers. Stride-1 convolutions (and input gradients through the
/// flipped kernel) run as implicit GEMMs on the padded grid (`PaddedGrid`), or on explicit
/// columns of the whole batch when the images are small and the channels many
/// (`BatchedColumns`); strided ones use column chunks (im2col) that fit in cache. Both multiply with the SIMD16 micro-kernels of
/// `Gemm`, under `Threads.parallelFor` over (image, chunk) pairs.
enum ConvKernels {
    /// Leading dimension of a column chunk of `n` columns: a multiple of 16, never a multiple
    /// of 256 (rows 4 KiB apart would alias in the L1 cache).
    static func leadingDimension(_ n: Int) -> Int {
        let ld = (n + 15) & ~15
        return ld % 256 == 0 ? ld + 16 : ld
    }

    /// `y[b, co, pixel] = Σ w[co, ·]·col[·, pixel] + bias[co]`; `w` is packed `[cout, k]`.
    static func forward(_ g: ConvGeometry, x: UnsafePointer<Float>, weight w: Gemm.PackedA,
                        bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>) {
        if BatchedColumns.applies(g, waste: BatchedColumns.forwardWaste) {
            BatchedColumns(g).forward(x: x, weight: w, bias: bias, y: y)
            return
        }
        if PaddedGrid.applies(g) {
            PaddedGrid(g).forward(x: x, weight: w, bias: bias, y: y)
            return
        }
        let chunk = g.rowsPerChunk()
        let nChunks = (g.outRows + chunk - 1) / chunk
        let ld = leadingDimension(chunk * g.oW)
        Threads.parallelFor(g.batch * nChunks) { item in
            let b = item / nChunks
            let r0 = (item % nChunks) * chunk, r1 = min(g.outRows, r0 + chunk)
            let n = (r1 - r0) * g.oW
            let xb = x + b * g.cin * g.inPlane
            let yb = y + b * g.cout * g.outPlane + r0 * g.oW
            ScratchPool.with(g.k * ld) { col in
                g.im2col(xb, rows: r0, r1, into: col, ld: ld)
                Gemm.multiply(w, col, ldb: ld, n: n, yb, ldc: g.outPlane, accumulate: false)
            }
            if let bias {
                for co in 0..<g.cout {
                    let p = yb + co * g.outPlane, v = bias[co]
                    for i in 0..<n { p[i] += v }
                }
            }
        }
    }

    /// Gradient of the input: `dx = col2im(wᵀ·dy)`. With stride 1 and padding ≤ d(k−1) it is
    /// the forward convolution of `dy` with the flipped, transposed kernel (no scatter).
    /// `w` is the raw `[cout, cin, taps]` kernel; `dx` is fully overwritten.
    static func backwardData(_ g: ConvGeometry, dy: UnsafePointer<Float>, weight w: UnsafePointer<Float>,
                             dx: UnsafeMutablePointer<Float>) {
        let taps = g.taps
        let unitStride = g.sD == 1 && g.sH == 1 && g.sW == 1
        if unitStride && g.pD <= g.dD * (g.kD - 1) && g.pH <= g.dH * (g.kH - 1) && g.pW <= g.dW * (g.kW - 1) {
            let t = ConvGeometry(batch: g.batch, cin: g.cout, cout: g.cin, spatialIn: [g.oD, g.oH, g.oW],
                                 kernel: [g.kD, g.kH, g.kW], stride: [1, 1, 1],
                                 padding: [g.dD * (g.kD - 1) - g.pD, g.dH * (g.kH - 1) - g.pH, g.dW * (g.kW - 1) - g.pW],
                                 dilation: [g.dD, g.dH, g.dW])
            forward(t, x: dy, weight: .flippedKernel(w, cout: g.cout, cin: g.cin, taps: taps), bias: nil, y: dx)
            return
        }
        let packed = Gemm.PackedA(m: g.k, k: g.cout, from: w, lda: g.k, transposed: true)
        dx.initialize(repeating: 0, count: g.batch * g.cin * g.inPlane)
        let chunk = g.rowsPerChunk()
        let ld = leadingDimension(chunk * g.oW)
        // Chunks of one image overlap in `dx`, so images are the unit of parallel work.
        Threads.parallelFor(g.batch) { b in
            ScratchPool.with(g.k * ld) { col in
                var r0 = 0
                while r0 < g.outRows {
                    let r1 = min(g.outRows, r0 + chunk)
                    Gemm.multiply(packed, dy + b * g.cout * g.outPlane + r0 * g.oW, ldb: g.outPlane,
                                  n: (r1 - r0) * g.oW, col, ldc: ld, accumulate: false)
                    g.col2im(col, ld: ld, rows: r0, r1, into: dx + b * g.cin * g.inPlane)
                    r0 = r1
                }
            }
        }
    }

    /// Gradient of the kernel: `dw[co, ·] = Σ_pixels dy[co, pixel]·col[·, pixel]` (overwrites `dw`).
    static func backwardWeight(_ g: ConvGeometry, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
                               dw: UnsafeMutablePointer<Float>) {
        if BatchedColumns.applies(g, waste: BatchedColumns.weightWaste) {
            BatchedColumns(g).backwardWeight(dy: dy, x: x, dw: dw)
            return
        }
        if PaddedGrid.applies(g) {
            PaddedGrid(g).backwardWeight(dy: dy, x: x, dw: dw)
            return
        }
        // At least ~1024 columns per chunk, so the 16-lane accumulators are revisited rarely.
        let chunk = g.rowsPerChunk(targetFloats: max(1 << 18, g.k * 1024))
        let nChunks = (g.outRows + chunk - 1) / chunk
        let items = g.batch * nChunks
        let parts = max(1, min(Threads.count, items))
        let size = g.cout * g.k
        let ld = leadingDimension(chunk * g.oW)
        let accumulators = (0..<parts).map { _ in DotAccumulator(m: g.cout, n: g.k) }
        Threads.parallelFor(parts) { part in
            let acc = accumulators[part]
            let lo = items * part / parts, hi = items * (part + 1) / parts
            ScratchPool.with(g.k * ld) { col in
                for item in lo..<hi {
                    let b = item / nChunks
                    let r0 = (item % nChunks) * chunk, r1 = min(g.outRows, r0 + chunk)
                    let n = (r1 - r0) * g.oW
                    let xb = x + b * g.cin * g.inPlane
                    let dyb = dy + b * g.cout * g.outPlane + r0 * g.oW
                    g.im2col(xb, rows: r0, r1, into: col, ld: ld)
                    acc.add(k: n, dyb, lda: g.outPlane, col, ldb: ld)
                }
            }
        }
        dw.initialize(repeating: 0, count: size)
        for acc in accumulators { acc.reduce(into: dw, ldc: g.k) }
    }

    /// `db[c] = Σ_{b, pixel} dy[b, c, pixel]`.
    static func biasGradient(_ dy: UnsafePointer<Float>, batch: Int, channels: Int, plane: Int,
                             into db: UnsafeMutablePointer<Float>) {
        Threads.parallelFor(channels) { c in
            var acc = SIMD16<Float>(repeating: 0)
            var tail: Float = 0
            for b in 0..<batch {
                let p = dy + (b * channels + c) * plane
                var i = 0
                while i + 16 <= plane { acc += Gemm.load(p + i); i += 16 }
                while i < plane { tail += p[i]; i += 1 }
            }
            db[c] = acc.sum() + tail
        }
    }
}
