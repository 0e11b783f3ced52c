import XCTest
@testable import LucidCore

final class MatMulTests: XCTestCase {
    /// Triple loop over broadcast batches: element (m, n) of batch b.
    func naive(_ a: Tensor, _ b: Tensor, tA: Bool, tB: Bool) throws -> (shape: [Int], values: [Float]) {
        let ar = a.rank, br = b.rank
        let M = tA ? a.shape[ar - 1] : a.shape[ar - 2], K = tA ? a.shape[ar - 2] : a.shape[ar - 1]
        let N = tB ? b.shape[br - 2] : b.shape[br - 1]
        let batch = try Tensor.broadcastShape(Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2)), op: "test")
        let nb = batch.reduce(1, *)
        var out: [Float] = []
        let asc = a.scalars, bsc = b.scalars
        for bi in 0..<nb {
            let idx = Naive.index(bi, batch)
            let ab = Naive.flat(idx, Array(a.shape.dropLast(2))), bb = Naive.flat(idx, Array(b.shape.dropLast(2)))
            for m in 0..<M {
                for n in 0..<N {
                    var s = 0.0
                    for k in 0..<K {
                        let av = asc[ab * M * K + (tA ? k * M + m : m * K + k)]
                        let bv = bsc[bb * K * N + (tB ? n * K + k : k * N + n)]
                        s += Double(av) * Double(bv)
                    }
                    out.append(Float(s))
                }
            }
        }
        return (batch + [M, N], out)
    }

    func testMatmulMatchesNaiveWithTransposesAndBatchBroadcast() throws {
        let cases: [([Int], [Int], Bool, Bool)] = [
            ([3, 4], [4, 5], false, false),
            ([4, 3], [4, 5], true, false),
            ([3, 4], [5, 4], false, true),
            ([4, 3], [5, 4], true, true),
            ([2, 3, 4], [4, 5], false, false),          // folded into one GEMM
            ([2, 3, 4], [5, 4], false, true),
            ([2, 4, 3], [4, 5], true, false),
            ([3, 4], [2, 4, 5], false, false),
            ([2, 1, 3, 4], [5, 4, 6], false, false),    // batch broadcast both ways
            ([2, 1, 4, 3], [1, 5, 6, 4], true, true),
            ([7, 2, 3], [7, 3, 2], false, false),
        ]
        for (k, (sa, sb, tA, tB)) in cases.enumerated() {
            let a = random(sa, seed: UInt64(k)), b = random(sb, seed: UInt64(k + 50))
            let c = try matmul(a, b, transposeA: tA, transposeB: tB)
            let ref = try naive(a, b, tA: tA, tB: tB)
            XCTAssertEqual(c.shape, ref.shape, "\(sa) \(sb) \(tA) \(tB)")
            assertClose(c.scalars, ref.values, tol: 1e-5, "\(sa) \(sb) \(tA) \(tB)")
        }
    }

    func testMatmulErrors() {
        XCTAssertThrowsError(try matmul(Tensor(zeros: [2, 3]), Tensor(zeros: [4, 5]))) { e in
            XCTAssertTrue("\(e)".hasPrefix("matmul: shape mismatch") && "\(e)".contains("[2, 3]") && "\(e)".contains("[4, 5]"), "\(e)")
        }
        XCTAssertThrowsError(try matmul(Tensor(zeros: [2, 2, 3]), Tensor(zeros: [3, 3, 4]))) { e in
            XCTAssertTrue("\(e)".contains("batch axes of [2, 2, 3] vs [3, 3, 4]"), "\(e)")
        }
        XCTAssertThrowsError(try matmul(Tensor(zeros: [3]), Tensor(zeros: [3, 1]))) { e in
            XCTAssertTrue("\(e)".hasPrefix("matmul: invalid argument"), "\(e)")
        }
    }
}
