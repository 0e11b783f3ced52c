import XCTest
@testable import LucidCore

final class PoolUpsampleTests: XCTestCase {
    /// Visits every output of a pooling over the 5-D view `[B, C, D, H, W]` with its window.
    private func windows(_ shape: [Int], kernel k: [Int], stride s: [Int],
                         _ body: (_ out: Int, _ inputs: [Int]) -> Void) {
        let x5 = Array(shape.prefix(2)) + [Int](repeating: 1, count: 5 - shape.count) + Array(shape.dropFirst(2))
        let pad = 3 - (shape.count - 2)
        let k3 = [Int](repeating: 1, count: pad) + k, s3 = [Int](repeating: 1, count: pad) + s
        let o = (0..<3).map { (x5[$0 + 2] - k3[$0]) / s3[$0] + 1 }
        var out = 0
        for pl in 0..<(x5[0] * x5[1]) { for od in 0..<o[0] { for oh in 0..<o[1] { for ow in 0..<o[2] {
            var idx: [Int] = []
            for a in 0..<k3[0] { for b in 0..<k3[1] { for c in 0..<k3[2] {
                idx.append(((pl * x5[2] + od * s3[0] + a) * x5[3] + oh * s3[1] + b) * x5[4] + ow * s3[2] + c)
            } } }
            body(out, idx)
            out += 1
        } } } }
    }

    func testMaxAndAveragePoolingMatchNaiveWindows() throws {
        var rng = RandomGenerator(seed: 5)
        let cases: [([Int], [Int], [Int])] = [
            ([2, 3, 9], [2], [2]), ([2, 3, 7, 9], [2, 2], [2, 2]), ([1, 2, 7, 8], [3, 2], [2, 1]),
            ([1, 2, 5, 7, 6], [2, 2, 2], [2, 2, 2]), ([2, 1, 6, 5, 7], [3, 1, 2], [1, 2, 3]),
        ]
        for (shape, k, s) in cases {
            let x = Tensor.randomNormal(shape, rng: &rng)
            let xv = x.scalars
            let (mx, idx) = try maxPoolWithIndices(x, kernel: k, stride: s)
            let av = try avgPool(x, kernel: k, stride: s)
            var expMax: [Float] = [], expAvg: [Float] = []
            windows(shape, kernel: k, stride: s) { _, inputs in
                expMax.append(inputs.map { xv[$0] }.max()!)
                expAvg.append(inputs.map { xv[$0] }.reduce(0, +) / Float(inputs.count))
            }
            XCTAssertEqual(mx.scalars, expMax, "maxPool \(shape) k \(k) s \(s)")
            XCTAssertEqual(av.count, expAvg.count)
            for (a, b) in zip(av.scalars, expAvg) { XCTAssertEqual(a, b, accuracy: 1e-5) }
            // Backward: gradients land on the argmax / spread evenly over the window.
            let g = Tensor.randomNormal(mx.shape, rng: &rng)
            let dmax = try maxPoolBackward(g, indices: idx, inputShape: shape)
            let davg = try avgPoolBackward(g, inputShape: shape, kernel: k, stride: s)
            var expDMax = [Float](repeating: 0, count: x.count), expDAvg = [Float](repeating: 0, count: x.count)
            let gv = g.scalars
            let plane = shape.dropFirst(2).reduce(1, *)
            windows(shape, kernel: k, stride: s) { o, inputs in
                let best = inputs.max { xv[$0] < xv[$1] }!
                expDMax[best] += gv[o]
                for i in inputs { expDAvg[i] += gv[o] / Float(inputs.count) }
                XCTAssertEqual(Int(idx[o]), best % plane)
            }
            for (a, b) in zip(dmax.scalars, expDMax) { XCTAssertEqual(a, b, accuracy: 1e-5) }
            for (a, b) in zip(davg.scalars, expDAvg) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        }
    }

