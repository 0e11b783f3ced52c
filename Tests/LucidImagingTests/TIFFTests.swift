import Foundation
import LucidCore
@testable import LucidImaging
import XCTest

final class TIFFTests: XCTestCase {
    func testPlaceholderRoundTrip() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lucid-tiff-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = RandomGenerator(seed: 1)
        let t = Tensor.randomUniform([2, 3, 5, 7], low: 0, high: 1000, rng: &rng)
        let img = Image(data: t, axes: "CZYX", pixelSize: 0.65, zSpacing: 2)
        let path = dir.appendingPathComponent("a.tif").path
        try img.write(to: path)
        let back = try Image.read(path)
        XCTAssertEqual(back.axes, "CZYX")
        XCTAssertEqual(back.data.shape, [2, 3, 5, 7])
        XCTAssertEqual(back.data.scalars, t.scalars)
        XCTAssertEqual(back.pixelSize, 0.65)
        XCTAssertEqual(back.zSpacing, 2)
    }
}
