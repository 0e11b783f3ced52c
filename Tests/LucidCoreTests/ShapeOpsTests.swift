import XCTest
@testable import LucidCore

final class ShapeOpsTests: XCTestCase {
    func testPermuteMatchesNaive() throws {
        let x = random([2, 3, 4, 5], seed: 2)
        for perm in [[0, 1, 2, 3], [3, 2, 1, 0], [0, 2, 3, 1], [1, 0, 2, 3], [0, 1, 3, 2], [2, 3, 0, 1]] {
            let y = try x.permuted(perm)
            XCTAssertEqual(y.shape, perm.map { x.shape[$0] })
            var ref = [Float](repeating: 0, count: x.count)
            let xs = x.scalars
            for i in 0..<x.count {
                let idx = Naive.index(i, x.shape)
                ref[Naive.flat(perm.map { idx[$0] }, y.shape)] = xs[i]
            }
            XCTAssertEqual(y.scalars, ref, "\(perm)")
        }
        XCTAssertThrowsError(try x.permuted([0, 1, 1, 2])) { e in
            XCTAssertEqual("\(e)", "permute: invalid argument: axes [0, 1, 1, 2] are not a permutation for shape [2, 3, 4, 5]")
        }
    }

    func testSliceAndConcat() throws {
        let x = try Tensor(shape: [2, 3, 2], scalars: (0..<12).map(Float.init))
        let s = try x.slice(axis: 1, range: 1..<3)
        XCTAssertEqual(s.shape, [2, 2, 2])
        XCTAssertEqual(s.scalars, [2, 3, 4, 5, 8, 9, 10, 11])
        XCTAssertEqual(try x.slice(axis: -1, range: 1..<2).scalars, [1, 3, 5, 7, 9, 11])
        let c = try Tensor.concat([try x.slice(axis: 1, range: 0..<1), s], axis: 1)
        XCTAssertEqual(c.scalars, x.scalars)
        let c0 = try Tensor.concat([x, x], axis: 0)
        XCTAssertEqual(c0.shape, [4, 3, 2])
        XCTAssertEqual(c0.scalars, x.scalars + x.scalars)
        XCTAssertThrowsError(try x.slice(axis: 1, range: 2..<4)) { e in
            XCTAssertEqual("\(e)", "slice: invalid argument: range 2..<4 out of bounds for axis 1 of shape [2, 3, 2]")
        }
        XCTAssertThrowsError(try Tensor.concat([x, Tensor(zeros: [2, 3, 3])], axis: 1)) { e in
            XCTAssertTrue("\(e)".contains("concat: shape mismatch: [2, 3, 2] vs [2, 3, 3]"), "\(e)")
        }
    }

    func testReflectAndZeroPadByHand() throws {
        let v = try Tensor(shape: [3], scalars: [1, 2, 3])
        XCTAssertEqual(try v.padded([(2, 2)], mode: .reflect).scalars, [3, 2, 1, 2, 3, 2, 1])
        XCTAssertEqual(try v.padded([(1, 2)], mode: .zero).scalars, [0, 1, 2, 3, 0, 0])
        // torch.nn.functional.pad(x, (2, 1, 1, 1), mode='reflect') on [[1,2,3],[4,5,6]] (1×1×2×3):
        let m = try Tensor(shape: [1, 1, 2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let r = try m.padded([(1, 1), (2, 1)], mode: .reflect)
        XCTAssertEqual(r.shape, [1, 1, 4, 6])
        XCTAssertEqual(r.scalars, [6, 5, 4, 5, 6, 5,
                                   3, 2, 1, 2, 3, 2,
                                   6, 5, 4, 5, 6, 5,
                                   3, 2, 1, 2, 3, 2])
        let z = try m.padded([(1, 0), (0, 1)], mode: .zero)
        XCTAssertEqual(z.scalars, [0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6, 0])
        XCTAssertThrowsError(try v.padded([(3, 0)], mode: .reflect)) { e in
            XCTAssertTrue("\(e)".hasPrefix("pad: invalid argument: reflect padding (3, 0) must be smaller than extent 3"), "\(e)")
        }
        XCTAssertThrowsError(try v.padded([(1, 1), (1, 1)], mode: .zero)) { e in XCTAssertTrue("\(e)".contains("2 pad pairs for shape [3]"), "\(e)") }
    }

    func testPadBackwardIsTheAdjointOfPad() throws {
        // ⟨pad(x), y⟩ = ⟨x, padBackward(y)⟩ for every x, y.
        for mode in [PadMode.zero, .reflect] {
            let shape = [2, 3, 5, 4], pads = [(2, 1), (3, 1)]
            let x = random(shape, seed: 11)
            let px = try x.padded(pads, mode: mode)
            let y = random(px.shape, seed: 12)
            let back = try Tensor.padBackward(y, inputShape: shape, pads: pads, mode: mode)
            let lhs = zip(px.scalars, y.scalars).map { Double($0) * Double($1) }.reduce(0, +)
            let rhs = zip(x.scalars, back.scalars).map { Double($0) * Double($1) }.reduce(0, +)
            XCTAssertEqual(lhs, rhs, accuracy: 1e-4, "\(mode)")
        }
    }
}
