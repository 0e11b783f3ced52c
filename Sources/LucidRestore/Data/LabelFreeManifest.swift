import Foundation

/// The CSV manifest of a label-free recipe (`data.manifest`), as pytorch_fnet users keep it.
///
/// The first line names the columns (case and surrounding spaces are ignored); each further
/// line is one image pair:
///
/// | column | required | meaning |
/// |--------|----------|---------|
/// | `signal` (or `input`) | yes | the transmitted-light image (TIFF) |
/// | `target` | yes | the fluorescence image (TIFF) of the same scene and shape |
/// | `target2`, `target3`, … | no | more targets: more output channels of one model |
/// | `signal_channel`, `target_channel`, `target2_channel`, … | no | channels of a multi-channel file to use: `1`, or several as `0;2` (empty: all channels) |
/// | `split` | no | `train`, `test` (never trained on) or `val` / `validation` (the validation set) |
///
/// Paths are relative to the CSV's folder unless absolute. Fields may be quoted (`"a,b.tif"`,
/// `""` for a quote). Other columns are ignored, unless their names start like these columns
/// (`target_chanel` is a typo, not a column of its own). Every error names the line it concerns.
/// ```
/// signal,target,target_channel,split
/// brightfield/a.tif,fluo/a.tif,0;2,train
/// brightfield/b.tif,fluo/b.tif,0;2,val
/// ```
public struct LabelFreeManifest: Equatable, Sendable {
    /// What a row is used for.
    public enum Split: String, Sendable {
        case train, test, validation
    }

    /// One image of a row: its file and the channels to take from it (nil: all).
    public struct ImageReference: Equatable, Sendable {
        public var path: String
        public var channels: [Int]?
    }

    /// One image pair.
    public struct Row: Equatable, Sendable {
        /// 1-based line of the CSV file.
        public var line: Int
        public var signal: ImageReference
        /// One reference per target column, in column order (`target`, `target2`, …).
        public var targets: [ImageReference]
        public var split: Split
    }

    /// The CSV file as given.
    public var file: String
    /// Names of the target columns, in order.
    public var targetColumns: [String]
    /// Every row, in file order (blank lines skipped).
    public var rows: [Row]

    /// Rows of one split.
    public func rows(_ split: Split) -> [Row] { rows.filter { $0.split == split } }

    /// Reads and checks the manifest at `path`.
    public static func read(_ path: String) throws -> LabelFreeManifest {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw TrainingDataError(path: path, reason: "no such manifest file (data.manifest: a CSV with columns signal and target)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrainingDataError(path: path, reason: "cannot read the manifest file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw TrainingDataError(path: path, reason: "the manifest is not UTF-8 text")
        }
        return try parse(text, file: path, directory: (path as NSString).deletingLastPathComponent)
    }

    /// Parses manifest text; `file` names it in errors, relative paths are joined to `directory`.
    public static func parse(_ text: String, file: String, directory: String) throws -> LabelFreeManifest {
        func error(_ line: Int, _ reason: String) -> TrainingDataError {
            TrainingDataError(path: "\(file) line \(line)", reason: reason)
        }
        let records = try csvRecords(text) { line, reason in error(line, reason) }
        guard let header = records.first else {
            throw error(1, "the manifest is empty (it needs a header line naming the columns signal and target, then one line per image pair)")
        }
        let names = header.fields.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        var column: [String: Int] = [:]
        for (i, name) in names.enumerated() {
            if let first = column[name] {
                throw error(header.line, "column '\(name)' appears twice (columns \(first + 1) and \(i + 1))")
            }
            column[name] = i
        }
        if column["signal"] != nil && column["input"] != nil {
            throw error(header.line, "both a signal and an input column (input is another name for signal; keep one)")
        }
        let signalName = column["input"] != nil ? "input" : "signal"
        let numbered = names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix("target"), let k = Int(name.dropFirst(6)), k >= 2 else { return nil }
            return (k, name)
        }.sorted { $0.0 < $1.0 }
        for (index, entry) in numbered.enumerated() where entry.0 != index + 2 {
            throw error(header.line, "column \(entry.1) without target\(index + 2) (number extra targets target2, target3, …)")
        }
        let targetNames = ["target"] + numbered.map(\.1)
        let known = Set([signalName, "split"] + ([signalName] + targetNames).map { $0 + "_channel" } + targetNames)
        if let odd = names.first(where: { !known.contains($0) && ($0.hasPrefix("signal") || $0.hasPrefix("input") || $0.hasPrefix("target")) }) {
            throw error(header.line, "unknown column '\(odd)' (columns: \(signalName), \(signalName)_channel, target, target_channel, target2 …, split)")
        }
        for required in [signalName, "target"] where column[required] == nil {
            let present = names.isEmpty || names == [""] ? "none" : names.joined(separator: ", ")
            throw error(header.line, "no \(required) column (columns found: \(present); a manifest needs signal and target)")
        }

