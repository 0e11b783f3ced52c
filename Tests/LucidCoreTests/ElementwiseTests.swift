import XCTest
@testable import LucidCore

/// Naive references shared by the op tests.
enum Naive {
    /// Multi-index of flat index `i` in `shape`.
    static func index(_ i: Int, _ shape: [Int]) -> [Int] {
        var rem = i
        var idx = [Int](repeating: 0, count: shape.count)
        for k in stride(from: shape.count - 1, through: 0, by: -1) { idx[k] = rem % shape[k]; rem /= shape[k] }
        return idx
    }
    /// Flat index of a multi-index, with broadcast (extent-1 axes read index 0), right-aligned.
    static func flat(_ idx: [Int], _ shape: [Int]) -> Int {
        let off = idx.count - shape.count
        var f = 0
        for k in 0..<shape.count { f = f * shape[k] + (shape[k] == 1 ? 0 : idx[off + k]) }
        return f
    }
    static func broadcast(_ a: Tensor, _ b: Tensor, _ out: [Int], _ f: (Float, Float) -> Float) -> [Float] {
        let av = a.scalars, bv = b.scalars
        return (0..<out.reduce(1, *)).map { i in
            let idx = index(i, out)
            return f(av[flat(idx, a.shape)], bv[flat(idx, b.shape)])
        }
    }
}

func random(_ shape: [Int], seed: UInt64 = 1, low: Float = -1, high: Float = 1) -> Tensor {
    var rng = RandomGenerator(seed: seed)
    return Tensor.randomUniform(shape, low: low, high: high, rng: &rng)
}

func assertClose(_ a: [Float], _ b: [Float], tol: Float, _ msg: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "count \(msg)", file: file, line: line)
    var worst: Float = 0
    for (x, y) in zip(a, b) { worst = max(worst, abs(x - y) / max(1, abs(y))) }
    XCTAssertLessThanOrEqual(worst, tol, msg, file: file, line: line)
}

final class ElementwiseTests: XCTestCase {
    func testBroadcastingBinaryOpsMatchNaive() throws {
        let cases: [([Int], [Int], [Int])] = [
            ([3, 5], [3, 5], [3, 5]),
            ([2, 3, 4], [4], [2, 3, 4]),
            ([2, 3, 1], [1, 4], [2, 3, 4]),
            ([4, 3, 5, 7], [1, 3, 1, 1], [4, 3, 5, 7]),     // channel bias
            ([1, 3, 1, 1], [4, 3, 5, 7], [4, 3, 5, 7]),
            ([], [2, 3], [2, 3]),
            ([5, 1], [1, 6], [5, 6]),
            ([3, 40_000], [3, 1], [3, 40_000]),             // parallel rows with scalar runs
            ([100_003], [100_003], [100_003]),               // parallel same-shape chunks
            ([1, 70_001], [70_001], [1, 70_001]),
        ]
        for (k, (sa, sb, so)) in cases.enumerated() {
            let a = random(sa, seed: UInt64(k)), b = random(sb, seed: UInt64(k + 100), low: 0.5, high: 2)
            let ops: [(String, (Tensor, Tensor) throws -> Tensor, (Float, Float) -> Float)] = [
                ("add", { try $0 + $1 }, { $0 + $1 }), ("sub", { try $0 - $1 }, { $0 - $1 }),
                ("mul", { try $0 * $1 }, { $0 * $1 }), ("div", { try $0 / $1 }, { $0 / $1 }),
            ]
            for (name, op, ref) in ops {
                let r = try op(a, b)
                XCTAssertEqual(r.shape, so, "\(name) \(sa) \(sb)")
                assertClose(r.scalars, Naive.broadcast(a, b, so, ref), tol: 1e-6, "\(name) \(sa) \(sb)")
            }
        }
    }

    func testShapeMismatchMessageNamesOpAndShapes() {
        XCTAssertThrowsError(try Tensor(zeros: [2, 3]) + Tensor(zeros: [4])) { e in
            XCTAssertEqual("\(e)", "add: shape mismatch: [2, 3] vs [4]")
        }
        XCTAssertThrowsError(try Tensor(zeros: [2, 3]) / Tensor(zeros: [3, 3])) { e in
            XCTAssertEqual("\(e)", "div: shape mismatch: [2, 3] vs [3, 3]")
        }
    }

