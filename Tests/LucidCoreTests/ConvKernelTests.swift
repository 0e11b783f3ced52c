import XCTest
@testable import LucidCore

/// Naive reference convolution over 5-D views (`[B, C, D, H, W]`, 3-entry parameters).
/// Computes the forward output and, given an output gradient, the input and weight gradients.
struct ReferenceConv {
    var xs: [Int], ws: [Int], s: [Int], p: [Int], d: [Int]
    var os: [Int] {
        var o = [xs[0], ws[0]]
        for i in 0..<3 { o.append((xs[i + 2] + 2 * p[i] - d[i] * (ws[i + 2] - 1) - 1) / s[i] + 1) }
        return o
    }

    /// Calls `body(xIndex, wIndex, yIndex)` for every multiply of the convolution.
    func forEachTerm(_ body: (Int, Int, Int) -> Void) {
        let o = os
        for b in 0..<xs[0] { for co in 0..<ws[0] { for ci in 0..<xs[1] {
            for od in 0..<o[2] { for oh in 0..<o[3] { for ow in 0..<o[4] {
                for a in 0..<ws[2] { for bb in 0..<ws[3] { for c in 0..<ws[4] {
                    let id = od * s[0] - p[0] + a * d[0], ih = oh * s[1] - p[1] + bb * d[1], iw = ow * s[2] - p[2] + c * d[2]
                    guard id >= 0, id < xs[2], ih >= 0, ih < xs[3], iw >= 0, iw < xs[4] else { continue }
                    let xi = (((b * xs[1] + ci) * xs[2] + id) * xs[3] + ih) * xs[4] + iw
                    let wi = (((co * ws[1] + ci) * ws[2] + a) * ws[3] + bb) * ws[4] + c
                    let yi = (((b * o[1] + co) * o[2] + od) * o[3] + oh) * o[4] + ow
                    body(xi, wi, yi)
                } } }
            } } }
        } } }
    }
}

func lead5(_ shape: [Int]) -> [Int] {
    Array(shape.prefix(2)) + [Int](repeating: 1, count: 5 - shape.count) + Array(shape.dropFirst(2))
}

func lead3(_ a: [Int], count: Int, fill: Int) -> [Int] {
    let full = a.count == 1 ? [Int](repeating: a[0], count: count) : a
    return [Int](repeating: fill, count: 3 - count) + full
}

/// Largest error relative to `max(1, |expected|)`; references accumulate in Float64.
func assertClose(_ a: Tensor, _ b: [Double], tolerance: Double, _ message: String,
                         file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, message, file: file, line: line)
    var worst = 0.0
    for (u, v) in zip(a.scalars, b) { worst = max(worst, abs(Double(u) - v) / max(1, abs(v))) }
    XCTAssertLessThanOrEqual(worst, tolerance, message, file: file, line: line)
}

final class ConvKernelTests: XCTestCase {
    /// (input shape, weight shape, stride, padding, dilation): odd shapes, every rank, chunked
    /// column buffers (3-D case), partial 8-row panels (Cout 11), K blocks (K > 256).
    let cases: [([Int], [Int], [Int], [Int], [Int])] = [
        ([2, 3, 17], [5, 3, 3], [1], [1], [1]),
        ([2, 3, 19], [4, 3, 4], [2], [0], [2]),
        ([1, 2, 23], [3, 2, 5], [3], [2], [1]),
        ([2, 3, 9, 11], [11, 3, 3, 3], [1], [1], [1]),
        ([1, 4, 10, 7], [6, 4, 3, 2], [2, 1], [1, 0], [1, 2]),
        ([2, 2, 13, 12], [3, 2, 3, 3], [2], [2], [2]),
        ([1, 30, 6, 50], [9, 30, 3, 3], [1], [1], [1]),
        ([2, 5, 8, 8], [7, 5, 1, 1], [1], [0], [1]),
        ([1, 3, 6, 8, 9], [5, 3, 3, 3, 3], [1], [1], [1]),
        ([2, 2, 7, 6, 9], [3, 2, 2, 3, 3], [2, 1, 2], [0, 1, 1], [1, 2, 1]),
        ([1, 4, 20, 22, 20], [3, 4, 3, 3, 3], [1], [1], [1]),
    ]

