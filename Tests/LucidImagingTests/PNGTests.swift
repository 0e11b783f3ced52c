import CPNG
import Foundation
import LucidCore
@testable import LucidImaging
import LucidTestSupport
import XCTest

final class PNGTests: XCTestCase {
    /// Decodes a PNG with libpng's simplified reader into 8-bit samples of `channels` (1 or 3).
    private func decode(_ path: String, channels: Int) throws -> (bytes: [UInt8], width: Int, height: Int) {
        let image = UnsafeMutablePointer<png_image>.allocate(capacity: 1)
        defer { image.deallocate() }
        UnsafeMutableRawPointer(image).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<png_image>.size)
        image.pointee.version = png_uint_32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_file(image, path) != 0 else {
            throw ImagingError.unreadable(path: path, reason: "libpng could not open it")
        }
        image.pointee.format = channels == 1 ? 0 : 2
        let (w, h) = (Int(image.pointee.width), Int(image.pointee.height))
        var bytes = [UInt8](repeating: 0, count: w * h * channels)
        let ok = bytes.withUnsafeMutableBytes { png_image_finish_read(image, nil, $0.baseAddress, 0, nil) }
        guard ok != 0 else { throw ImagingError.unreadable(path: path, reason: "libpng could not decode it") }
        return (bytes, w, h)
    }

    func testGrayAndRGBRoundTrip() throws {
        let dir = try temporaryFolder(self)
        let gray = try Tensor(shape: [2, 3], scalars: [0, 0.5, 1, -1, 2, .nan])
        let path = dir.appendingPathComponent("g.png").path
        try PNG.write(gray, to: path)
        let g = try decode(path, channels: 1)
        XCTAssertEqual(g.width, 3)
        XCTAssertEqual(g.height, 2)
        XCTAssertEqual(g.bytes, [0, 128, 255, 0, 255, 0])

        let rgb = try Tensor(shape: [1, 2, 3], scalars: [1, 0, 0, 0.2, 0.4, 0.6])
        let rgbPath = dir.appendingPathComponent("c.png").path
        try PNG.writeRGB(rgb, to: rgbPath)
        let c = try decode(rgbPath, channels: 3)
        XCTAssertEqual(c.bytes, [255, 0, 0, 51, 102, 153])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["c.png", "g.png"])

        XCTAssertThrowsError(try PNG.write(Tensor(zeros: [2, 2, 2]), to: path)) { e in
            XCTAssertTrue("\(e)".contains("[2, 2, 2]"), "\(e)")
        }
        XCTAssertThrowsError(try PNG.write(gray, to: dir.appendingPathComponent("none/x.png").path)) { e in
            XCTAssertTrue("\(e)".contains("none/x.png"), "\(e)")
        }
    }

    func testComparisonMontage() throws {
        let dir = try temporaryFolder(self)
        // Two images with different intensity ranges and heights; each is scaled by its own
        // 0/100 percentiles, so both span 0...255.
        let a = try Tensor(shape: [2, 2], scalars: [10, 20, 30, 40])
        let b = try Tensor(shape: [3, 1], scalars: [-5, 0, 5])
        let path = dir.appendingPathComponent("m.png").path
        try PNG.writeComparison([a, b], to: path, gap: 2, low: 0, high: 100)
        let m = try decode(path, channels: 1)
        XCTAssertEqual(m.width, 2 + 2 + 1)
        XCTAssertEqual(m.height, 3)
        let q = { (v: Float) in UInt8(v * 255 + 0.5) }
        XCTAssertEqual(m.bytes, [0, q(1 / 3), 255, 255, 0,
                                 q(2 / 3), 255, 255, 255, 128,
                                 255, 255, 255, 255, 255])
    }
}