    func testScalarOpsAndUnaryMath() {
        let x = random([3, 7], seed: 3, low: 0.1, high: 3)
        let xs = x.scalars
        assertClose((x + 2).scalars, xs.map { $0 + 2 }, tol: 0)
        assertClose((2 - x).scalars, xs.map { 2 - $0 }, tol: 0)
        assertClose((x - 2).scalars, xs.map { $0 - 2 }, tol: 0)
        assertClose((3 * x).scalars, xs.map { 3 * $0 }, tol: 0)
        assertClose((x / 4).scalars, xs.map { $0 / 4 }, tol: 1e-7)
        assertClose((1 / x).scalars, xs.map { 1 / $0 }, tol: 0)
        assertClose((-x).scalars, xs.map { -$0 }, tol: 0)
        assertClose(x.exp().scalars, xs.map { Foundation.exp($0) }, tol: 1e-6)
        assertClose(x.log().scalars, xs.map { Foundation.log($0) }, tol: 1e-6)
        assertClose(x.sqrt().scalars, xs.map { $0.squareRoot() }, tol: 1e-7)
        assertClose(x.pow(2).scalars, xs.map { $0 * $0 }, tol: 1e-7)
        assertClose(x.pow(1.7).scalars, xs.map { Foundation.pow($0, 1.7) }, tol: 1e-6)
        assertClose((x - 1.5).abs().scalars, xs.map { Swift.abs($0 - 1.5) }, tol: 0)
        assertClose(x.clamped(min: 0.5, max: 2).scalars, xs.map { Swift.min(Swift.max($0, 0.5), 2) }, tol: 0)
        assertClose(x.clamped(max: 1).scalars, xs.map { Swift.min($0, 1) }, tol: 0)
    }

    func testWhereBroadcasts() throws {
        let cond = try Tensor(shape: [2, 1], scalars: [1, 0])
        let a = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let b = Tensor(scalar: -1)
        XCTAssertEqual(try Tensor.where(cond, a, b).scalars, [1, 2, 3, -1, -1, -1])
        XCTAssertEqual(try Tensor(shape: [3], scalars: [1, 2, 3]).broadcast(to: [2, 3]).scalars, [1, 2, 3, 1, 2, 3])
        XCTAssertThrowsError(try Tensor(zeros: [2, 3]).broadcast(to: [3])) { e in
            XCTAssertEqual("\(e)", "broadcast(to:): shape mismatch: [2, 3] vs [3]")
        }
        XCTAssertThrowsError(try Tensor.where(Tensor(zeros: [4]), a, b)) { e in
            XCTAssertTrue("\(e)".hasPrefix("where: shape mismatch"), "\(e)")
        }
    }