    func testConvForwardAndBackwardMatchNaiveLoops() throws {
        var rng = RandomGenerator(seed: 1)
        for (xs, ws, s, p, d) in cases {
            let sp = xs.count - 2
            let x = Tensor.randomNormal(xs, rng: &rng), w = Tensor.randomNormal(ws, rng: &rng)
            let bias = Tensor.randomNormal([ws[0]], rng: &rng)
            let ref = ReferenceConv(xs: lead5(xs), ws: lead5(ws), s: lead3(s, count: sp, fill: 1),
                                    p: lead3(p, count: sp, fill: 0), d: lead3(d, count: sp, fill: 1))
            let y = try conv(x, weight: w, bias: bias, stride: s, padding: p, dilation: d)
            let outShape = Array(ref.os.prefix(2)) + Array(ref.os.suffix(sp))
            XCTAssertEqual(y.shape, outShape)
            var expected = [Double](repeating: 0, count: y.count)
            let plane = ref.os.suffix(3).reduce(1, *)
            let bv = bias.scalars.map(Double.init), xv = x.scalars.map(Double.init), wv = w.scalars.map(Double.init)
            for i in 0..<expected.count { expected[i] = bv[(i / plane) % ws[0]] }
            ref.forEachTerm { xi, wi, yi in expected[yi] += xv[xi] * wv[wi] }
            let label = "x \(xs) w \(ws) s \(s) p \(p) d \(d)"
            assertClose(y, expected, tolerance: 1e-4, "forward " + label)

            let gy = Tensor.randomNormal(y.shape, rng: &rng)
            let gv = gy.scalars.map(Double.init)
            var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
            ref.forEachTerm { xi, wi, yi in
                dx[xi] += wv[wi] * gv[yi]
                dw[wi] += xv[xi] * gv[yi]
            }
            var db = [Double](repeating: 0, count: ws[0])
            for i in 0..<gv.count { db[(i / plane) % ws[0]] += gv[i] }
            assertClose(try convBackwardInput(gy, weight: w, inputShape: xs, stride: s, padding: p, dilation: d),
                        dx, tolerance: 1e-4, "input gradient " + label)
            assertClose(try convBackwardWeight(gy, input: x, weightShape: ws, stride: s, padding: p, dilation: d),
                        dw, tolerance: 1e-4, "weight gradient " + label)
            assertClose(try convBackwardBias(gy), db, tolerance: 1e-4, "bias gradient " + label)
        }
    }

    /// Small images with many channels take `BatchedColumns` (forward and input gradient when
    /// the padded grid wastes over 2×, weight gradient over 1.4×; the input gradient too when
    /// Cin ≥ 128); chunks of two output rows cross image boundaries, and Cout 130 leaves a
    /// partial 8-row panel and 48-column tile.
    func testBatchedColumnsMatchNaiveLoops() throws {
        let saved = BatchedColumns.chunkFloats
        let savedMode = ConvPlanner.mode
        defer { BatchedColumns.chunkFloats = saved; ConvPlanner.mode = savedMode; ConvPlanner.clearPlans() }
        // The heuristic (no timing) sends these geometries down BatchedColumns.
        ConvPlanner.mode = .estimate
        ConvPlanner.clearPlans()
        var rng = RandomGenerator(seed: 4)
        for (xs, ws) in [([3, 5, 3, 5], [130, 5, 3, 3]), ([1, 128, 2, 2, 2], [128, 128, 3, 3, 3]), ([2, 3, 2, 3, 4], [128, 3, 3, 3, 3])] {
            let g = try convGeometry(op: "test", input: xs, weight: ws, stride: [1], padding: [1], dilation: [1])
            XCTAssertTrue(BatchedColumns.applies(g, waste: BatchedColumns.forwardWaste), "\(xs) \(ws)")
            XCTAssertTrue(BatchedColumns.applies(g, waste: BatchedColumns.weightWaste), "\(xs) \(ws)")
            XCTAssertEqual(ConvPlanner.method(for: g, .forward), .batchedColumns)
            XCTAssertEqual(ConvPlanner.method(for: g, .weightGradient), .batchedColumns)
            for rows in [1000, 2] {
                BatchedColumns.chunkFloats = rows == 1000 ? saved : 2 * g.k * g.oW
                let sp = xs.count - 2
                let x = Tensor.randomNormal(xs, rng: &rng), w = Tensor.randomNormal(ws, rng: &rng)
                let bias = Tensor.randomNormal([ws[0]], rng: &rng)
                let ref = ReferenceConv(xs: lead5(xs), ws: lead5(ws), s: [1, 1, 1], p: lead3([1], count: sp, fill: 0), d: [1, 1, 1])
                let y = try conv(x, weight: w, bias: bias, padding: [1])
                let plane = ref.os.suffix(3).reduce(1, *)
                let xv = x.scalars.map(Double.init), wv = w.scalars.map(Double.init), bv = bias.scalars.map(Double.init)
                var expected = (0..<y.count).map { bv[($0 / plane) % ws[0]] }
                ref.forEachTerm { xi, wi, yi in expected[yi] += xv[xi] * wv[wi] }
                let label = "x \(xs) w \(ws) chunk rows \(rows)"
                assertClose(y, expected, tolerance: 1e-4, "forward " + label)
                let gy = Tensor.randomNormal(y.shape, rng: &rng)
                let gv = gy.scalars.map(Double.init)
                var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
                ref.forEachTerm { xi, wi, yi in
                    dx[xi] += wv[wi] * gv[yi]
                    dw[wi] += xv[xi] * gv[yi]
                }
                assertClose(try convBackwardInput(gy, weight: w, inputShape: xs, padding: [1]), dx, tolerance: 1e-4, "input gradient " + label)
                assertClose(try convBackwardWeight(gy, input: x, weightShape: ws, padding: [1]), dw, tolerance: 1e-4, "weight gradient " + label)
            }
        }
    }

