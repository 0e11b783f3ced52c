import Foundation
import LucidCore
@testable import LucidImaging
import LucidTestSupport
import XCTest

final class TIFFFuzzTests: XCTestCase {
    /// Damaged files (random bytes overwritten, or cut short) either read (`info`, `read`) or throw
    /// `ImagingError` naming the file — they never crash the process.
    func testDamagedFilesNeverCrash() throws {
        let dir = try temporaryFolder(self)
        let rounds = Int(ProcessInfo.processInfo.environment["LUCID_FUZZ_ROUNDS"] ?? "") ?? 60
        let data = randomData([4, 40, 36], .uint16, seed: 21)  // 4 pages: read by 2 workers
        var originals: [Data] = []
        for (i, o) in [TIFFWriteOptions(), TIFFWriteOptions(compression: .lzw), TIFFWriteOptions(compression: .deflate, tileSize: 16),
                       TIFFWriteOptions(compression: .packbits, bigTIFF: true)].enumerated() {
            let path = dir.appendingPathComponent("orig\(i).tif").path
            try Image(data: data, axes: "ZYX", pixelSize: 0.2).write(to: path, as: .uint16, options: o)
            originals.append(try Data(contentsOf: URL(fileURLWithPath: path)))
        }
        var rng = RandomGenerator(seed: 22)
        var failures = 0
        let path = dir.appendingPathComponent("damaged.tif").path
        for round in 0..<rounds {
            var bytes = [UInt8](originals[round % originals.count])
            if round % 5 == 4 {
                bytes.removeLast(1 + rng.int(below: bytes.count - 1))
            } else {
                // Damage the header/IFD region more often: it drives every allocation.
                for _ in 0..<(1 + rng.int(below: 8)) {
                    let limit = rng.int(below: 2) == 0 ? min(bytes.count, 512) : bytes.count
                    bytes[rng.int(below: limit)] = UInt8(rng.int(below: 256))
                }
            }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do {
                _ = try Image.info(path)
                _ = try Image.read(path)
            } catch let e as ImagingError {
                failures += 1
                XCTAssertTrue("\(e)".contains("'\(path)'"), "\(e)")
                XCTAssertFalse("\(e)".contains("\n"), "\(e)")
            }
        }
        XCTAssertGreaterThan(failures, 0)
    }
}
