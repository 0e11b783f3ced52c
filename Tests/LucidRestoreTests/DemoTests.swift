import Foundation
@testable import LucidRestore
import XCTest

/// `lucid demo` (Noise2Self) with a tiny budget: the speed probe is the run, and every file is written.
final class DemoTests: XCTestCase {
    func testNoise2SelfDemoWritesItsFiles() throws {
        let dir = NSTemporaryDirectory() + "lucid-demo-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var demo = Demo()
        demo.output = dir
        demo.size = 64
        demo.seconds = 0.01
        var lines: [String] = []
        let result = try demo.run { lines.append($0) }
        XCTAssertEqual(result.steps, 12)
        XCTAssertTrue(lines.contains { $0.hasPrefix("training Noise2Self for 12 steps (") }, "\(lines)")
        XCTAssertEqual(try Checkpoint.load(directory: "\(dir)/checkpoint").metadata.step, 12)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(),
                       ["checkpoint", "clean.tif", "comparison.png", "metrics.json", "noisy.tif", "restored.tif"])
        let metrics = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/metrics.json"))) as? [String: Any])
        XCTAssertEqual(metrics["steps"] as? Int, 12)
        XCTAssertEqual(try XCTUnwrap((metrics["restored"] as? [String: Any])?["psnr"] as? Double), result.restored.psnr, accuracy: 1e-9)
    }
}