    func testConvTransposeMatchesScatterDefinition() throws {
        var rng = RandomGenerator(seed: 2)
        // (x, weight [Cin, Cout, k…], stride, padding, outputPadding, dilation)
        let tcases: [([Int], [Int], [Int], [Int], [Int], [Int])] = [
            ([2, 3, 7], [3, 4, 3], [2], [1], [1], [1]),
            ([1, 2, 5, 6], [2, 3, 3, 2], [2, 1], [1, 0], [1, 0], [1, 2]),
            ([1, 3, 4, 5], [3, 2, 2, 2], [2], [0], [0], [1]),
            ([1, 2, 3, 4, 3], [2, 3, 3, 3, 3], [2], [1], [0], [1]),
        ]
        for (xs, ws, s, p, op, d) in tcases {
            let sp = xs.count - 2
            let x = Tensor.randomNormal(xs, rng: &rng), w = Tensor.randomNormal(ws, rng: &rng)
            let bias = Tensor.randomNormal([ws[1]], rng: &rng)
            let y = try convTranspose(x, weight: w, bias: bias, stride: s, padding: p, outputPadding: op, dilation: d)
            let s3 = lead3(s, count: sp, fill: 1), p3 = lead3(p, count: sp, fill: 0)
            let o3 = lead3(op, count: sp, fill: 0), d3 = lead3(d, count: sp, fill: 1)
            let x5 = lead5(xs), w5 = lead5(ws)
            var out5 = [x5[0], w5[1]]
            for i in 0..<3 { out5.append((x5[i + 2] - 1) * s3[i] - 2 * p3[i] + d3[i] * (w5[i + 2] - 1) + o3[i] + 1) }
            XCTAssertEqual(y.shape, Array(out5.prefix(2)) + Array(out5.suffix(sp)))
            let plane = out5.suffix(3).reduce(1, *)
            var expected = [Double](repeating: 0, count: out5.reduce(1, *))
            let bv = bias.scalars.map(Double.init), xv = x.scalars.map(Double.init), wv = w.scalars.map(Double.init)
            for i in 0..<expected.count { expected[i] = bv[(i / plane) % w5[1]] }
            for b in 0..<x5[0] { for ci in 0..<x5[1] { for co in 0..<w5[1] {
                for id in 0..<x5[2] { for ih in 0..<x5[3] { for iw in 0..<x5[4] {
                    for a in 0..<w5[2] { for bb in 0..<w5[3] { for c in 0..<w5[4] {
                        let od = id * s3[0] - p3[0] + a * d3[0], oh = ih * s3[1] - p3[1] + bb * d3[1]
                        let ow = iw * s3[2] - p3[2] + c * d3[2]
                        guard od >= 0, od < out5[2], oh >= 0, oh < out5[3], ow >= 0, ow < out5[4] else { continue }
                        let xi = (((b * x5[1] + ci) * x5[2] + id) * x5[3] + ih) * x5[4] + iw
                        let wi = (((ci * w5[1] + co) * w5[2] + a) * w5[3] + bb) * w5[4] + c
                        let yi = (((b * out5[1] + co) * out5[2] + od) * out5[3] + oh) * out5[4] + ow
                        expected[yi] += xv[xi] * wv[wi]
                    } } }
                } } }
            } } }
            assertClose(y, expected, tolerance: 1e-4, "convTranspose x \(xs) w \(ws) s \(s) p \(p) op \(op) d \(d)")
        }
    }

