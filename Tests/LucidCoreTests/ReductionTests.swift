import XCTest
@testable import LucidCore

final class ReductionTests: XCTestCase {
    /// Naive reduction: groups every input element by its index with `axes` removed.
    func naive(_ x: Tensor, _ axes: [Int], _ combine: ([Double]) -> Double) -> [Float] {
        let outShape = x.shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
        var buckets = [[Double]](repeating: [], count: outShape.reduce(1, *))
        let xs = x.scalars
        for i in 0..<x.count {
            let idx = Naive.index(i, x.shape)
            let kept = idx.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
            var f = 0
            for (k, n) in outShape.enumerated() { f = f * n + kept[k] }
            buckets[f].append(Double(xs[i]))
        }
        return buckets.map { Float(combine($0)) }
    }

    func testReductionsMatchNaiveOverAxisSets() throws {
        let x = random([3, 4, 5, 6], seed: 4)
        let axisSets: [[Int]] = [[0], [1], [3], [0, 2], [1, 3], [0, 1, 3], [0, 1, 2, 3], [2, 3], [0, 3]]
        for axes in axisSets {
            let sum = naive(x, axes) { $0.reduce(0, +) }
            let mean = naive(x, axes) { $0.reduce(0, +) / Double($0.count) }
            let mx = naive(x, axes) { $0.max()! }
            let variance = naive(x, axes) { v in
                let m = v.reduce(0, +) / Double(v.count)
                return v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count)
            }
            assertClose(try x.sum(axes: axes).scalars, sum, tol: 1e-5, "sum \(axes)")
            assertClose(try x.mean(axes: axes).scalars, mean, tol: 1e-6, "mean \(axes)")
            assertClose(try x.max(axes: axes).scalars, mx, tol: 0, "max \(axes)")
            assertClose(try x.variance(axes: axes).scalars, variance, tol: 1e-6, "variance \(axes)")
            let n = Float(axes.reduce(1) { $0 * x.shape[$1] })
            assertClose(try x.variance(axes: axes, unbiased: true).scalars, variance.map { $0 * n / (n - 1) }, tol: 1e-5)
            let kept = x.shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
            XCTAssertEqual(try x.sum(axes: axes, keepDims: true).shape, kept)
        }
        XCTAssertEqual(try x.sum().shape, [])
        assertClose(try x.sum(axes: [-1]).scalars, try x.sum(axes: [3]).scalars, tol: 0)
    }

    func testLargeReductionsAreAccurateAndParallelPathsAgree() throws {
        // Reduced inner run (parallel over outputs) and kept inner run (parallel over column blocks).
        let x = random([4, 3, 20_000], seed: 5, low: 0, high: 1)
        assertClose(try x.sum(axes: [0, 2]).scalars, naive(x, [0, 2]) { $0.reduce(0, +) }, tol: 1e-6)
        assertClose(try x.sum(axes: [0, 1]).scalars, naive(x, [0, 1]) { $0.reduce(0, +) }, tol: 1e-6)
        assertClose(try x.max(axes: [0, 1]).scalars, naive(x, [0, 1]) { $0.max()! }, tol: 0)
        let ones = Tensor(ones: [3_000_001])
        XCTAssertEqual(try ones.sum().scalar, 3_000_001, accuracy: 0.5)
        XCTAssertEqual(try (ones * 0.1).mean().scalar, 0.1, accuracy: 1e-6)
    }

    func testBadAxesThrow() {
        let x = Tensor(zeros: [2, 3])
        XCTAssertThrowsError(try x.sum(axes: [2])) { e in
            XCTAssertEqual("\(e)", "sum: invalid argument: axis 2 out of range for shape [2, 3]")
        }
        XCTAssertThrowsError(try x.mean(axes: [1, -1])) { e in XCTAssertTrue("\(e)".contains("mean") && "\(e)".contains("repeated"), "\(e)") }
        XCTAssertThrowsError(try Tensor(zeros: [0, 3]).max(axes: [0])) { e in XCTAssertTrue("\(e)".hasPrefix("max: invalid argument"), "\(e)") }
    }

    func testReduceToShapeSumsBroadcastAxes() throws {
        let g = random([2, 3, 4], seed: 6)
        let r = try Tensor.reduce(g, toShape: [3, 1])
        XCTAssertEqual(r.shape, [3, 1])
        assertClose(r.scalars, naive(g, [0, 2]) { $0.reduce(0, +) }, tol: 1e-6)
        XCTAssertEqual(try Tensor.reduce(g, toShape: [2, 3, 4]).scalars, g.scalars)
        assertClose(try Tensor.reduce(g, toShape: []).scalars, [g.scalars.reduce(0, +)], tol: 1e-6)
        XCTAssertThrowsError(try Tensor.reduce(g, toShape: [2, 4])) { e in
            XCTAssertEqual("\(e)", "reduce(toShape:): shape mismatch: [2, 3, 4] vs [2, 4]")
        }
    }
}
