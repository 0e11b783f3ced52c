/// Single-threaded, register-blocked SIMD16 matrix products for the convolution kernels, and a
/// threaded `sgemm` built on them.
///
/// The micro-kernel computes an 8×48 tile of `C = A·B`: per step along `k` it loads 48 floats
/// of a row of `B` (three 16-lane vectors) and broadcasts 8 values of `A` (one per tile row)
/// into 24 accumulators: 28 of the 32 vector registers of AVX-512, no spills (the shape of
/// OpenBLAS's SkylakeX and oneDNN's brgemm blockings; on AVX2/NEON the SIMD16 type splits
/// into narrower registers). `A` is packed once into 8-row panels (`PackedA`). `B` is read in
/// one of two ways (`Gemm.Loop`); `k` is cut into blocks of `kBlock` either way, so every
/// loop order and thread split gives bit-identical results. Kernels run on one thread each,
/// called from inside `Threads.parallelFor`, so the drivers own the whole thread budget.
public enum Gemm {
    /// Rows of `B` multiplied per block (the summation order of every result: fixed).
    static let kBlock = 256
    /// Columns of a micro-kernel tile.
    static let tileColumns = 48
    /// Columns of `B` the packed loop copies at once: 10 tiles of `kBlock` rows, 480 KiB,
    /// which stay in L2 while each 8-row panel of `A` (8 KiB) stays in L1.
    static let packedColumns = 480

    /// How `multiply` walks `B`.
    public enum Loop: String, CaseIterable, Codable, Sendable {
        /// For each 48-column strip of `B`, every 8-row panel of `A`; `B` read in place
        /// through its row pointers (no copy; best when `B` rows are near each other, as the
        /// shifted rows of a padded image are).
        case strips
        /// `B` packed `packedColumns` columns at a time into contiguous, 64-byte aligned
        /// 48-column strips; for each panel of `A`, every strip (for rows far apart in memory,
        /// where reading `B` in place would thrash the cache sets: a dense matrix).
        case packed
    }

    /// The left operand of `C = A·B` packed once into 8-row panels laid out `[panel][k][8]`
    /// (rows past `m` are zero, 64-byte aligned), so the micro-kernel broadcasts from
    /// contiguous memory. Large operands (a deep layer's weights, packed on every call) are
    /// packed in parallel.
    public final class PackedA: @unchecked Sendable {
        public let m: Int
        public let k: Int
        let panels: Int
        let data: UnsafeMutablePointer<Float>

        /// Packs `A` (`m×k`, row-major with leading dimension `lda`), or `Aᵀ` when `transposed`
        /// (then the source is `k×m` with leading dimension `lda`).
        public convenience init(m: Int, k: Int, from a: UnsafePointer<Float>, lda: Int, transposed: Bool = false) {
            self.init(m: m, k: k) { dst, row0, rows in
                if transposed {
                    for q in 0..<k { (dst + q * 8).update(from: a + q * lda + row0, count: rows) }
                } else if rows == 8 {
                    let s0 = a + row0 * lda, s1 = s0 + lda, s2 = s1 + lda, s3 = s2 + lda
                    let s4 = s3 + lda, s5 = s4 + lda, s6 = s5 + lda, s7 = s6 + lda
                    for q in 0..<k {
                        let d = dst + q * 8
                        d[0] = s0[q]; d[1] = s1[q]; d[2] = s2[q]; d[3] = s3[q]
                        d[4] = s4[q]; d[5] = s5[q]; d[6] = s6[q]; d[7] = s7[q]
                    }
                } else {
                    for r in 0..<rows {
                        let src = a + (row0 + r) * lda
                        for q in 0..<k { dst[q * 8 + r] = src[q] }
                    }
                }
            }
        }

        /// The input-gradient kernel of a convolution, packed straight from its weight `w`
        /// (`[cout, cin, taps]`): row `ci`, column `co·taps + t` holds `w[co, ci, taps − 1 − t]`
        /// (flipped in space, in and out channels swapped).
        static func flippedKernel(_ w: UnsafePointer<Float>, cout: Int, cin: Int, taps: Int) -> PackedA {
            PackedA(m: cin, k: cout * taps) { dst, row0, rows in
                for co in 0..<cout {
                    for r in 0..<rows {
                        let src = w + (co * cin + row0 + r) * taps + taps - 1
                        let d = dst + co * taps * 8 + r
                        for t in 0..<taps { d[t * 8] = src[-t] }
                    }
                }
            }
        }

