import COpenBLAS

/// How one convolution (one direction of one geometry) is computed. `ConvPlanner` picks one
/// per geometry and direction by timing the applicable ones; all compute the same result up
/// to rounding.
enum ConvMethod: String, CaseIterable, Sendable {
    /// Implicit GEMM on the zero-padded grid (`PaddedGridConv`), `B` read in place (stride 1).
    case paddedGrid
    /// The same with `B` packed into aligned strips (`Gemm.Loop.packed`).
    case paddedGridPacked
    /// Explicit columns of the whole batch, Lucid's micro-kernels (`BatchedColumns`, stride 1).
    case batchedColumns
    /// Explicit columns of the whole batch, one OpenBLAS `sgemm` per chunk.
    case batchedColumnsBLAS
    /// im2col chunks of each image, Lucid's micro-kernels (any stride).
    case columns
    /// im2col chunks of each image, OpenBLAS `sgemm` (any stride).
    case columnsBLAS
    /// Input gradient as `col2im(Wᵀ·dy)` with Lucid's micro-kernels (any stride).
    case scatter
    /// Input gradient as `col2im(Wᵀ·dy)` with OpenBLAS.
    case scatterBLAS
}

/// The kernel matrix `[rows, columns]` of a forward convolution: a weight `[cout, cin·taps]`
/// as given, or, for an input gradient, the weight flipped in space with its channels swapped
/// (`[cin, cout·taps]`).
struct ConvWeight {
    let w: UnsafePointer<Float>
    let cout: Int, cin: Int, taps: Int
    let flipped: Bool

    var rows: Int { flipped ? cin : cout }
    var columns: Int { (flipped ? cout : cin) * taps }

    /// The matrix packed for `Gemm.multiply`.
    func packed() -> Gemm.PackedA {
        flipped ? .flippedKernel(w, cout: cout, cin: cin, taps: taps) : Gemm.PackedA(m: cout, k: cin * taps, from: w, lda: cin * taps)
    }

    /// Runs `body` with the matrix row-major (the weight itself, or a flipped copy) when
    /// `needed`, else with nil.
    func withDense<R>(if needed: Bool, _ body: (UnsafePointer<Float>?) -> R) -> R {
        guard needed else { return body(nil) }
        guard flipped else { return body(w) }
        return ScratchPool.with(rows * columns) { d in
            for co in 0..<cout {
                for ci in 0..<cin {
                    let src = w + (co * cin + ci) * taps + taps - 1, dst = d + ci * columns + co * taps
                    for t in 0..<taps { dst[t] = src[-t] }
                }
            }
            return body(UnsafePointer(d))
        }
    }
}

/// Convolution drivers on raw buffers, one per `ConvMethod`; the entry points without a method
/// ask `ConvPlanner` for it. Lucid's own paths multiply with the SIMD16 micro-kernels of `Gemm`
/// under `Threads.parallelFor`; the BLAS paths call `cblas_sgemm`, with one OpenBLAS thread per
/// worker inside a parallel loop or all threads outside one.
enum ConvKernels {
    /// Leading dimension of a column chunk of `n` columns: a multiple of 16, never a multiple
    /// of 256 (rows 4 KiB apart would alias in the L1 cache).
    static func leadingDimension(_ n: Int) -> Int {
        let ld = (n + 15) & ~15
        return ld % 256 == 0 ? ld + 16 : ld
    }

    /// `y[b, co, pixel] = Σ w[co, ·]·col[·, pixel] + bias[co]`, `w` the raw `[cout, cin, taps]` kernel.
    static func forward(_ g: ConvGeometry, x: UnsafePointer<Float>, weight w: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>) {
        let method = ConvPlanner.method(for: g, .forward)
        forward(g, x: x, weight: ConvWeight(w: w, cout: g.cout, cin: g.cin, taps: g.taps, flipped: false), bias: bias,
                y: y, method: method)
    }

    /// The forward convolution by `method` (one of `ConvPlanner.candidates(g, .forward)`).
    static func forward(_ g: ConvGeometry, x: UnsafePointer<Float>, weight w: ConvWeight, bias: UnsafePointer<Float>?,
                        y: UnsafeMutablePointer<Float>, method: ConvMethod) {
        switch method {
        case .paddedGrid, .paddedGridPacked:
            PaddedGridConv(g).forward(x: x, weight: w.packed(), bias: bias, y: y, loop: method == .paddedGrid ? .strips : .packed)
        case .batchedColumns, .batchedColumnsBLAS:
            BatchedColumns(g).forward(x: x, weight: w, bias: bias, y: y, blas: method == .batchedColumnsBLAS)
        case .columns, .columnsBLAS:
            columnsForward(g, x: x, weight: w, bias: bias, y: y, blas: method == .columnsBLAS)
        case .scatter, .scatterBLAS:
            preconditionFailure("\(method) computes input gradients only")
        }
    }

