import COpenBLAS

/// Stride-1 convolutions of small images with many channels (the deep levels of a 3-D U-Net),
/// as GEMMs on explicit columns of the whole batch.
///
/// On a small image the padded grid of `PaddedGridConv` is mostly border (a 2×4×4 image padded by
/// one is 4×6×6: 4.5 grid columns per output), and its weight gradient keeps 16-lane partial
/// sums for each of `cout·cin·taps` weights. Here the im2col columns of only the valid outputs
/// of every image sit side by side (`[cin·taps, columns]`, in chunks), and the work is split
/// over rows of the big operand instead of columns:
/// - forward: `y[cout, columns] = W·col`, threads take ranges of `W`'s 8-row panels;
/// - weight gradient: `dWᵀ[cin·taps, cout] += col·dyᵀ`, threads take ranges of `col` rows.
/// The input gradient is the forward convolution with the flipped kernel (`ConvKernels`), so it
/// takes this path too. Either product runs on Lucid's micro-kernels or as one OpenBLAS
/// `sgemm` per chunk on all threads (`blas`).
struct BatchedColumns {
    let g: ConvGeometry

    /// Floats of the column buffer of one chunk (tests lower it to exercise many chunks).
    nonisolated(unsafe) static var chunkFloats = 1 << 21

    init(_ g: ConvGeometry) { self.g = g }

    /// Whether this path applies: stride 1, at least 128 output channels (gathering columns
    /// costs little next to the products, and the weight gradient's 48-column tiles are mostly
    /// full), and a padded grid with more than `waste` cells per output. Measured on the fnet
    /// levels: the forward pass (and the input gradient) gains from a waste of 2 (4×8×8 images;
    /// on 8×16×16 and 16×32×32 images gathering the columns costs more than the border saves),
    /// the weight gradient from 1.4 (8×16×16).
    static func applies(_ g: ConvGeometry, waste: Double) -> Bool {
        guard PaddedGridConv.applies(g), g.cout >= 128 else { return false }
        let padded = (g.iD + 2 * g.pD) * (g.iH + 2 * g.pH) * (g.iW + 2 * g.pW)
        return Double(padded) > waste * Double(g.outPlane)
    }

    /// Padded-grid waste above which the forward pass takes this path.
    static let forwardWaste = 2.0
    /// Padded-grid waste above which the weight gradient takes this path.
    static let weightWaste = 1.4

    /// Output rows (`oW` columns each) of one chunk.
    private var rowsPerChunk: Int { max(1, BatchedColumns.chunkFloats / (g.k * g.oW)) }

    /// Chunks of global output rows `0..<batch·outRows` (rows of consecutive images follow each other).
    private func chunks() -> [Range<Int>] {
        let total = g.batch * g.outRows, step = rowsPerChunk
        return stride(from: 0, to: total, by: step).map { $0..<min(total, $0 + step) }
    }

    /// Calls `body(b, rows, column)` for each image `b` the global rows `rows` touch: the image's
    /// own row range and the chunk column where it starts.
    private func forEachImage(in rows: Range<Int>, _ body: (Int, Range<Int>, Int) -> Void) {
        var r = rows.lowerBound
        while r < rows.upperBound {
            let b = r / g.outRows, first = r - b * g.outRows
            let last = min(g.outRows, first + rows.upperBound - r)
            body(b, first..<last, (r - rows.lowerBound) * g.oW)
            r += last - first
        }
    }

    /// Fills `col` (`cin·taps` rows, leading dimension `ld`) with the columns of global output
    /// rows `rows`, in parallel over input channels.
    private func gather(_ x: UnsafePointer<Float>, rows: Range<Int>, into col: UnsafeMutablePointer<Float>, ld: Int) {
        Threads.parallelFor(g.cin) { ci in
            forEachImage(in: rows) { b, imageRows, column in
                g.im2col(x + b * g.cin * g.inPlane, rows: imageRows.lowerBound, imageRows.upperBound,
                         into: col + column, ld: ld, channels: ci..<(ci + 1))
            }
        }
    }

    /// Rounds up to whole 48-column tiles of the micro-kernel.
    private static func tiles(_ n: Int) -> Int { (n + 47) / 48 * 48 }

