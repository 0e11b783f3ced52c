import XCTest
@testable import LucidAutograd
@testable import LucidCore

final class NormalizationTests: XCTestCase {
    func testBatchNormTrainGradients() {
        for shape in [[5, 3], [2, 3, 4, 5], [2, 3, 2, 3, 4]] {
            let c = shape[1]
            let x = randomTensor(shape, seed: 40, low: -2, high: 3)
            let w = randomTensor([c], seed: 41, low: 0.5, high: 1.5), b = randomTensor([c], seed: 42)
            assertGradients([x, w, b], "batchNorm train \(shape)") { v in
                try batchNorm(v[0], weight: v[1], bias: v[2], statistics: BatchNormStatistics(channels: c), training: true)
            }
            assertGradients([x], "batchNorm train no affine \(shape)") { v in
                try batchNorm(v[0], weight: nil, bias: nil, statistics: BatchNormStatistics(channels: c), training: true)
            }
        }
    }

    func testBatchNormEvalGradientsAndRunningStatistics() throws {
        let shape = [3, 2, 5, 4]
        let x = randomTensor(shape, seed: 43, low: -1, high: 4)
        let stats = BatchNormStatistics(channels: 2)
        let y = try batchNorm(Variable(x), weight: nil, bias: nil, statistics: stats, training: true, momentum: 0.2).value
        // Reference per channel: batch mean, biased variance for the output, unbiased for the running stats.
        let xs = x.scalars, ys = y.scalars
        for ch in 0..<2 {
            var vals: [Double] = [], outs: [Double] = []
            for i in 0..<x.count where (i / 20) % 2 == ch { vals.append(Double(xs[i])); outs.append(Double(ys[i])) }
            let n = Double(vals.count), m = vals.reduce(0, +) / n
            let v = vals.map { ($0 - m) * ($0 - m) }.reduce(0, +) / n
            for (a, o) in zip(vals, outs) { XCTAssertEqual(o, (a - m) / (v + 1e-5).squareRoot(), accuracy: 1e-4) }
            XCTAssertEqual(Double(stats.mean.scalars[ch]), 0.2 * m, accuracy: 1e-5)
            XCTAssertEqual(Double(stats.variance.scalars[ch]), 0.8 + 0.2 * v * n / (n - 1), accuracy: 1e-5)
        }
        XCTAssertEqual(stats.batchesTracked, 1)
        // Eval uses the running statistics and leaves them alone.
        let before = stats.mean.scalars
        let w = randomTensor([2], seed: 44, low: 0.5, high: 1.5), b = randomTensor([2], seed: 45)
        let e = try batchNorm(Variable(x), weight: Variable(w), bias: Variable(b), statistics: stats, training: false).value
        for i in [0, 17, 23, 119] {
            let ch = (i / 20) % 2
            let ref = (xs[i] - stats.mean.scalars[ch]) / (stats.variance.scalars[ch] + 1e-5).squareRoot() * w.scalars[ch] + b.scalars[ch]
            XCTAssertEqual(e.scalars[i], ref, accuracy: 1e-5)
        }
        XCTAssertEqual(stats.mean.scalars, before)
        assertGradients([x, w, b], "batchNorm eval") { v in
            try batchNorm(v[0], weight: v[1], bias: v[2], statistics: stats, training: false)
        }
        XCTAssertThrowsError(try batchNorm(Variable(x), weight: Variable(Tensor(ones: [3])), bias: nil, statistics: stats, training: true)) { err in
            XCTAssertEqual("\(err)", "batchNorm: shape mismatch: weight [3] vs input [3, 2, 5, 4] (expected [2])")
        }
        XCTAssertThrowsError(try batchNorm(Variable(Tensor(zeros: [1, 2])), weight: nil, bias: nil, statistics: stats, training: true)) { err in
            XCTAssertTrue("\(err)".hasPrefix("batchNorm: invalid argument: training needs more than one value per channel"), "\(err)")
        }
    }

    func testBatchNormLargeChannelsAreNormalized() throws {
        // Long runs exercise the 16-lane blocks; per-channel output mean 0 and variance 1.
        let x = randomTensor([2, 3, 4100], seed: 46, low: 5, high: 9)
        let y = try batchNorm(Variable(x), weight: nil, bias: nil, statistics: BatchNormStatistics(channels: 3), training: true).value
        let m = try y.mean(axes: [0, 2]), v = try y.variance(axes: [0, 2])
        for ch in 0..<3 {
            XCTAssertEqual(m.scalars[ch], 0, accuracy: 1e-4)
            XCTAssertEqual(v.scalars[ch], 1, accuracy: 1e-3)
        }
    }

    func testGroupAndInstanceNorm() throws {
        let x = randomTensor([2, 6, 3, 5], seed: 47, low: -2, high: 2)
        let w = randomTensor([6], seed: 48, low: 0.5, high: 1.5), b = randomTensor([6], seed: 49)
        for groups in [1, 2, 3, 6] {
            assertGradients([x, w, b], "groupNorm \(groups)") { v in try groupNorm(v[0], groups: groups, weight: v[1], bias: v[2]) }
        }
        assertGradients([randomTensor([2, 4, 3, 2, 3], seed: 50)], "groupNorm 3D no affine") { v in
            try groupNorm(v[0], groups: 2, weight: nil, bias: nil)
        }
        assertGradients([x, w, b], "instanceNorm") { v in try instanceNorm(v[0], weight: v[1], bias: v[2]) }
        assertGradients([x], "instanceNorm no affine") { v in try instanceNorm(v[0], weight: nil, bias: nil) }
        // Forward: group (n, g) normalized with biased variance.
        let y = try groupNorm(Variable(x), groups: 2, weight: nil, bias: nil).value
        let xs = x.scalars, ys = y.scalars
        for blk in 0..<4 {
            let vals = (0..<45).map { Double(xs[blk * 45 + $0]) }
            let m = vals.reduce(0, +) / 45, v = vals.map { ($0 - m) * ($0 - m) }.reduce(0, +) / 45
            for k in [0, 22, 44] { XCTAssertEqual(Double(ys[blk * 45 + k]), (vals[k] - m) / (v + 1e-5).squareRoot(), accuracy: 1e-4) }
        }
        XCTAssertThrowsError(try groupNorm(Variable(x), groups: 4, weight: nil, bias: nil)) { e in
            XCTAssertEqual("\(e)", "groupNorm: invalid argument: 4 groups do not divide 6 channels of input [2, 6, 3, 5]")
        }
    }
}
