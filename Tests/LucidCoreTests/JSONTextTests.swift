import Foundation
import XCTest
import LucidCore

final class JSONTextTests: XCTestCase {
    func testQuotedStringsParseBackUnchanged() throws {
        for s in ["plain", "quote \" and \\ backslash", "tab\tnew\nline\r", "bell \u{07} nul \u{00}", "µm ∆ 🔬", ""] {
            let parsed = try JSONSerialization.jsonObject(with: Data(jsonQuoted(s).utf8), options: [.fragmentsAllowed])
            XCTAssertEqual(parsed as? String, s)
        }
        XCTAssertEqual(jsonQuoted("a\u{01}"), "\"a\\u0001\"")
    }
}
