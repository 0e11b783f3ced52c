import XCTest
import LucidCore
import LucidImaging
@testable import LucidRestore

final class ImageEvaluationTests: XCTestCase {
    private func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return try! Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in 10 * rng.uniform() })
    }

    func testSpatialImagesFollowTheNonSpatialAxes() throws {
        // Z C Y X: the C axis sits between Z and Y, as in ImageJ hyperstacks.
        let t = Tensor.arange(0, 2 * 3 * 4 * 5).reshapedOrFail([2, 3, 4, 5])
        let images = ImageEvaluation.spatialImages(t, axes: "ZCYX")
        XCTAssertEqual(images.count, 3)
        for (c, image) in images.enumerated() {
            XCTAssertEqual(image.shape, [2, 4, 5])
            for z in 0..<2 { for y in 0..<4 { for x in 0..<5 {
                XCTAssertEqual(image[z, y, x], t[z, c, y, x])
            } } }
        }
        XCTAssertEqual(ImageEvaluation.spatialImages(t, axes: "TZYX").map(\.shape), [[3, 4, 5], [3, 4, 5]])
    }

    func testChannelsAreAveragedForSSIM() throws {
        let ref = random([2, 16, 18], seed: 1), pred = random([2, 16, 18], seed: 2)
        let report = try ImageEvaluation.evaluate(Image(data: pred, axes: "CYX"), reference: Image(data: ref, axes: "CYX"),
                                                  dataRange: 10)
        let perChannel = try (0..<2).map { c -> Double in
            let r = try Tensor(shape: [16, 18], scalars: Array(ref.scalars[(c * 288)..<((c + 1) * 288)]))
            let p = try Tensor(shape: [16, 18], scalars: Array(pred.scalars[(c * 288)..<((c + 1) * 288)]))
            return try Metrics.ssim(p, reference: r, dataRange: 10)
        }
        XCTAssertEqual(report.ssim, (perChannel[0] + perChannel[1]) / 2, accuracy: 1e-12)
        XCTAssertEqual(report.psnr, try Metrics.psnr(pred, reference: ref, dataRange: 10), accuracy: 1e-12)
        XCTAssertEqual(report.pearson, try Metrics.pearson(pred, reference: ref), accuracy: 1e-12)
    }

    func testThinStacksAverageTheirPlanes() throws {
        let ref = random([3, 12, 14], seed: 6), pred = random([3, 12, 14], seed: 7)
        let report = try ImageEvaluation.evaluate(Image(data: pred, axes: "ZYX"), reference: Image(data: ref, axes: "ZYX"),
                                                  dataRange: 10)
        var expected = 0.0
        for z in 0..<3 {
            let plane = 12 * 14
            let r = try Tensor(shape: [12, 14], scalars: Array(ref.scalars[(z * plane)..<((z + 1) * plane)]))
            let p = try Tensor(shape: [12, 14], scalars: Array(pred.scalars[(z * plane)..<((z + 1) * plane)]))
            expected += try Metrics.ssim(p, reference: r, dataRange: 10) / 3
        }
        XCTAssertEqual(report.ssim, expected, accuracy: 1e-12)
    }

    func testSingletonAxesAreDroppedToAlign() throws {
        let ref = random([12, 13], seed: 3), pred = random([12, 13], seed: 4)
        let stacked = Image(data: try pred.reshaped([1, 12, 13]), axes: "ZYX")
        let a = try ImageEvaluation.evaluate(stacked, reference: Image(data: ref, axes: "YX"))
        let b = try Metrics.evaluate(pred, reference: ref)
        XCTAssertEqual(a, b)
        XCTAssertThrowsError(try ImageEvaluation.evaluate(Image(data: random([12, 14], seed: 5), axes: "YX"),
                                                          reference: Image(data: ref, axes: "YX"))) { e in
            XCTAssertEqual("\(e)", "evaluate: shape mismatch: prediction [12, 14] (YX) vs reference [12, 13] (YX)")
        }
    }
}

private extension Tensor {
    func reshapedOrFail(_ shape: [Int]) -> Tensor { try! reshaped(shape) }
}