        /// Allocates the panels, zeroes them where `fill` leaves rows out (a last partial panel),
        /// and calls `fill(panel, firstRow, rows)` for each.
        init(m: Int, k: Int, fill: (UnsafeMutablePointer<Float>, Int, Int) -> Void) {
            self.m = m
            self.k = k
            panels = (m + 7) / 8
            data = UnsafeMutableRawPointer.allocate(byteCount: max(1, panels * k * 8) * 4, alignment: 64)
                .bindMemory(to: Float.self, capacity: max(1, panels * k * 8))
            let data = self.data
            func pack(_ p: Int) {
                let rows = min(8, m - p * 8), dst = data + p * k * 8
                if rows < 8 { dst.initialize(repeating: 0, count: k * 8) }
                fill(dst, p * 8, rows)
            }
            if panels * k * 8 >= 1 << 20 { Threads.parallelFor(panels) { pack($0) } } else { for p in 0..<panels { pack(p) } }
        }

        deinit { data.deallocate() }
    }

    /// Rows of a right-hand operand: `rows[q][j]` is `B[q, j]` (shifted views of one padded image
    /// make an implicit column matrix without copying).
    public typealias Rows = UnsafePointer<UnsafePointer<Float>>

    /// `C[m×n] = A·B` (or `C += A·B` when `accumulate`), `A` packed, `B` row-major `k×n`
    /// with leading dimension `ldb`, `C` row-major with leading dimension `ldc`. With `panels`,
    /// only those 8-row panels of `A` (rows `8·panels`) and of `C` are computed.
    public static func multiply(_ a: PackedA, _ b: UnsafePointer<Float>, ldb: Int, n: Int,
                                _ c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, panels: Range<Int>? = nil,
                                loop: Loop = .strips) {
        withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: max(1, a.k)) { rows in
            for q in 0..<a.k { rows[q] = b + q * ldb }
            multiply(a, rows: UnsafePointer(rows.baseAddress!), n: n, c, ldc: ldc, accumulate: accumulate, panels: panels,
                     loop: loop)
        }
    }

    /// `C[m×n] (+)= A·B` with the `k` rows of `B` given by pointers (`n` readable floats each).
    public static func multiply(_ a: PackedA, rows: Rows, n: Int, _ c: UnsafeMutablePointer<Float>, ldc: Int,
                                accumulate: Bool, panels: Range<Int>? = nil, loop: Loop = .strips) {
        let panels = panels ?? 0..<a.panels
        guard n > 0, !panels.isEmpty else { return }
        if loop == .packed {
            multiplyPacked(a, rows: rows, n: n, c, ldc: ldc, accumulate: accumulate, panels: panels)
            return
        }
        forEachKBlock(a.k, accumulate: accumulate) { k0, kc, acc in
            var n0 = 0
            while n0 < n {
                let cols = min(tileColumns, n - n0)
                if cols < tileColumns {
                    // A partial strip is read through a zero-padded copy, so no row is read past
                    // its valid columns.
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: kc * tileColumns) { strip in
                        let s = strip.baseAddress!
                        packStrip(rows + k0, kc, from: n0, cols: cols, into: s)
                        for p in panels {
                            tile(kc, a.data + p * a.k * 8 + k0 * 8, PackedStrip(base: s), c + p * 8 * ldc + n0, ldc,
                                 min(8, a.m - p * 8), cols, acc)
                        }
                    }
                } else {
                    for p in panels {
                        tile(kc, a.data + p * a.k * 8 + k0 * 8, RowStrip(rows: rows + k0, n0: n0), c + p * 8 * ldc + n0, ldc,
                             min(8, a.m - p * 8), cols, acc)
                    }
                }
                n0 += tileColumns
            }
        }
    }

    /// Calls `body(k0, kc, accumulate)` for each block of `kBlock` rows of `k` (at least one);
    /// every block after the first accumulates.
    @inline(__always)
    static func forEachKBlock(_ k: Int, accumulate: Bool, _ body: (Int, Int, Bool) -> Void) {
        var k0 = 0
        repeat {
            let kc = min(kBlock, k - k0)
            body(k0, kc, accumulate || k0 > 0)
            k0 += kc
        } while k0 < k
    }

    /// Copies columns `n0 ..< n0 + cols` of `k` rows into a `k×48` strip, zero past `cols`.
    @inline(__always)
    static func packStrip(_ rows: Rows, _ k: Int, from n0: Int, cols: Int, into s: UnsafeMutablePointer<Float>) {
        for q in 0..<k {
            let d = s + q * tileColumns, src = rows[q] + n0
            if cols == tileColumns {
                store16(load16(src), d); store16(load16(src, 16), d, 16); store16(load16(src, 32), d, 32)
            } else {
                for j in 0..<cols { d[j] = src[j] }
                for j in cols..<tileColumns { d[j] = 0 }
            }
        }
    }

    /// The `packed` loop: `B` copied block by block into aligned strips, each panel of `A`
    /// against every strip of the block.
    static func multiplyPacked(_ a: PackedA, rows: Rows, n: Int, _ c: UnsafeMutablePointer<Float>, ldc: Int,
                               accumulate: Bool, panels: Range<Int>) {
        ScratchPool.with(kBlock * packedColumns + 16) { raw in
            // 64-byte alignment: each 16-lane load of the strip is one cache line.
            let buffer = raw + ((64 - Int(bitPattern: raw) & 63) & 63) / 4
            forEachKBlock(a.k, accumulate: accumulate) { k0, kc, acc in
                var n0 = 0
                while n0 < n {
                    let width = min(packedColumns, n - n0)
                    let strips = (width + tileColumns - 1) / tileColumns
                    for s in 0..<strips {
                        packStrip(rows + k0, kc, from: n0 + s * tileColumns, cols: min(tileColumns, width - s * tileColumns),
                                  into: buffer + s * kc * tileColumns)
                    }
                    for p in panels {
                        let ap = a.data + p * a.k * 8 + k0 * 8, cp = c + p * 8 * ldc + n0
                        let m = min(8, a.m - p * 8)
                        for s in 0..<strips {
                            tile(kc, ap, PackedStrip(base: buffer + s * kc * tileColumns), cp + s * tileColumns, ldc, m,
                                 min(tileColumns, width - s * tileColumns), acc)
                        }
                    }
                    n0 += width
                }
            }
        }
    }

    /// `C = A·B` for row-major `A` (`m×k`, `lda`), `B` (`k×n`, `ldb`), `C` (`m×n`, `ldc`) with
    /// Lucid's own kernels on `Threads.count` threads: `A` packed once, then the threads take
    /// ranges of 48-column tiles (or of `A`'s 8-row panels when `n` is narrow).
    public static func sgemm(m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>,
                             ldb: Int, _ c: UnsafeMutablePointer<Float>, ldc: Int, loop: Loop = .packed) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            for i in 0..<m { (c + i * ldc).initialize(repeating: 0, count: n) }
            return
        }
        let packed = PackedA(m: m, k: k, from: a, lda: lda)
        let tiles = (n + tileColumns - 1) / tileColumns
        let workers = Threads.inParallelRegion ? 1 : Threads.count
        if tiles >= 2 * workers || packed.panels < workers {
            Threads.parallelChunks(tiles) { r in
                let n0 = r.lowerBound * tileColumns, n1 = min(n, r.upperBound * tileColumns)
                multiply(packed, b + n0, ldb: ldb, n: n1 - n0, c + n0, ldc: ldc, accumulate: false, loop: loop)
            }
        } else {
            Threads.parallelChunks(packed.panels) { r in
                multiply(packed, b, ldb: ldb, n: n, c, ldc: ldc, accumulate: false, panels: r, loop: loop)
            }
        }
    }

    /// Where the micro-kernel finds row `q` of its 48-column strip of `B`.
    protocol Strip {
        func row(_ q: Int) -> UnsafePointer<Float>
    }

    /// Rows read in place: row `q` starts at `rows[q] + n0`.
    struct RowStrip: Strip {
        let rows: Rows, n0: Int
        @inline(__always) func row(_ q: Int) -> UnsafePointer<Float> { rows[q] + n0 }
    }

    /// A packed strip: row `q` at `base + 48·q`.
    struct PackedStrip: Strip {
        let base: UnsafePointer<Float>
        init(base: UnsafeMutablePointer<Float>) { self.base = UnsafePointer(base) }
        @inline(__always) func row(_ q: Int) -> UnsafePointer<Float> { base + q * tileColumns }
    }

    /// One 8×48 tile of `C (+)= A·B` over `k` rows: `a` is the panel (`[k][8]`), `b` yields the
    /// 48 floats of each row; `rows`/`cols` clip the stored part.
    @inline(__always)
    static func tile<S: Strip>(_ k: Int, _ a: UnsafePointer<Float>, _ b: S, _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
                               _ rows: Int, _ cols: Int, _ accumulate: Bool) {
        let z = SIMD16<Float>(repeating: 0)
        var c00 = z, c01 = z, c02 = z, c10 = z, c11 = z, c12 = z
        var c20 = z, c21 = z, c22 = z, c30 = z, c31 = z, c32 = z
        var c40 = z, c41 = z, c42 = z, c50 = z, c51 = z, c52 = z
        var c60 = z, c61 = z, c62 = z, c70 = z, c71 = z, c72 = z
        var ap = a
        for q in 0..<k {
            let bp = b.row(q)
            let b0 = load16(bp), b1 = load16(bp, 16), b2 = load16(bp, 32)
            var s = SIMD16<Float>(repeating: ap[0])
            c00 = c00.addingProduct(s, b0); c01 = c01.addingProduct(s, b1); c02 = c02.addingProduct(s, b2)
            s = SIMD16<Float>(repeating: ap[1])
            c10 = c10.addingProduct(s, b0); c11 = c11.addingProduct(s, b1); c12 = c12.addingProduct(s, b2)
            s = SIMD16<Float>(repeating: ap[2])
            c20 = c20.addingProduct(s, b0); c21 = c21.addingProduct(s, b1); c22 = c22.addingProduct(s, b2)
            s = SIMD16<Float>(repeating: ap[3])
            c30 = c30.addingProduct(s, b0); c31 = c31.addingProduct(s, b1); c32 = c32.addingProduct(s, b2)
            s = SIMD16<Float>(repeating: ap[4])
            c40 = c40.addingProduct(s, b0); c41 = c41.addingProduct(s, b1); c42 = c42.addingProduct(s, b2)
            s = SIMD16<Float>(repeating: ap[5])
            c50 = c50.addingProduct(s, b0); c51 = c51.addingProduct(s, b1); c52 = c52.addingProduct(s, b2)
            s = SIMD16<Float>(repeating: ap[6])
            c60 = c60.addingProduct(s, b0); c61 = c61.addingProduct(s, b1); c62 = c62.addingProduct(s, b2)
            s = SIMD16<Float>(repeating: ap[7])
            c70 = c70.addingProduct(s, b0); c71 = c71.addingProduct(s, b1); c72 = c72.addingProduct(s, b2)
            ap += 8
        }
        if rows == 8 && cols == tileColumns {
            @inline(__always) func put(_ r: Int, _ v0: SIMD16<Float>, _ v1: SIMD16<Float>, _ v2: SIMD16<Float>) {
                let p = c + r * ldc
                if accumulate {
                    store16(load16(p) + v0, p); store16(load16(p, 16) + v1, p, 16); store16(load16(p, 32) + v2, p, 32)
                } else {
                    store16(v0, p); store16(v1, p, 16); store16(v2, p, 32)
                }
            }
            put(0, c00, c01, c02); put(1, c10, c11, c12); put(2, c20, c21, c22); put(3, c30, c31, c32)
            put(4, c40, c41, c42); put(5, c50, c51, c52); put(6, c60, c61, c62); put(7, c70, c71, c72)
            return
        }
        withUnsafeTemporaryAllocation(of: SIMD16<Float>.self, capacity: 24) { t in
            t[0] = c00; t[1] = c01; t[2] = c02; t[3] = c10; t[4] = c11; t[5] = c12
            t[6] = c20; t[7] = c21; t[8] = c22; t[9] = c30; t[10] = c31; t[11] = c32
            t[12] = c40; t[13] = c41; t[14] = c42; t[15] = c50; t[16] = c51; t[17] = c52
            t[18] = c60; t[19] = c61; t[20] = c62; t[21] = c70; t[22] = c71; t[23] = c72
            UnsafeMutableRawPointer(t.baseAddress!).withMemoryRebound(to: Float.self, capacity: 24 * 16) { f in
                for r in 0..<rows {
                    let p = c + r * ldc
                    let src = f + r * 48
                    if accumulate {
                        for j in 0..<cols { p[j] += src[j] }
                    } else {
                        for j in 0..<cols { p[j] = src[j] }
                    }
                }
            }
        }
    }
}

