import Foundation
import XCTest

/// A fresh temporary folder removed when `test` ends.
public func temporaryFolder(_ test: XCTestCase) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lucid-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    return dir
}

/// What a finished process wrote and how it ended.
public struct ProcessOutput {
    public var status: Int32
    public var out: String
    public var err: String
}

/// Runs `executable` with `arguments` (in `directory` when given, with `environment` added) to the end.
public func runProcess(_ executable: URL, _ arguments: [String], in directory: URL? = nil,
                       environment: [String: String] = [:]) throws -> ProcessOutput {
    let p = Process()
    p.executableURL = executable
    p.arguments = arguments
    if let directory { p.currentDirectoryURL = directory }
    if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    // Read stderr concurrently so neither pipe can fill up and block the child.
    let errData = Collected()
    let group = DispatchGroup()
    DispatchQueue.global().async(group: group) { errData.data = err.fileHandleForReading.readDataToEndOfFile() }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    p.waitUntilExit()
    return ProcessOutput(status: p.terminationStatus, out: String(decoding: outData, as: UTF8.self),
                         err: String(decoding: errData.data, as: UTF8.self))
}

/// Bytes a reader thread collects; read only after it has finished.
private final class Collected: @unchecked Sendable { var data = Data() }

/// Runs `python3 -c script arguments…`.
public func runPython(_ script: String, _ arguments: [String] = []) throws -> ProcessOutput {
    try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", script] + arguments)
}

/// The standard output of `python3 -c script`; throws with its stderr when it fails.
@discardableResult
public func python(_ script: String) throws -> String {
    let r = try runPython(script)
    guard r.status == 0 else { throw PythonError(message: r.err) }
    return r.out
}

/// A Python script that failed; the message is its stderr.
public struct PythonError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { "python3: \(message)" }
}

/// Skips the test, printing why, unless `python3` can `import modules` (e.g. "numpy, tifffile").
public func requirePython(_ modules: String) throws {
    let r = try? runPython("import \(modules)")
    guard let r, r.status == 0 else {
        let why = "python3 with \(modules) is not importable here (\(r?.err.split(separator: "\n").last ?? "python3 missing"))"
        print("skipping: \(why)")
        throw XCTSkip(why)
    }
}

/// The built `lucid` binary, next to the test bundle in the build folder.
public var lucidBinary: URL? {
    var dir = URL(fileURLWithPath: CommandLine.arguments.first { $0.contains(".xctest") } ?? Bundle.main.bundlePath)
    while dir.path != "/" {
        dir.deleteLastPathComponent()
        let candidate = dir.appendingPathComponent("lucid")
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDir), !isDir.boolValue { return candidate }
    }
    return nil
}

/// Runs `lucid arguments…` in `directory`; skips the test when the binary is not built. Its
/// measured plans (wisdom) go to `directory/wisdom`, never to the user's ~/.cache.
public func runLucid(_ arguments: [String], in directory: URL) throws -> ProcessOutput {
    guard let binary = lucidBinary else { throw XCTSkip("the lucid binary is not built next to the tests") }
    return try runProcess(binary, arguments, in: directory, environment: ["LUCID_WISDOM": directory.path + "/wisdom"])
}
