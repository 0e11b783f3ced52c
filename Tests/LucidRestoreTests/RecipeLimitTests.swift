import XCTest
@testable import LucidRestore

/// A recipe whose patches cannot fit in memory is refused when it is read, in one line naming
/// the key (and the `--set` that gave it), before any data is loaded or allocated.
final class RecipeLimitTests: XCTestCase {
    func message(_ yaml: String, overrides: [String] = []) -> String {
        do { _ = try Recipe.parse(yaml: yaml, file: "big.yaml", overrides: overrides); return "parsed" } catch { return "\(error)" }
    }

    func testBillionVoxelPatchIsRefused() {
        let yaml = "method: noise2self\ndata:\n  train: a.tif\n  axes: ZYX\n  patch: [1000, 1000, 1000]\nmodel: {depth: 2, filters: 32}\n"
        let m = message(yaml)
        XCTAssertTrue(m.hasPrefix("big.yaml: data.patch: [1000, 1000, 1000] is too large to train: training.batch 16 of these patches "
                                  + "with model.filters 32 (4 Float32 activations of that many channels per voxel at least) needs 7.63e+03 GiB, more than the "), m)
        XCTAssertTrue(m.hasSuffix(" GiB of memory available [line 5]"), m)
        let flat = message("method: noise2self\ndata: {train: a.tif, axes: YX}\n", overrides: ["data.patch=[32768, 32768]"])
        XCTAssertTrue(flat.hasPrefix("big.yaml: data.patch: [32768, 32768] is too large to train: "), flat)
        XCTAssertTrue(flat.hasSuffix("[--set data.patch=[32768, 32768]]"), flat)
        // The usual sizes pass.
        XCTAssertEqual(message(yaml.replacingOccurrences(of: "[1000, 1000, 1000]", with: "[16, 64, 64]")), "parsed")
    }
}
