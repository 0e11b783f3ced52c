import Foundation

/// Where plans measured on this machine are kept between processes ("wisdom", as FFTW calls it):
/// FFTW's plans (LucidOptics) and the convolution planner's choices (`ConvPlanner`).
///
/// Each file is named after, and begins with a header line naming, the CPU model, its vector ISA
/// and the Lucid version, so a file made on another machine or by another release is never
/// trusted: it is ignored with a one-line note on stderr, as is a corrupt one. Files are
/// replaced atomically (written beside, then renamed), so a reader never sees half a file.
///
/// The folder is `LUCID_WISDOM` when set; otherwise nil (plans live in memory only) until a
/// program opts in with `useDefaultFolder()`, as the `lucid` command does (`~/.cache/lucid`).
public enum Wisdom {

    nonisolated(unsafe) private static var chosenFolder: String? = {
        if let s = ProcessInfo.processInfo.environment["LUCID_WISDOM"], !s.isEmpty { return s }
        return nil
    }()
    private static let lock = NSLock()

    /// The folder of the wisdom files, or nil to keep plans in memory only.
    public static var folder: String? {
        get { lock.lock(); defer { lock.unlock() }; return chosenFolder }
        set { lock.lock(); chosenFolder = newValue; lock.unlock() }
    }

    /// `$XDG_CACHE_HOME/lucid`, else `~/.cache/lucid`.
    public static var defaultFolder: String {
        let env = ProcessInfo.processInfo.environment
        if let x = env["XDG_CACHE_HOME"], !x.isEmpty { return x + "/lucid" }
        return NSHomeDirectory() + "/.cache/lucid"
    }

    /// Keeps wisdom in `defaultFolder` unless `LUCID_WISDOM` already chose a folder.
    public static func useDefaultFolder() {
        lock.lock(); defer { lock.unlock() }
        if chosenFolder == nil { chosenFolder = defaultFolder }
    }

    /// The machine's CPU model as the OS names it, with family/model/stepping where known.
    public static let cpuModel: String = {
        #if os(Linux)
        if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) {
            var fields: [String: String] = [:]
            for line in text.split(separator: "\n") {
                if line.isEmpty { break }
                let parts = line.split(separator: ":", maxSplits: 1)
                guard parts.count == 2 else { continue }
                let key = parts[0].trimmingCharacters(in: .whitespaces)
                if fields[key] == nil { fields[key] = parts[1].trimmingCharacters(in: .whitespaces) }
            }
            let name = fields["model name"] ?? fields["Model"] ?? fields["CPU part"].map { "ARM part \($0)" } ?? "unknown CPU"
            if let f = fields["cpu family"], let m = fields["model"] {
                return "\(name) (family \(f) model \(m)\(fields["stepping"].map { " stepping \($0)" } ?? ""))"
            }
            return name
        }
        return "unknown CPU"
        #else
        var size = 0
        guard sysctlbyname("machdep.cpu.brand_string", nil, &size, nil, 0) == 0, size > 0 else { return "unknown CPU" }
        var bytes = [CChar](repeating: 0, count: size)
        guard sysctlbyname("machdep.cpu.brand_string", &bytes, &size, nil, 0) == 0 else { return "unknown CPU" }
        return String(cString: bytes)
        #endif
    }()

    /// The widest vector ISA of this CPU that Lucid's kernels use: `avx512`, `avx2`, `neon` or `scalar`.
    public static let isa: String = {
        #if arch(arm64)
        return "neon"
        #elseif arch(x86_64) && os(Linux)
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return "scalar" }
        let flags = Set(line.split(separator: " ").map(String.init))
        if flags.contains("avx512f") { return "avx512" }
        if flags.contains("avx2") && flags.contains("fma") { return "avx2" }
        return "scalar"
        #elseif arch(x86_64)
        var size = 0
        guard sysctlbyname("machdep.cpu.leaf7_features", nil, &size, nil, 0) == 0, size > 0 else { return "scalar" }
        var bytes = [CChar](repeating: 0, count: size)
        guard sysctlbyname("machdep.cpu.leaf7_features", &bytes, &size, nil, 0) == 0 else { return "scalar" }
        let leaf7 = String(cString: bytes)
        return leaf7.contains("AVX512F") ? "avx512" : leaf7.contains("AVX2") ? "avx2" : "scalar"
        #else
        return "scalar"
        #endif
    }()

    /// The header line of a wisdom file of `kind` (`fftw`, `conv`) made on this machine.
    public static func header(kind: String) -> String {
        "lucid-wisdom \(kind) lucid=\(lucidVersion) isa=\(isa) cpu=\(cpuModel)"
    }

    /// The file for wisdom of `kind` in `folder`: one per kind, CPU model and Lucid version.
    public static func path(kind: String, in folder: String) -> String {
        let tag = "\(cpuModel)-\(isa)-\(lucidVersion)".map { $0.isLetter || $0.isNumber || $0 == "." ? $0 : "-" }
        var name = String(tag)
        while name.contains("--") { name = name.replacingOccurrences(of: "--", with: "-") }
        return folder + "/\(kind)-\(name).wisdom"
    }

    /// The body of this machine's wisdom file of `kind` in `folder` (nil when there is none).
    /// A file whose header names another machine or release, or that cannot be read as text,
    /// is ignored with a note on stderr.
    public static func load(kind: String, from folder: String? = Wisdom.folder) -> String? {
        guard let folder else { return nil }
        let file = path(kind: kind, in: folder)
        guard FileManager.default.fileExists(atPath: file) else { return nil }
        guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
            note("ignoring unreadable wisdom file \(file)")
            return nil
        }
        let expected = header(kind: kind)
        guard let newline = text.firstIndex(of: "\n"), text[..<newline] == expected else {
            let first = text.prefix { $0 != "\n" }.prefix(120)
            note("ignoring wisdom file \(file): its header '\(first)' is not '\(expected)' (another machine, release or a corrupt file)")
            return nil
        }
        return String(text[text.index(after: newline)...])
    }

    /// Replaces this machine's wisdom file of `kind` in `folder` with `body` (atomically); a
    /// folder that cannot be written gets a note, and the plans stay in memory.
    public static func save(kind: String, body: String, to folder: String? = Wisdom.folder) {
        guard let folder else { return }
        let file = path(kind: kind, in: folder)
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try AtomicFile.write(Data((header(kind: kind) + "\n" + body).utf8), to: file)
        } catch {
            note("cannot write wisdom file \(file) (\(error)); plans are kept for this run only")
        }
    }

    /// Where notes go: one line on stderr, prefixed `lucid: note:` (tests collect them).
    nonisolated(unsafe) public static var noteHandler: (String) -> Void = { message in
        FileHandle.standardError.write(Data("lucid: note: \(message)\n".utf8))
    }

    /// Reports `message` (a one-line note) through `noteHandler`.
    public static func note(_ message: String) { noteHandler(message) }
}