    /// `y = W ⋆ x + bias` (`w` the `[cout, cin·taps]` kernel matrix; packed for the
    /// micro-kernels, dense for OpenBLAS).
    func forward(x: UnsafePointer<Float>, weight: ConvWeight, bias: UnsafePointer<Float>?,
                 y: UnsafeMutablePointer<Float>, blas: Bool) {
        let maxColumns = BatchedColumns.tiles(rowsPerChunk * g.oW)
        let packed = blas ? nil : weight.packed()
        weight.withDense(if: blas) { dense in
        ScratchPool.with(g.k * maxColumns) { col in
            ScratchPool.with(g.cout * maxColumns) { c in
                for rows in chunks() {
                    let n = rows.count * g.oW, ld = BatchedColumns.tiles(n)
                    gather(x, rows: rows, into: col, ld: ld)
                    if let w = packed {
                        if ld > n { for r in 0..<g.k { (col + r * ld + n).initialize(repeating: 0, count: ld - n) } }
                        let groups = min(Threads.count, w.panels)
                        Threads.parallelFor(groups) { group in
                            let panels = (w.panels * group / groups)..<(w.panels * (group + 1) / groups)
                            Gemm.multiply(w, col, ldb: ld, n: ld, c, ldc: ld, accumulate: false, panels: panels)
                        }
                    } else {
                        Threads.prepareBLAS()
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(g.cout), Int32(n), Int32(g.k), 1,
                                    dense!, Int32(g.k), col, Int32(ld), 0, c, Int32(ld))
                    }
                    Threads.parallelFor(g.cout) { co in
                        let v = bias?[co] ?? 0
                        forEachImage(in: rows) { b, imageRows, column in
                            let dst = y + (b * g.cout + co) * g.outPlane + imageRows.lowerBound * g.oW
                            let src = c + co * ld + column
                            for i in 0..<(imageRows.count * g.oW) { dst[i] = src[i] + v }
                        }
                    }
                }
            }
        }
        }
    }

    /// `dw[co, ci, tap] = Σ dy[co, pixel]·x[ci, pixel + tap]` (overwrites `dw`).
    func backwardWeight(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>, blas: Bool) {
        let maxColumns = rowsPerChunk * g.oW
        let ldo = BatchedColumns.tiles(g.cout)
        let rowPanels = (g.k + 7) / 8
        let groups = min(Threads.count, rowPanels)
        ScratchPool.with(g.k * maxColumns) { col in
            ScratchPool.with(maxColumns * ldo) { dyT in
                ScratchPool.with(g.k * ldo) { acc in
                    for (index, rows) in chunks().enumerated() {
                        let n = rows.count * g.oW
                        gather(x, rows: rows, into: col, ld: n)
                        // dyᵀ: one row per column (pixel), `cout` gradients then zeros to a whole tile.
                        Threads.parallelFor(n) { j in
                            let row = dyT + j * ldo
                            let global = rows.lowerBound * g.oW + j
                            let b = global / g.outPlane, pixel = global - b * g.outPlane
                            let src = dy + b * g.cout * g.outPlane + pixel
                            for co in 0..<g.cout { row[co] = src[co * g.outPlane] }
                            if ldo > g.cout { (row + g.cout).initialize(repeating: 0, count: ldo - g.cout) }
                        }
                        if blas {
                            Threads.prepareBLAS()
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(g.k), Int32(ldo), Int32(n), 1,
                                        col, Int32(n), dyT, Int32(ldo), index > 0 ? 1 : 0, acc, Int32(ldo))
                            continue
                        }
                        Threads.parallelFor(groups) { group in
                            let r0 = 8 * (rowPanels * group / groups), r1 = min(g.k, 8 * (rowPanels * (group + 1) / groups))
                            guard r0 < r1 else { return }
                            let packed = Gemm.PackedA(m: r1 - r0, k: n, from: col + r0 * n, lda: n)
                            Gemm.multiply(packed, dyT, ldb: ldo, n: ldo, acc + r0 * ldo, ldc: ldo, accumulate: index > 0)
                        }
                    }
                    Threads.parallelFor(g.cout) { co in
                        for r in 0..<g.k { dw[co * g.k + r] = acc[r * ldo + co] }
                    }
                }
            }
        }
    }
}