    func testBlurPoolMatchesReflectPaddedBinomialFilter() throws {
        var rng = RandomGenerator(seed: 6)
        // 2-D: explicit reflect padding and a 3×3 [1,2,1]ᵀ[1,2,1]/16 kernel, stride 2.
        let x = Tensor.randomNormal([2, 3, 7, 8], rng: &rng)
        let y = try blurPool(x, stride: 2)
        XCTAssertEqual(y.shape, [2, 3, 4, 4])
        let k: [Float] = [1, 2, 1]
        func reflect(_ i: Int, _ n: Int) -> Int { i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i) }
        var expected: [Float] = []
        let xv = x.scalars
        for pl in 0..<6 { for oh in 0..<4 { for ow in 0..<4 {
            var s: Float = 0
            for a in 0..<3 { for b in 0..<3 {
                let at: Int = pl * 56 + reflect(oh * 2 - 1 + a, 7) * 8 + reflect(ow * 2 - 1 + b, 8)
                let weight: Float = k[a] * k[b] / 16
                s += weight * xv[at]
            } }
            expected.append(s)
        } } }
        for (a, b) in zip(y.scalars, expected) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        // 1-D, hand computed: [1, 2, 3, 4, 5] → taps at 0, 2, 4 with reflect.
        let y1 = try blurPool(Tensor(shape: [1, 1, 5], scalars: [1, 2, 3, 4, 5]), stride: 2)
        let hand: [Float] = [(2 + 2 + 2) / 4, (2 + 6 + 4) / 4, (4 + 10 + 4) / 4]
        XCTAssertEqual(y1.scalars, hand)
        // maxBlurPool halves even extents (N2V2): max k2 s1 then blur stride 2.
        let z = try maxBlurPool(Tensor.randomNormal([1, 2, 8, 6, 10], rng: &rng))
        XCTAssertEqual(z.shape, [1, 2, 4, 3, 5])
        // Constant input stays constant (the filter sums to one).
        XCTAssertEqual(try blurPool(Tensor(shape: [1, 1, 5, 6, 7], repeating: 3)).scalars,
                       [Float](repeating: 3, count: 3 * 3 * 4))
    }

    func testUpsampleMatchesPyTorchSemantics() throws {
        // Linear, align_corners = false: PyTorch gives [1, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75, 4].
        let x1 = try Tensor(shape: [1, 1, 4], scalars: [1, 2, 3, 4])
        let l1 = try upsample(x1, scale: [2], mode: .linear)
        for (a, b) in zip(l1.scalars, [1, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75, 4] as [Float]) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        // Scale 3: source = (o + 0.5)/3 − 0.5, clamped at 0.
        let l3 = try upsample(try Tensor(shape: [1, 1, 2], scalars: [0, 3]), scale: [3], mode: .linear)
        for (a, b) in zip(l3.scalars, [0, 0, 1, 2, 3, 3] as [Float]) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        // Nearest, 2-D with different factors per axis.
        let x2 = try Tensor(shape: [1, 1, 2, 2], scalars: [1, 2, 3, 4])
        XCTAssertEqual(try upsample(x2, scale: [1, 2], mode: .nearest).scalars, [1, 1, 2, 2, 3, 3, 4, 4])
        XCTAssertEqual(try upsample(x2, scale: [2], mode: .nearest).scalars,
                       [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
        // Bilinear and trilinear are separable: an outer product upsamples to the outer product
        // of the 1-D results.
        var rng = RandomGenerator(seed: 7)
        let u = Tensor.randomNormal([3], rng: &rng), v = Tensor.randomNormal([4], rng: &rng), w = Tensor.randomNormal([5], rng: &rng)
        let uu = try upsample(u.reshaped([1, 1, 3]), scale: [2], mode: .linear).scalars
        let vv = try upsample(v.reshaped([1, 1, 4]), scale: [3], mode: .linear).scalars
        let ww = try upsample(w.reshaped([1, 1, 5]), scale: [2], mode: .linear).scalars
        var outer: [Float] = []
        for a in u.scalars { for b in v.scalars { for c in w.scalars { outer.append(a * b * c) } } }
        let t3 = try upsample(Tensor(shape: [1, 1, 3, 4, 5], scalars: outer), scale: [2, 3, 2], mode: .linear)
        XCTAssertEqual(t3.shape, [1, 1, 6, 12, 10])
        let t3v = t3.scalars
        var i = 0
        for a in uu { for b in vv { for c in ww { XCTAssertEqual(t3v[i], a * b * c, accuracy: 1e-4); i += 1 } } }
        // Backward is the adjoint: <up(x), g> == <x, up_backward(g)>.
        for mode in [UpsampleMode.nearest, .linear] {
            let x = Tensor.randomNormal([2, 3, 4, 5], rng: &rng)
            let y = try upsample(x, scale: [2, 3], mode: mode)
            let g = Tensor.randomNormal(y.shape, rng: &rng)
            let gx = try upsampleBackward(g, inputShape: x.shape, scale: [2, 3], mode: mode)
            let lhs = zip(y.scalars, g.scalars).map { Double($0 * $1) }.reduce(0, +)
            let rhs = zip(x.scalars, gx.scalars).map { Double($0 * $1) }.reduce(0, +)
            XCTAssertEqual(lhs, rhs, accuracy: 1e-3 * max(1, abs(lhs)))
        }
    }

    func testBadPoolingArgumentsThrow() {
        let x = Tensor(zeros: [1, 2, 4, 4])
        func expect(_ body: @autoclosure () throws -> Tensor, _ parts: [String], line: UInt = #line) {
            XCTAssertThrowsError(try body(), line: line) { e in
                for p in parts { XCTAssertTrue("\(e)".contains(p), "'\(e)' lacks '\(p)'", line: line) }
            }
        }
        expect(try maxPool(x, kernel: [5]), ["maxPool", "[5]", "[1, 2, 4, 4]"])
        expect(try maxPool(x, kernel: [2], stride: [0]), ["maxPool", "stride", "[0]"])
        expect(try avgPool(x, kernel: [2, 2, 2]), ["avgPool", "[2, 2, 2]", "[1, 2, 4, 4]"])
        expect(try avgPool(Tensor(zeros: [4, 4]), kernel: [2]), ["avgPool", "[4, 4]"])
        expect(try blurPool(x, stride: 0), ["blurPool", "stride 0"])
        expect(try blurPool(Tensor(zeros: [1, 1, 1, 4])), ["blurPool", "[1, 1, 1, 4]"])
        expect(try upsample(x, scale: [2, 2, 2], mode: .nearest), ["upsample", "[2, 2, 2]", "[1, 2, 4, 4]"])
        expect(try upsample(x, scale: [0], mode: .linear), ["upsample", "[0]"])
        expect(try upsampleBackward(Tensor(zeros: [1, 2, 8, 7]), inputShape: [1, 2, 4, 4], scale: [2], mode: .nearest),
               ["upsampleBackward", "[1, 2, 8, 7]", "[1, 2, 8, 8]"])
    }
}
