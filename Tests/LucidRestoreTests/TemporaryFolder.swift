import Foundation
import XCTest

/// A new empty folder under the temporary folder, removed when `test` ends.
func temporaryFolder(_ test: XCTestCase, prefix: String) throws -> String {
    let dir = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
    return dir
}