        func path(_ field: String) -> String {
            field.hasPrefix("/") || directory.isEmpty ? field : (directory as NSString).appendingPathComponent(field)
        }
        func channels(_ field: String, _ name: String, _ line: Int) throws -> [Int]? {
            let text = field.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { return nil }
            let parts = text.split(separator: ";", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            var out: [Int] = []
            for part in parts {
                guard let c = Int(part), c >= 0 else {
                    throw error(line, "\(name)_channel '\(text)' is not allowed (a channel number from 0, or several separated by ';' such as 0;2)")
                }
                out.append(c)
            }
            if Set(out).count != out.count {
                throw error(line, "\(name)_channel '\(text)' names a channel twice")
            }
            return out
        }

        var rows: [Row] = []
        for record in records.dropFirst() {
            let line = record.line
            if record.fields.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) { continue }
            guard record.fields.count == names.count else {
                throw error(line, "\(record.fields.count) field\(record.fields.count == 1 ? "" : "s"), but the header (line \(header.line)) has \(names.count) columns")
            }
            func field(_ name: String) -> String {
                column[name].map { record.fields[$0].trimmingCharacters(in: .whitespaces) } ?? ""
            }
            func reference(_ name: String, role: String) throws -> ImageReference {
                let value = field(name)
                guard !value.isEmpty else { throw error(line, "no \(role) file (the \(name) column is empty)") }
                return ImageReference(path: path(value), channels: try channels(field(name + "_channel"), name, line))
            }
            let signal = try reference(signalName, role: "signal")
            let targets = try targetNames.map { try reference($0, role: "target") }
            var split = Split.train
            if column["split"] != nil {
                switch field("split").lowercased() {
                case "train", "training": split = .train
                case "test", "testing": split = .test
                case "val", "valid", "validation": split = .validation
                case "": throw error(line, "the split is empty (train, test, val or validation)")
                case let other: throw error(line, "split '\(other)' is not allowed (train, test, val or validation)")
                }
            }
            rows.append(Row(line: line, signal: signal, targets: targets, split: split))
        }
        guard !rows.isEmpty else {
            throw error(header.line + 1, "the manifest has a header but no image pairs (one line per pair after the header)")
        }
        return LabelFreeManifest(file: file, targetColumns: targetNames, rows: rows)
    }

    /// CSV records (RFC 4180: commas, double-quoted fields with `""` escapes, LF or CRLF line ends)
    /// with the 1-based line each starts on.
    static func csvRecords(_ text: String, error: (Int, String) -> TrainingDataError) throws -> [(line: Int, fields: [String])] {
        var records: [(line: Int, fields: [String])] = []
        var fields: [String] = [], field = ""
        var inQuotes = false, afterQuote = false, line = 1, recordLine = 1, any = false
        var characters = Array(text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text)
        if characters.last != "\n" { characters.append("\n") }
        var i = 0
        while i < characters.count {
            let ch = characters[i]
            i += 1
            if inQuotes {
                if ch == "\"" {
                    if i < characters.count && characters[i] == "\"" { field.append("\""); i += 1 } else { inQuotes = false; afterQuote = true }
                } else {
                    if ch == "\n" || ch == "\r\n" { line += 1 }
                    field.append(ch)
                }
                continue
            }
            switch ch {
            case "\"":
                guard field.trimmingCharacters(in: .whitespaces).isEmpty, !afterQuote else {
                    throw error(line, "a quote inside an unquoted field (quote the whole field: \"…\")")
                }
                field = ""
                inQuotes = true
                any = true
            case ",":
                fields.append(field)
                field = ""
                afterQuote = false
                any = true
            case "\n", "\r\n", "\r":
                if any || !field.isEmpty { fields.append(field) }
                if !fields.isEmpty { records.append((recordLine, fields)) }
                fields = []
                field = ""
                afterQuote = false
                any = false
                line += 1
                recordLine = line
            default:
                if afterQuote && ch != " " && ch != "\t" {
                    throw error(line, "text after a closing quote (a quoted field ends at its quote)")
                }
                field.append(ch)
            }
        }
        if inQuotes { throw error(recordLine, "a quoted field is not closed") }
        return records
    }
}
