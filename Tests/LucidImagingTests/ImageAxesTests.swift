import Foundation
import LucidCore
@testable import LucidImaging
import XCTest

final class ImageAxesTests: XCTestCase {
    func testTransposeAndPreviewPlanes() throws {
        let data = randomData([2, 3, 4, 5], .float32, seed: 31)  // Z, C, Y, X
        let img = Image(data: data, axes: "ZCYX", pixelSize: 0.5)
        let t = try img.transposed(to: "CZYX")
        XCTAssertEqual(t.data.shape, [3, 2, 4, 5])
        XCTAssertEqual(t.pixelSize, 0.5)
        for z in 0..<2 { for c in 0..<3 { XCTAssertEqual(t.data[c, z, 3, 4], data[z, c, 3, 4]) } }
        XCTAssertEqual(try t.transposed(to: "ZCYX").data.scalars, data.scalars)
        XCTAssertThrowsError(try img.transposed(to: "TZYX")) { e in XCTAssertTrue("\(e)".contains("'TZYX'"), "\(e)") }

        // Preview of channel 0: middle Z plane (z = 1) and max over Z.
        let middle = try img.previewPlane()
        let maxProj = try img.previewPlane(.max)
        XCTAssertEqual(middle.shape, [4, 5])
        for y in 0..<4 { for x in 0..<5 {
            XCTAssertEqual(middle[y, x], data[1, 0, y, x])
            XCTAssertEqual(maxProj[y, x], max(data[0, 0, y, x], data[1, 0, y, x]))
        } }
        let single = try Tensor(shape: [4, 5], scalars: Array(data.scalars[0..<20]))
        XCTAssertEqual(try Image(data: single, axes: "YX").previewPlane(.max).scalars, single.scalars)
    }
}