    func testGemmMicroKernelsMatchNaiveProducts() {
        var rng = RandomGenerator(seed: 3)
        // The last two pack in parallel (≥ 2²⁰ packed floats), one with a partial 8-row panel.
        for (m, n, k) in [(1, 1, 1), (8, 48, 16), (13, 101, 300), (3, 50, 7), (17, 96, 257), (16, 2, 65536), (9, 3, 70000)] {
            let a = Tensor.randomNormal([m, k], rng: &rng), b = Tensor.randomNormal([k, n], rng: &rng)
            let av = a.scalars.map(Double.init), bv = b.scalars.map(Double.init)
            var expected = [Double](repeating: 0, count: m * n)
            for i in 0..<m { for j in 0..<n { for q in 0..<k { expected[i * n + j] += av[i * k + q] * bv[q * n + j] } } }
            // A packed from itself and from its transpose (`k×m`).
            var at = Tensor(zeros: [k, m])
            for i in 0..<m { for q in 0..<k { at.storage.base[q * m + i] = a.storage.base[i * k + q] } }
            for packed in [Gemm.PackedA(m: m, k: k, from: a.storage.base, lda: k),
                           Gemm.PackedA(m: m, k: k, from: at.storage.base, lda: m, transposed: true)] {
                var c = Tensor(zeros: [m, n])
                c.withUnsafeMutableBufferPointer { Gemm.multiply(packed, b.storage.base, ldb: n, n: n, $0.baseAddress!, ldc: n, accumulate: false) }
                assertClose(c, expected, tolerance: 1e-4, "multiply \(m)x\(n)x\(k)")
            }
            // C += A·Bᵀ twice (accumulated), with Bᵀ given as the n×k matrix.
            let bt = Tensor.randomNormal([n, k], rng: &rng)
            var c2 = Tensor(ones: [m, n])
            let acc = DotAccumulator(m: m, n: n)
            acc.add(k: k, a.storage.base, lda: k, bt.storage.base, ldb: k)
            acc.add(k: k, a.storage.base, lda: k, bt.storage.base, ldb: k)
            c2.withUnsafeMutableBufferPointer { acc.reduce(into: $0.baseAddress!, ldc: n) }
            let btv = bt.scalars.map(Double.init)
            var expected2 = [Double](repeating: 1, count: m * n)
            for i in 0..<m { for j in 0..<n { for q in 0..<k { expected2[i * n + j] += 2 * av[i * k + q] * btv[j * k + q] } } }
            assertClose(c2, expected2, tolerance: 1e-4, "DotAccumulator \(m)x\(n)x\(k)")
        }
    }

    func testBadConvArgumentsThrowNamingOpAndShapes() {
        let x = Tensor(zeros: [1, 3, 8, 8])
        func expect(_ body: @autoclosure () throws -> Tensor, _ parts: [String], line: UInt = #line) {
            XCTAssertThrowsError(try body(), line: line) { e in
                let m = "\(e)"
                for p in parts { XCTAssertTrue(m.contains(p), "'\(m)' lacks '\(p)'", line: line) }
            }
        }
        expect(try conv(x, weight: Tensor(zeros: [4, 2, 3, 3])), ["conv", "[1, 3, 8, 8]", "[4, 2, 3, 3]"])
        expect(try conv(x, weight: Tensor(zeros: [4, 3, 3])), ["conv", "[1, 3, 8, 8]", "[4, 3, 3]"])
        expect(try conv(Tensor(zeros: [3, 8]), weight: Tensor(zeros: [4, 3])), ["conv", "[3, 8]"])
        expect(try conv(x, weight: Tensor(zeros: [4, 3, 3, 3]), padding: [-1]), ["conv", "padding", "[-1]"])
        expect(try conv(x, weight: Tensor(zeros: [4, 3, 3, 3]), stride: [0]), ["conv", "stride", "[0]"])
        expect(try conv(x, weight: Tensor(zeros: [4, 3, 3, 3]), stride: [1, 1, 1]), ["conv", "stride", "[1, 1, 1]"])
        expect(try conv(x, weight: Tensor(zeros: [4, 3, 9, 9])), ["conv", "[1, 3, 8, 8]", "[9, 9]"])
        expect(try conv(x, weight: Tensor(zeros: [4, 3, 3, 3]), bias: Tensor(zeros: [3])), ["conv", "bias", "[3]", "[4, 3, 3, 3]"])
        expect(try convBackwardInput(Tensor(zeros: [1, 4, 5, 5]), weight: Tensor(zeros: [4, 3, 3, 3]), inputShape: [1, 3, 8, 8]),
               ["convBackwardInput", "[1, 4, 5, 5]", "[1, 4, 6, 6]"])
        expect(try convTranspose(x, weight: Tensor(zeros: [2, 3, 3, 3])), ["convTranspose", "[1, 3, 8, 8]", "[2, 3, 3, 3]"])
        expect(try convTranspose(x, weight: Tensor(zeros: [3, 2, 3, 3]), stride: [2], outputPadding: [2]),
               ["convTranspose", "outputPadding", "[2]"])
    }
}
