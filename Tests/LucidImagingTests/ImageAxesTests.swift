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

    func testSelectingChannels() throws {
        let data = randomData([2, 3, 4, 5], .float32, seed: 32)  // Z, C, Y, X
        let img = Image(data: data, axes: "ZCYX", pixelSize: 0.5, zSpacing: 2)
        let two = try img.selectingChannels([2, 0])
        XCTAssertEqual(two.axes, "ZCYX")
        XCTAssertEqual(two.data.shape, [2, 2, 4, 5])
        XCTAssertEqual(two.zSpacing, 2)
        for z in 0..<2 { XCTAssertEqual(two.data[z, 0, 3, 4], data[z, 2, 3, 4]); XCTAssertEqual(two.data[z, 1, 1, 2], data[z, 0, 1, 2]) }
        let one = try img.selectingChannels([1])
        XCTAssertEqual(one.axes, "ZYX")
        XCTAssertEqual(one.data.shape, [2, 4, 5])
        XCTAssertEqual(one.data[1, 2, 3], data[1, 1, 2, 3])
        XCTAssertThrowsError(try img.selectingChannels([0, 3])) {
            XCTAssertEqual("\($0)", "selectingChannels: invalid argument: channel 3 is out of range: the image has 3 channels (axes ZCYX)")
        }
        // No C axis: the one channel 0.
        let plain = Image(data: try one.data.slice(axis: 0, range: 0..<1).reshaped([4, 5]), axes: "YX")
        XCTAssertEqual(try plain.selectingChannels([0]).data.scalars, plain.data.scalars)
        XCTAssertThrowsError(try plain.selectingChannels([1])) {
            XCTAssertTrue("\($0)".hasSuffix("channel 1 is out of range: the image has 1 channel (axes YX)"), "\($0)")
        }
    }
}
