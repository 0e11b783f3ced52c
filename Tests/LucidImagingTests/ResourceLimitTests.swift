import Foundation
import LucidCore
@testable import LucidImaging
import LucidTestSupport
import XCTest

/// Sizes declared by a file that cannot fit in memory give a one-line error before anything of
/// that size is allocated.
final class ResourceLimitTests: XCTestCase {
    /// A 2 KB file whose tags and ImageJ description declare 10000 planes of 100000 × 100000.
    func testStackDeclaring100000x100000x10000PixelsIsRefusedBeforeAllocating() throws {
        let dir = try temporaryFolder(self)
        let path = dir.appendingPathComponent("huge.tif").path
        let desc = Array("ImageJ=1.53t\nimages=10000\nslices=10000\n\0".utf8)
        let descOffset = 8 + handBuiltIFDSize(9)
        let d = handBuiltTIFF(entries: [(256, 4, 1, 100_000), (257, 4, 1, 100_000), (258, 3, 1, 16), (259, 3, 1, 1),
                                        (262, 3, 1, 1), (270, 2, desc.count, descOffset), (273, 4, 1, descOffset + desc.count),
                                        (278, 4, 1, 100_000), (279, 4, 1, 1024)],
                              extra: desc, pixels: Data(count: 1024))
        try d.write(to: URL(fileURLWithPath: path))
        // The geometry reads without touching the pixels.
        XCTAssertEqual(try Image.info(path).shape, [10000, 100_000, 100_000])
        XCTAssertThrowsError(try Image.read(path)) { e in
            let m = "\(e)"
            XCTAssertTrue(m.hasPrefix("cannot read '\(path)': 10000 page(s) of 100000x100000x1 pixels as Float32 needs 3.73e+05 GiB, more than the "), m)
            XCTAssertTrue(m.hasSuffix(" GiB of memory available (corrupt size tags?)"), m)
            XCTAssertFalse(m.contains("\n"), m)
        }
    }

    /// A tile larger than the memory Lucid may use (capped here by `LUCID_MEMORY_LIMIT_MB`)
    /// is refused before its decoding buffer is allocated, though the page itself is small.
    func testTileLargerThanAvailableMemoryIsRefused() throws {
        let dir = try temporaryFolder(self)
        let path = dir.appendingPathComponent("tile.tif").path
        let d = handBuiltTIFF(entries: [(256, 3, 1, 16), (257, 3, 1, 16), (258, 3, 1, 32), (259, 3, 1, 1), (262, 3, 1, 1),
                                        (322, 4, 1, 16384), (323, 4, 1, 16384), (324, 4, 1, 8 + handBuiltIFDSize(9)),
                                        (325, 4, 1, 64), (339, 3, 1, 3)], pixels: Data(count: 64))
        try d.write(to: URL(fileURLWithPath: path))
        setenv("LUCID_MEMORY_LIMIT_MB", "64", 1)
        defer { unsetenv("LUCID_MEMORY_LIMIT_MB") }
        XCTAssertThrowsError(try Image.read(path)) { e in
            XCTAssertEqual("\(e)", "cannot read '\(path)': page 0: a tile of 16384x16384 pixels needs 1 GiB, more than the 0.0625 GiB of memory available (corrupt tile size tags?)")
        }
    }

    func testAvailableMemoryIsPositiveAndHonoursTheLimit() {
        XCTAssertGreaterThan(SystemMemory.availableBytes, 0)
        XCTAssertNil(SystemMemory.shortfall(1 << 20))
        XCTAssertNotNil(SystemMemory.shortfall(Int.max))
        XCTAssertEqual(SystemMemory.shortfall(nil), "needs more bytes than a 64-bit size can count")
        setenv("LUCID_MEMORY_LIMIT_MB", "1", 1)
        defer { unsetenv("LUCID_MEMORY_LIMIT_MB") }
        XCTAssertEqual(SystemMemory.availableBytes, 1 << 20)
        XCTAssertNil(SystemMemory.shortfall(1 << 20))
        XCTAssertEqual(SystemMemory.shortfall(3 << 20), "needs 0.00293 GiB, more than the 0.000977 GiB of memory available")
        XCTAssertNil(SystemMemory.product([1 << 40, 1 << 40]))
        XCTAssertEqual(SystemMemory.product([3, 0, 1 << 62]), 0)
    }
}