    func testActivationsAndSoftmax() throws {
        let x = random([4, 5, 3], seed: 9, low: -4, high: 4)
        let xs = x.scalars
        assertClose(x.relu().scalars, xs.map { Swift.max($0, 0) }, tol: 0)
        assertClose(x.leakyReLU(slope: 0.2).scalars, xs.map { $0 > 0 ? $0 : 0.2 * $0 }, tol: 0)
        let g = random([4, 5, 3], seed: 10)
        assertClose(try Tensor.leakyReLUBackward(g, input: x, slope: 0.2).scalars, zip(g.scalars, xs).map { $1 > 0 ? $0 : 0.2 * $0 }, tol: 0)
        XCTAssertThrowsError(try Tensor.leakyReLUBackward(g, input: Tensor(zeros: [3]))) { e in
            XCTAssertEqual("\(e)", "leakyReLU backward: shape mismatch: [4, 5, 3] vs [3]")
        }
        assertClose(x.sigmoid().scalars, xs.map { Float(1 / (1 + Foundation.exp(-Double($0)))) }, tol: 1e-6)
        assertClose(x.tanh().scalars, xs.map { Float(Foundation.tanh(Double($0))) }, tol: 1e-6)
        assertClose(x.silu().scalars, xs.map { Float(Double($0) / (1 + Foundation.exp(-Double($0)))) }, tol: 1e-6)
        assertClose(try Tensor.siluBackward(g, input: x).scalars, zip(g.scalars, xs).map { g, x in
            let s = 1 / (1 + Foundation.exp(-Double(x)))
            return Float(Double(g) * s * (1 + Double(x) * (1 - s)))
        }, tol: 1e-6)
        XCTAssertThrowsError(try Tensor.siluBackward(g, input: Tensor(zeros: [3])))
        // The 16-lane exponential over the whole Float range, its ends clamped.
        let wide = try Tensor(shape: [48], scalars: (0..<48).map { Float($0) * 4 - 94 })
        for (v, e) in zip(wide.scalars, (0..<3).flatMap { k in
            Array(0..<16).map { exp16(UnsafeRawPointer(wide.storage.base + 16 * k).loadUnaligned(as: SIMD16<Float>.self))[$0] }
        }) {
            let ref = Foundation.exp(Double(min(max(v, -87.3), 88.3)))
            XCTAssertEqual(Double(e), ref, accuracy: 3e-7 * ref, "exp(\(v))")
        }
        XCTAssertTrue(try Tensor(shape: [16], scalars: Array(repeating: -200, count: 16)).silu().scalars.allSatisfy { $0.isFinite && Swift.abs($0) < 1e-30 })
        assertClose(x.gelu().scalars, xs.map { Float(0.5 * Double($0) * (1 + Foundation.erf(Double($0) / 2.0.squareRoot()))) }, tol: 1e-6)
        for axis in [0, 1, 2, -1] {
            let s = try x.softmax(axis: axis), ls = try x.logSoftmax(axis: axis)
            let ax = axis < 0 ? axis + 3 : axis
            var ref = [Float](repeating: 0, count: x.count)
            for i in 0..<x.count {
                let idx = Naive.index(i, x.shape)
                var den = 0.0
                for j in 0..<x.shape[ax] {
                    var jdx = idx; jdx[ax] = j
                    den += Foundation.exp(Double(xs[Naive.flat(jdx, x.shape)]))
                }
                ref[i] = Float(Foundation.exp(Double(xs[i])) / den)
            }
            assertClose(s.scalars, ref, tol: 1e-6, "softmax axis \(axis)")
            assertClose(ls.scalars, ref.map { Foundation.log($0) }, tol: 1e-5, "logSoftmax axis \(axis)")
        }
        // Rows of 16-lane blocks and a tail (the vectorized path along the last axis).
        var rng = RandomGenerator(seed: 4)
        let rows = Tensor.randomNormal([3, 41], std: 3, rng: &rng)
        let (s, ls) = (try rows.softmax(axis: 1), try rows.logSoftmax(axis: 1))
        for r in 0..<3 {
            let v = (0..<41).map { Double(rows[r, $0]) }
            let den = v.map { Foundation.exp($0) }.reduce(0, +)
            assertClose(Array(s.scalars[(41 * r)..<(41 * r + 41)]), v.map { Float(Foundation.exp($0) / den) }, tol: 1e-6, "softmax row \(r)")
            assertClose(Array(ls.scalars[(41 * r)..<(41 * r + 41)]), v.map { Float($0 - Foundation.log(den)) }, tol: 1e-5, "logSoftmax row \(r)")
        }
        // Numerically stable for large logits.
        let big = try Tensor(shape: [1, 3], scalars: [1000, 1001, 1002])
        XCTAssertFalse(try big.softmax(axis: 1).scalars.contains { !$0.isFinite })
        XCTAssertEqual(try big.logSoftmax(axis: 1).scalars[2], -Float(Foundation.log(1 + Foundation.exp(-1.0) + Foundation.exp(-2.0))), accuracy: 1e-4)   // Float spacing near 1000 is 6e-5
        XCTAssertThrowsError(try x.softmax(axis: 3)) { e in XCTAssertTrue("\(e)".contains("softmax") && "\(e)".contains("[4, 5, 3]"), "\(e)") }
    }

    func testCreationHelpers() {
        XCTAssertEqual(Tensor.linspace(0, 1, count: 5).scalars, [0, 0.25, 0.5, 0.75, 1])
        XCTAssertEqual(Tensor.full([2, 2], 3).scalars, [3, 3, 3, 3])
    }
}
