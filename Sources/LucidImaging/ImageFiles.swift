import Foundation

/// Resolves image inputs given as files, folders or glob patterns into sorted file lists.
public enum ImageFiles {
    /// File extensions a folder is scanned for.
    public static let tiffExtensions: Set<String> = ["tif", "tiff"]

    /// Expands each input in order: a file (or an OME-Zarr folder) is kept, a folder gives its `.tif`/`.tiff` files, a
    /// pattern (`*`, `?`, `[…]`, and `**` for any depth of folders, e.g. `data/**/*.tif`) gives
    /// the files it matches. Each input's files are sorted; duplicates are dropped.
    /// Throws `ImagingError.noMatch` naming the input that gave nothing.
    public static func resolve(_ inputs: [String], extensions: Set<String> = tiffExtensions) throws -> [String] {
        var seen = Set<String>()
        var out: [String] = []
        for input in inputs {
            for f in try resolve(input, extensions: extensions) where seen.insert(f).inserted { out.append(f) }
        }
        return out
    }

    /// Files for one input (see `resolve(_:extensions:)`).
    public static func resolve(_ input: String, extensions: Set<String> = tiffExtensions) throws -> [String] {
        if isPattern(input) {
            let files = glob(input)
            guard !files.isEmpty else { throw ImagingError.noMatch(pattern: input, reason: "the pattern matches no file") }
            return files
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: input, isDirectory: &isDir) else {
            throw ImagingError.noMatch(pattern: input, reason: "no such file or folder")
        }
        guard isDir.boolValue, !OMEZarr.isGroup(input) else { return [input] }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: input)) ?? []
        let files = entries.filter { name in
            !name.hasPrefix(".") && extensions.contains((name as NSString).pathExtension.lowercased())
                && isRegularFile(join(input, name))
        }.sorted().map { join(input, $0) }
        guard !files.isEmpty else {
            let list = extensions.sorted().map { "." + $0 }.joined(separator: "/")
            throw ImagingError.noMatch(pattern: input, reason: "the folder holds no \(list) files")
        }
        return files
    }

    /// Pairs source and target files by file name (e.g. `low/a.tif` with `high/a.tif`).
    /// Throws naming the first source without a target (and vice versa).
    public static func pairs(sources: [String], targets: [String]) throws -> [(source: String, target: String)] {
        var byName: [String: String] = [:]
        for t in targets { byName[(t as NSString).lastPathComponent] = t }
        var used = Set<String>()
        var out: [(String, String)] = []
        for s in sources {
            let name = (s as NSString).lastPathComponent
            guard let t = byName[name] else {
                throw ImagingError.noMatch(pattern: s, reason: "no target file named '\(name)'")
            }
            used.insert(name)
            out.append((s, t))
        }
        if let extra = targets.first(where: { !used.contains(($0 as NSString).lastPathComponent) }) {
            throw ImagingError.noMatch(pattern: extra, reason: "no source file named '\((extra as NSString).lastPathComponent)'")
        }
        return out
    }

    /// True when `s` contains glob characters.
    public static func isPattern(_ s: String) -> Bool {
        s.contains { $0 == "*" || $0 == "?" || $0 == "[" }
    }

    /// Regular files matching `pattern`, sorted. `**` matches zero or more folders; hidden
    /// entries match only patterns that start with a dot; symbolic links to folders are not
    /// followed by `**`.
    public static func glob(_ pattern: String) -> [String] {
        let absolute = pattern.hasPrefix("/")
        let parts = pattern.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        var found = Set<String>()
        func walk(_ prefix: String, _ i: Int) {
            if i == parts.count {
                if isRegularFile(prefix) { found.insert(prefix) }
                return
            }
            let part = parts[i]
            if part == "**" {
                walk(prefix, i + 1)
                for name in entries(prefix) where !name.hasPrefix(".") {
                    let path = join(prefix, name)
                    if isDirectoryNoFollow(path) { walk(path, i) }
                }
            } else if isPattern(part) {
                for name in entries(prefix) where fnmatch(part, name, FNM_PERIOD) == 0 {
                    walk(join(prefix, name), i + 1)
                }
            } else {
                walk(join(prefix, part), i + 1)
            }
        }
        walk(absolute ? "/" : "", 0)
        return found.sorted()
    }

    private static func entries(_ dir: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir)) ?? []
    }

    private static func join(_ a: String, _ b: String) -> String {
        a.isEmpty ? b : a.hasSuffix("/") ? a + b : a + "/" + b
    }

    private static func isRegularFile(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && !isDir.boolValue
    }

    private static func isDirectoryNoFollow(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }
}
