import Foundation
import LucidCore
@testable import LucidImaging
import XCTest

/// Linear YX resampling (label-free models trained at another pixel size).
final class ResamplingTests: XCTestCase {
    func testHalvingAveragesPairsAndRampsStayRamps() throws {
        // [2, 4, 6] planes of a ramp along X: value = 3x + 10y + 100p.
        let shape = [2, 4, 6]
        let values: [Float] = (0..<48).map { (i: Int) -> Float in
            let (column, row, plane) = (i % 6, (i / 6) % 4, i / 24)
            return Float(3 * column + 10 * row + 100 * plane)
        }
        let x = try Tensor(shape: shape, scalars: values)
        // Halving samples at 2j + 0.5: the mean of each pair of pixels (PyTorch bilinear, align_corners false).
        let half = try Resampling.linearYX(x, height: 2, width: 3)
        XCTAssertEqual(half.shape, [2, 2, 3])
        for p in 0..<2 { for i in 0..<2 { for j in 0..<3 {
            var expected: Float = 0
            for dy in 0..<2 { for dx in 0..<2 { expected += values[p * 24 + (2 * i + dy) * 6 + 2 * j + dx] / 4 } }
            XCTAssertEqual(half.scalars[p * 6 + i * 3 + j], expected, accuracy: 1e-4)
        } } }
        // A ramp is reproduced wherever the sample lies inside the image; outside, the edge is held.
        let wide = try Resampling.linearYX(x, height: 4, width: 10)
        for j in 0..<10 {
            let position = min(max((Double(j) + 0.5) * 0.6 - 0.5, 0), 5)
            XCTAssertEqual(Double(wide.scalars[10 + j]), 3 * position + 10, accuracy: 1e-4, "column \(j)")
        }
        XCTAssertEqual(try Resampling.linearYX(x, height: 4, width: 6).scalars, x.scalars)
        XCTAssertThrowsError(try Resampling.linearYX(x, height: 0, width: 3))
    }

    func testImagesKeepTheirAxesAndScaleThePixelSize() throws {
        let image = Image(data: Tensor(shape: [3, 10, 20], repeating: 5), axes: "ZYX", pixelSize: 0.1, zSpacing: 0.5)
        let out = try image.resampledYX(height: 4, width: 8)
        XCTAssertEqual(out.data.shape, [3, 4, 8])
        XCTAssertEqual(out.axes, "ZYX")
        XCTAssertEqual(out.pixelSize ?? 0, 0.25, accuracy: 1e-12)
        XCTAssertEqual(out.zSpacing, 0.5)
        XCTAssertTrue(out.data.scalars.allSatisfy { $0 == 5 })
        XCTAssertEqual(Resampling.extent(600, from: 0.108, to: 0.29), 223)
        XCTAssertEqual(Resampling.extent(1, from: 0.1, to: 10), 1)
    }
}