/// Accumulates `C[m×n] += A·Bᵀ` over many calls (`A` rows and `B` rows share the contiguous
/// `k` axis: weight gradients), keeping 16-lane partial sums per element in 4×6 register tiles
/// and reducing them once in `reduce(into:ldc:)`.
public final class DotAccumulator {
    public let m: Int, n: Int
    let lanes: UnsafeMutablePointer<SIMD16<Float>>
    let rest: UnsafeMutablePointer<Float>
    /// A zero accumulator for an `m×n` result.
    public init(m: Int, n: Int) {
        self.m = m; self.n = n
        lanes = .allocate(capacity: max(1, m * n)); lanes.initialize(repeating: SIMD16(repeating: 0), count: m * n)
        rest = .allocate(capacity: max(1, m * n)); rest.initialize(repeating: 0, count: m * n)
    }
    deinit { lanes.deallocate(); rest.deallocate() }

    /// Adds `A·Bᵀ` for `A` `m×k` (leading dimension `lda`) and `B` `n×k` (`ldb`).
    public func add(k: Int, _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int) {
        withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: max(1, n)) { rows in
            for j in 0..<n { rows[j] = b + j * ldb }
            add(k: k, a, lda: lda, rows: UnsafePointer(rows.baseAddress!))
        }
    }

    /// Adds `A·Bᵀ` with the `n` rows of `B` (`k` floats each) given by pointers.
    public func add(k: Int, _ a: UnsafePointer<Float>, lda: Int, rows b: Gemm.Rows) {
        let kv = k & ~15
        var j0 = 0
        let mt = m & ~3
        while j0 + 6 <= n {
            var i0 = 0
            while i0 < mt { tile(kv, a + i0 * lda, lda, b + j0, i0, j0); i0 += 4 }
            j0 += 6
        }
        for i in 0..<m {
            for j in (i < mt ? j0 : 0)..<n {
                var acc = SIMD16<Float>(repeating: 0)
                var q = 0
                let ap = a + i * lda, bp = b[j]
                while q < kv { acc = acc.addingProduct(load16(ap + q), load16(bp + q)); q += 16 }
                lanes[i * n + j] += acc
            }
        }
        if kv < k {
            for i in 0..<m { for j in 0..<n {
                var s: Float = 0
                for q in kv..<k { s += a[i * lda + q] * b[j][q] }
                rest[i * n + j] += s
            } }
        }
    }

    @inline(__always)
    func tile(_ kv: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ brows: Gemm.Rows, _ i0: Int, _ j0: Int) {
        let l0 = lanes + i0 * n + j0, l1 = l0 + n, l2 = l1 + n, l3 = l2 + n
        let z = SIMD16<Float>(repeating: 0)
        var s00 = z, s01 = z, s02 = z, s03 = z, s04 = z, s05 = z
        var s10 = z, s11 = z, s12 = z, s13 = z, s14 = z, s15 = z
        var s20 = z, s21 = z, s22 = z, s23 = z, s24 = z, s25 = z
        var s30 = z, s31 = z, s32 = z, s33 = z, s34 = z, s35 = z
        let a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda
        let b = brows[0], b1 = brows[1], b2 = brows[2], b3 = brows[3], b4 = brows[4], b5 = brows[5]
        var q = 0
        while q < kv {
            let x0 = load16(a + q), x1 = load16(a1 + q), x2 = load16(a2 + q), x3 = load16(a3 + q)
            var y = load16(b + q)
            s00 = s00.addingProduct(x0, y); s10 = s10.addingProduct(x1, y); s20 = s20.addingProduct(x2, y); s30 = s30.addingProduct(x3, y)
            y = load16(b1 + q)
            s01 = s01.addingProduct(x0, y); s11 = s11.addingProduct(x1, y); s21 = s21.addingProduct(x2, y); s31 = s31.addingProduct(x3, y)
            y = load16(b2 + q)
            s02 = s02.addingProduct(x0, y); s12 = s12.addingProduct(x1, y); s22 = s22.addingProduct(x2, y); s32 = s32.addingProduct(x3, y)
            y = load16(b3 + q)
            s03 = s03.addingProduct(x0, y); s13 = s13.addingProduct(x1, y); s23 = s23.addingProduct(x2, y); s33 = s33.addingProduct(x3, y)
            y = load16(b4 + q)
            s04 = s04.addingProduct(x0, y); s14 = s14.addingProduct(x1, y); s24 = s24.addingProduct(x2, y); s34 = s34.addingProduct(x3, y)
            y = load16(b5 + q)
            s05 = s05.addingProduct(x0, y); s15 = s15.addingProduct(x1, y); s25 = s25.addingProduct(x2, y); s35 = s35.addingProduct(x3, y)
            q += 16
        }
        l0[0] += s00; l0[1] += s01; l0[2] += s02; l0[3] += s03; l0[4] += s04; l0[5] += s05
        l1[0] += s10; l1[1] += s11; l1[2] += s12; l1[3] += s13; l1[4] += s14; l1[5] += s15
        l2[0] += s20; l2[1] += s21; l2[2] += s22; l2[3] += s23; l2[4] += s24; l2[5] += s25
        l3[0] += s30; l3[1] += s31; l3[2] += s32; l3[3] += s33; l3[4] += s34; l3[5] += s35
    }

    /// Adds the accumulated products into `C` (row-major, leading dimension `ldc`).
    public func reduce(into c: UnsafeMutablePointer<Float>, ldc: Int) {
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] += lanes[i * n + j].sum() + rest[i * n + j] } }
    }
}
