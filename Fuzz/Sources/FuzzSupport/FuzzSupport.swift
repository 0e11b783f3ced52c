import Foundation

/// What every harness shares: a private scratch folder in memory, the memory cap, and the
/// property that every error is one line.
public enum Fuzz {
    /// A folder of this process under /dev/shm (or the temporary folder), created once.
    public static let scratch: String = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let dir = base + "/lucid-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // Declared sizes above 256 MiB are refused as if memory were short: libFuzzer's RSS
        // limit (2 GiB) would otherwise report a legitimate large allocation as a crash.
        setenv("LUCID_MEMORY_LIMIT_MB", "256", 1)
        atexit { try? FileManager.default.removeItem(atPath: Fuzz.scratch) }
        return dir
    }()

    /// Writes the input to `name` in the scratch folder and returns its path.
    public static func file(_ data: UnsafePointer<UInt8>, _ size: Int, name: String) -> String {
        let path = scratch + "/" + name
        FileManager.default.createFile(atPath: path, contents: Data(bytes: data, count: size))
        return path
    }

    /// Traps (a finding) unless the error's message is one non-empty line.
    public static func checkMessage(_ error: Error) {
        let message = "\(error)"
        guard !message.isEmpty, !message.contains(where: \.isNewline) else {
            fatalError("error message is not one line: \(message.debugDescription)")
        }
    }
}
