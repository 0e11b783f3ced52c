import Foundation
import XCTest

/// Runs `python3 -c script args…`; returns (status, stdout, stderr).
func python(_ script: String, _ args: [String] = []) throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", script] + args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// Skips the test, printing why, unless `python3` imports every module of `modules`.
func requirePython(_ modules: [String], for what: String) throws {
    let r = try? python("import " + modules.joined(separator: ", "))
    guard let r, r.status == 0 else {
        let why = "\(what) needs python3 with \(modules.joined(separator: ", ")) (pip install \(modules.joined(separator: " "))): "
            + (r?.err.split(separator: "\n").last.map(String.init) ?? "python3 is missing")
        print("skipping: \(why)")
        throw XCTSkip(why)
    }
}

/// A fresh temporary folder removed when the test ends.
func temporaryFolder(_ test: XCTestCase, _ label: String) throws -> String {
    let dir = NSTemporaryDirectory() + "lucid-\(label)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
    return dir
}
