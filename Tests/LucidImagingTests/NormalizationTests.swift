import Foundation
import LucidCore
@testable import LucidImaging
import XCTest

final class NormalizationTests: XCTestCase {
    /// numpy.percentile(method="linear") on a sorted copy: the reference.
    private func reference(_ values: [Float], _ q: Double) -> Double {
        let s = values.filter { !$0.isNaN }.sorted()
        let pos = q / 100 * Double(s.count - 1)
        let lo = Int(pos.rounded(.down)), hi = min(lo + 1, s.count - 1)
        return Double(s[lo]) + (Double(s[hi]) - Double(s[lo])) * (pos - Double(lo))
    }

    func testPercentilesMatchSortedReference() throws {
        var rng = RandomGenerator(seed: 11)
        let qs: [Double] = [0, 0.1, 1, 2.5, 50, 99, 99.8, 100]
        // Small (sorting path) and large (radix-select path) inputs; ties, negatives, NaNs.
        for (n, kind) in [(1, 0), (7, 0), (1000, 1), (50_000, 0), (200_003, 1), (300_000, 2)] {
            var values = [Float](repeating: 0, count: n)
            for i in 0..<n {
                switch kind {
                case 0: values[i] = rng.normal() * 100 - 20
                case 1: values[i] = Float(rng.int(below: 50)) - 10  // many ties
                default: values[i] = i % 97 == 0 ? .nan : rng.uniform() * 1e-3 + (i % 3 == 0 ? -5 : 7)
                }
            }
            let t = try Tensor(shape: [n], scalars: values)
            let got = try percentiles(t, qs)
            for (q, g) in zip(qs, got) {
                let r = reference(values, q)
                XCTAssertEqual(Double(g), r, accuracy: 1e-6 * max(1, abs(r)), "n \(n) kind \(kind) q \(q)")
            }
        }
        XCTAssertThrowsError(try percentiles(Tensor(zeros: [3]), [101])) { e in
            XCTAssertTrue("\(e)".contains("101"), "\(e)")
        }
        XCTAssertThrowsError(try percentiles(Tensor(shape: [20_000], repeating: .nan), [50])) { e in
            XCTAssertTrue("\(e)".contains("percentiles"), "\(e)")
        }
    }

    func testPercentileNormalizationAndInverse() throws {
        var rng = RandomGenerator(seed: 12)
        let x = Tensor.randomUniform([4, 50, 60], low: 100, high: 4000, rng: &rng)
        let norm = try Normalization.percentile().fitted(to: x)
        let p = try percentiles(x, [1, 99.8])
        XCTAssertEqual(norm.offset, p[0])
        XCTAssertEqual(norm.scale, p[1] - p[0])
        let y = norm.apply(x)
        let back = norm.invert(y)
        for i in stride(from: 0, to: x.count, by: 37) {
            XCTAssertEqual(y.scalars[i], (x.scalars[i] - p[0]) / (p[1] - p[0]), accuracy: 1e-5)
            XCTAssertEqual(back.scalars[i], x.scalars[i], accuracy: 1e-3)
        }
        let yp = try percentiles(y, [1, 99.8])
        XCTAssertEqual(yp[0], 0, accuracy: 1e-5)
        XCTAssertEqual(yp[1], 1, accuracy: 1e-5)

        let clipped = try Normalization.percentile(low: 2, high: 98, clip: true).fitted(to: x).apply(x)
        XCTAssertEqual(clipped.scalars.min(), 0)
        XCTAssertEqual(clipped.scalars.max(), 1)
        XCTAssertThrowsError(try Normalization.percentile(low: 50, high: 10).fitted(to: x)) { e in
            XCTAssertTrue("\(e)".contains("low 50.0, high 10.0"), "\(e)")
        }
    }

    func testMeanStdAndNoneAndCodable() throws {
        var rng = RandomGenerator(seed: 13)
        let x = Tensor.randomNormal([300, 301], mean: 5, std: 3, rng: &rng)
        let norm = try Normalization.meanStd.fitted(to: x)
        let v = x.scalars.map(Double.init)
        let mean = v.reduce(0, +) / Double(v.count)
        let std = (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count)).squareRoot()
        XCTAssertEqual(Double(norm.offset), mean, accuracy: 1e-5)
        XCTAssertEqual(Double(norm.scale), std, accuracy: 1e-5)
        let back = norm.invert(norm.apply(x))
        for i in stride(from: 0, to: x.count, by: 101) { XCTAssertEqual(back.scalars[i], x.scalars[i], accuracy: 1e-4) }

        XCTAssertEqual(try Normalization.none.fitted(to: x).apply(x).scalars, x.scalars)

        let fitted = try Normalization.percentile(low: 3, high: 99.5, clip: true).fitted(to: x)
        let json = try JSONEncoder().encode(fitted)
        XCTAssertEqual(try JSONDecoder().decode(Normalization.self, from: json), fitted)
        // perImage is saved; files written before it existed read as false.
        let perImage = Normalization(method: .meanStd, perImage: true)
        XCTAssertEqual(try JSONDecoder().decode(Normalization.self, from: try JSONEncoder().encode(perImage)), perImage)
        let old = #"{"method": "meanStd", "low": 1, "high": 99.8, "clip": false, "offset": 2, "scale": 3}"#
        XCTAssertEqual(try JSONDecoder().decode(Normalization.self, from: Data(old.utf8)),
                       Normalization(method: .meanStd, offset: 2, scale: 3))

        // Constant data: no division by zero.
        let flat = Tensor(shape: [10], repeating: 7)
        XCTAssertEqual(try Normalization.percentile().fitted(to: flat).apply(flat).scalars, [Float](repeating: 0, count: 10))
    }
}