    /// im2col chunks that fit in cache, one (image, chunk) pair per work item.
    static func columnsForward(_ g: ConvGeometry, x: UnsafePointer<Float>, weight w: ConvWeight, bias: UnsafePointer<Float>?,
                               y: UnsafeMutablePointer<Float>, blas: Bool) {
        let chunk = g.rowsPerChunk()
        let nChunks = (g.outRows + chunk - 1) / chunk
        let ld = leadingDimension(chunk * g.oW)
        let packed = blas ? nil : w.packed()
        w.withDense(if: blas) { dense in
            Threads.prepareBLAS()
            Threads.parallelFor(g.batch * nChunks) { item in
                let b = item / nChunks
                let r0 = (item % nChunks) * chunk, r1 = min(g.outRows, r0 + chunk)
                let n = (r1 - r0) * g.oW
                let xb = x + b * g.cin * g.inPlane
                let yb = y + b * g.cout * g.outPlane + r0 * g.oW
                ScratchPool.with(g.k * ld) { col in
                    g.im2col(xb, rows: r0, r1, into: col, ld: ld)
                    if let packed {
                        Gemm.multiply(packed, col, ldb: ld, n: n, yb, ldc: g.outPlane, accumulate: false)
                    } else {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(g.cout), Int32(n), Int32(g.k), 1,
                                    dense!, Int32(g.k), col, Int32(ld), 0, yb, Int32(g.outPlane))
                    }
                }
                if let bias {
                    for co in 0..<g.cout {
                        let p = yb + co * g.outPlane, v = bias[co]
                        for i in 0..<n { p[i] += v }
                    }
                }
            }
        }
    }

    /// Whether the input gradient of `g` is a forward convolution of `dy` with the flipped
    /// kernel (`flippedGeometry`): stride 1 and padding ≤ d(k−1) on every axis.
    static func inputGradientIsForward(_ g: ConvGeometry) -> Bool {
        g.sD == 1 && g.sH == 1 && g.sW == 1 && g.pD <= g.dD * (g.kD - 1) && g.pH <= g.dH * (g.kH - 1)
            && g.pW <= g.dW * (g.kW - 1)
    }

    /// The forward convolution (output → input) whose result is the input gradient of `g`.
    static func flippedGeometry(_ g: ConvGeometry) -> ConvGeometry {
        ConvGeometry(batch: g.batch, cin: g.cout, cout: g.cin, spatialIn: [g.oD, g.oH, g.oW],
                     kernel: [g.kD, g.kH, g.kW], stride: [1, 1, 1],
                     padding: [g.dD * (g.kD - 1) - g.pD, g.dH * (g.kH - 1) - g.pH, g.dW * (g.kW - 1) - g.pW],
                     dilation: [g.dD, g.dH, g.dW])
    }

    /// Gradient of the input, `w` the raw `[cout, cin, taps]` kernel; `dx` is fully overwritten.
    static func backwardData(_ g: ConvGeometry, dy: UnsafePointer<Float>, weight w: UnsafePointer<Float>,
                             dx: UnsafeMutablePointer<Float>) {
        backwardData(g, dy: dy, weight: w, dx: dx, method: ConvPlanner.method(for: g, .inputGradient))
    }

    /// The input gradient by `method`: `scatter`/`scatterBLAS` as `dx = col2im(wᵀ·dy)`, any
    /// other as the forward convolution of `dy` with the flipped kernel (no scatter).
    static func backwardData(_ g: ConvGeometry, dy: UnsafePointer<Float>, weight w: UnsafePointer<Float>,
                             dx: UnsafeMutablePointer<Float>, method: ConvMethod) {
        guard method == .scatter || method == .scatterBLAS else {
            forward(flippedGeometry(g), x: dy, weight: ConvWeight(w: w, cout: g.cout, cin: g.cin, taps: g.taps, flipped: true),
                    bias: nil, y: dx, method: method)
            return
        }
        let blas = method == .scatterBLAS
        let packed = blas ? nil : Gemm.PackedA(m: g.k, k: g.cout, from: w, lda: g.k, transposed: true)
        dx.initialize(repeating: 0, count: g.batch * g.cin * g.inPlane)
        let chunk = g.rowsPerChunk()
        let ld = leadingDimension(chunk * g.oW)
        Threads.prepareBLAS()
        // Chunks of one image overlap in `dx`, so images are the unit of parallel work.
        Threads.parallelFor(g.batch) { b in
            ScratchPool.with(g.k * ld) { col in
                var r0 = 0
                while r0 < g.outRows {
                    let r1 = min(g.outRows, r0 + chunk)
                    let dyb = dy + b * g.cout * g.outPlane + r0 * g.oW
                    if let packed {
                        Gemm.multiply(packed, dyb, ldb: g.outPlane, n: (r1 - r0) * g.oW, col, ldc: ld, accumulate: false)
                    } else {
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(g.k), Int32((r1 - r0) * g.oW), Int32(g.cout), 1,
                                    w, Int32(g.k), dyb, Int32(g.outPlane), 0, col, Int32(ld))
                    }
                    g.col2im(col, ld: ld, rows: r0, r1, into: dx + b * g.cin * g.inPlane)
                    r0 = r1
                }
            }
        }
    }

    /// Gradient of the kernel: `dw[co, ·] = Σ_pixels dy[co, pixel]·col[·, pixel]` (overwrites `dw`).
    static func backwardWeight(_ g: ConvGeometry, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
                               dw: UnsafeMutablePointer<Float>) {
        backwardWeight(g, dy: dy, x: x, dw: dw, method: ConvPlanner.method(for: g, .weightGradient))
    }

    /// The weight gradient by `method` (one of `ConvPlanner.candidates(g, .weightGradient)`).
    static func backwardWeight(_ g: ConvGeometry, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
                               dw: UnsafeMutablePointer<Float>, method: ConvMethod) {
        switch method {
        case .paddedGrid, .paddedGridPacked: PaddedGridConv(g).backwardWeight(dy: dy, x: x, dw: dw)
        case .batchedColumns, .batchedColumnsBLAS:
            BatchedColumns(g).backwardWeight(dy: dy, x: x, dw: dw, blas: method == .batchedColumnsBLAS)
        case .columns, .columnsBLAS: columnsWeight(g, dy: dy, x: x, dw: dw, blas: method == .columnsBLAS)
        case .scatter, .scatterBLAS: preconditionFailure("\(method) computes input gradients only")
        }
    }

    /// The weight gradient over im2col chunks: each worker sums its share of (image, chunk)
    /// items (16-lane dot accumulators, or OpenBLAS `sgemm` into a partial `dw`), then the
    /// partial sums are added in worker order.
    static func columnsWeight(_ g: ConvGeometry, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
                              dw: UnsafeMutablePointer<Float>, blas: Bool) {
        // At least ~1024 columns per chunk, so the 16-lane accumulators are revisited rarely.
        let chunk = g.rowsPerChunk(targetFloats: max(1 << 18, g.k * 1024))
        let nChunks = (g.outRows + chunk - 1) / chunk
        let items = g.batch * nChunks
        let parts = max(1, min(Threads.inParallelRegion ? 1 : Threads.count, items))
        let size = g.cout * g.k
        let ld = leadingDimension(chunk * g.oW)
        let accumulators = blas ? [] : (0..<parts).map { _ in DotAccumulator(m: g.cout, n: g.k) }
        ScratchPool.with(blas ? parts * size : 1) { partials in
            if blas { partials.initialize(repeating: 0, count: parts * size) }
            Threads.prepareBLAS()
            Threads.parallelFor(parts) { part in
                let lo = items * part / parts, hi = items * (part + 1) / parts
                ScratchPool.with(g.k * ld) { col in
                    for item in lo..<hi {
                        let b = item / nChunks
                        let r0 = (item % nChunks) * chunk, r1 = min(g.outRows, r0 + chunk)
                        let n = (r1 - r0) * g.oW
                        let xb = x + b * g.cin * g.inPlane
                        let dyb = dy + b * g.cout * g.outPlane + r0 * g.oW
                        g.im2col(xb, rows: r0, r1, into: col, ld: ld)
                        if blas {
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(g.cout), Int32(g.k), Int32(n), 1,
                                        dyb, Int32(g.outPlane), col, Int32(ld), 1, partials + part * size, Int32(g.k))
                        } else {
                            accumulators[part].add(k: n, dyb, lda: g.outPlane, col, ldb: ld)
                        }
                    }
                }
            }
            dw.initialize(repeating: 0, count: size)
            if blas {
                for part in 0..<parts { for i in 0..<size { dw[i] += partials[part * size + i] } }
            } else {
                for acc in accumulators { acc.reduce(into: dw, ldc: g.k) }
            }
        }
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
                while i + 16 <= plane { acc += load16(p, i); i += 16 }
                while i < plane { tail += p[i]; i += 1 }
            }
            db[c] = acc.sum() + tail
        }
    }
}
