import XCTest
@testable import LucidRestore

/// Inputs the libFuzzer harnesses (`Fuzz/`, `make fuzz`) found that broke a property; each is
/// kept here once fixed.
final class FuzzRegressionTests: XCTestCase {
    private func message(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }

    /// A quoted header field holding a line break: the message quoting the columns was two lines.
    func testManifestMessageQuotingALineBreakStaysOneLine() {
        XCTAssertEqual(message { _ = try LabelFreeManifest.parse("\n\"\n\"\n\u{10}", file: "pairs.csv", directory: "/data") },
                       "pairs.csv line 2: no signal column (columns found: \\n; a manifest needs signal and target)")
    }
}
