import Foundation

/// A file that could not be written; the message names the file and the system's reason.
public struct FileWriteError: Error, CustomStringConvertible, Equatable, Sendable {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)".escapingControlCharacters }
}

/// Crash-safe file writing: the bytes go to a temporary file next to the destination, which is
/// flushed (`fsync`), renamed over the destination, and the folder flushed. A failure at any
/// point (a full disk, a killed process) leaves the previous file untouched and no temporary
/// file behind (a killed process may leave a `.NAME.tmp-…` file, which never has the final name).
/// ```swift
/// try AtomicFile.write(Data("hello".utf8), to: "out/greeting.txt")
/// try AtomicFile.write(to: "out/big.bin") { file in try file.write(header); try file.write(body) }
/// ```
public struct AtomicFile {
    private let fd: Int32
    private let path: String

    /// Writes `data` as the whole content of `path`.
    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { file in try data.withUnsafeBytes { try file.write($0) } }
    }

    /// Creates `path` from the bytes `body` writes through the handle it receives.
    public static func write(to path: String, _ body: (AtomicFile) throws -> Void) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let tmp = joinPath(dir, "." + (path as NSString).lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileWriteError(path: path, reason: "cannot create a temporary file: \(systemError())") }
        var open = true
        defer {
            if open { close(fd) }
            unlink(tmp)    // a no-op after the rename
        }
        try body(AtomicFile(fd: fd, path: path))
        guard fsync(fd) == 0 else { throw FileWriteError(path: path, reason: "fsync failed: \(systemError())") }
        open = false
        guard close(fd) == 0 else { throw FileWriteError(path: path, reason: "close failed: \(systemError())") }
        guard rename(tmp, path) == 0 else {
            throw FileWriteError(path: path, reason: "cannot rename the temporary file into place: \(systemError())")
        }
        syncFolder(dir)
    }

    /// Appends `bytes` to the file being written.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let w = Foundation.write(fd, base + done, bytes.count - done)
            if w < 0 {
                if errno == EINTR { continue }
                throw FileWriteError(path: path, reason: "write failed: \(systemError())")
            }
            done += w
        }
    }

    /// Flushes a folder's entries (after a rename or link inside it) to disk.
    public static func syncFolder(_ dir: String) {
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_CLOEXEC)
        if fd >= 0 { _ = fsync(fd); close(fd) }
    }
}

/// `a/b`, without doubling a trailing slash of `a`; `b` alone when `a` is empty.
public func joinPath(_ a: String, _ b: String) -> String {
    a.isEmpty ? b : a.hasSuffix("/") ? a + b : a + "/" + b
}

/// The C library's message for the current `errno`.
public func systemError() -> String { String(cString: strerror(errno)) }
