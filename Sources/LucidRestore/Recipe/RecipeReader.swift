import Foundation
import Yams

/// Builds recipe errors that name the file, the key path, the line and any `--set` that supplied the value.
public struct RecipeContext {
    public let file: String
    /// Overrides applied to the tree, in order: key path and the `key=value` text as typed.
    var overrides: [(path: [String], text: String)] = []

    init(file: String) { self.file = file }

    public func error(_ path: [String], _ message: String, at node: Node? = nil, line: Int? = nil) -> RecipeError {
        let override = overrides.last(where: { path.starts(with: $0.path) })?.text
        return RecipeError(file: file, path: path.joined(separator: "."), message: message,
                           line: override == nil ? (line ?? node?.mark?.line) : nil, override: override)
    }

    /// `<value> is not allowed (<what is allowed>)`.
    public func notAllowed(_ path: [String], _ node: Node, _ allowed: String) -> RecipeError {
        error(path, "\(Self.render(node)) is not allowed (\(allowed))", at: node)
    }

    /// A node as the user wrote it, shortened for one-line messages.
    public static func render(_ node: Node) -> String {
        let text: String
        switch node {
        case .scalar(let s):
            switch s.style {
            case .singleQuoted, .doubleQuoted: text = "\"" + s.string + "\""
            default: text = s.string.isEmpty ? "an empty value" : s.string
            }
        case .sequence(let seq): text = "[" + seq.map(render).joined(separator: ", ") + "]"
        case .mapping(let map):
            text = "{" + map.map { render($0.key) + ": " + render($0.value) }.joined(separator: ", ") + "}"
        }
        return text.count > 60 ? String(text.prefix(57)) + "…" : text
    }

    /// The text of an unquoted scalar (numbers and booleans must not be quoted).
    public static func plain(_ node: Node) -> String? {
        guard case .scalar(let s) = node, s.style == .plain || s.style == .any else { return nil }
        return s.string
    }

    public static func isNull(_ node: Node) -> Bool {
        guard let text = plain(node) else { return false }
        return text.isEmpty || text == "~" || text == "null" || text == "Null" || text == "NULL"
    }

    public static func int(_ node: Node) -> Int? {
        plain(node).flatMap { Int($0.replacingOccurrences(of: "_", with: "")) }
    }

    public static func double(_ node: Node) -> Double? {
        guard let text = plain(node), let d = Double(text.replacingOccurrences(of: "_", with: "")),
              d.isFinite else { return nil }
        return d
    }
}

/// One mapping of the recipe: checks its keys up front, then reads typed values with defaults.
public struct MapReader {
    public let context: RecipeContext
    public let path: [String]
    /// The mapping node itself (nil when the section is absent), for the line of missing keys.
    public let node: Node?
    /// Key → (key node, value node), nulls already dropped.
    public private(set) var entries: [(key: String, keyNode: Node, value: Node)] = []

    /// Reads `node` as a mapping whose keys must be in `allowed` (any key when nil).
    /// An absent or null section reads as empty. `what` describes the section for type errors.
    public init(_ node: Node?, path: [String], allowed: [String]?, what: String, context: RecipeContext) throws {
        self.context = context
        self.path = path
        self.node = node
        guard let node, !RecipeContext.isNull(node) else { return }
        guard case .mapping(let mapping) = node else {
            throw context.notAllowed(path, node, what)
        }
        var seen: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard case .scalar(let keyScalar) = keyNode else {
                throw context.error(path, "\(RecipeContext.render(keyNode)) is not allowed as a key (keys are names)",
                                    at: keyNode)
            }
            let key = keyScalar.string
            if let first = seen[key] {
                let where_ = first.mark.map { " (first given at line \($0.line))" } ?? ""
                throw context.error(path + [key], "duplicate key\(where_)", at: keyNode)
            }
            seen[key] = keyNode
            if let allowed, !allowed.contains(key) {
                throw context.error(path + [key], "unknown key (allowed: \(allowed.joined(separator: ", ")))",
                                    at: keyNode)
            }
            if !RecipeContext.isNull(value) { entries.append((key, keyNode, value)) }
        }
    }

    /// The value under `key`, nil when absent or null.
    public func value(_ key: String) -> Node? { entries.first(where: { $0.key == key })?.value }

    public func has(_ key: String) -> Bool { value(key) != nil }

    /// The line of `key` (or of this section when the key is absent).
    public func line(_ key: String) -> Int? {
        entries.first(where: { $0.key == key })?.keyNode.mark?.line ?? node?.mark?.line
    }

    /// An error about `key` of this section, pointing at its line.
    public func error(_ key: String, _ message: String) -> RecipeError {
        context.error(path + [key], message, line: line(key))
    }

    /// `path.key: missing (…)`.
    public func missing(_ key: String, _ explanation: String) -> RecipeError {
        context.error(path + [key], "missing (\(explanation))", line: node?.mark?.line)
    }

    public func int(_ key: String, default fallback: Int, in range: ClosedRange<Int>, odd: Bool = false,
             describe: String? = nil) throws -> Int {
        guard let node = value(key) else { return fallback }
        let what = describe ?? "\(odd ? "an odd integer" : "an integer") from \(range.lowerBound) to \(range.upperBound)"
        guard let v = RecipeContext.int(node), range.contains(v), !odd || v % 2 == 1 else {
            throw context.notAllowed(path + [key], node, what)
        }
        return v
    }

    /// A finite number; `check` says whether it is in range, `describe` what is allowed.
    public func double(_ key: String, default fallback: Double, describe: String,
                _ check: (Double) -> Bool) throws -> Double {
        guard let node = value(key) else { return fallback }
        guard let v = RecipeContext.double(node), check(v) else {
            throw context.notAllowed(path + [key], node, describe)
        }
        return v
    }

    public func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let node = value(key) else { return fallback }
        switch RecipeContext.plain(node)?.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw context.notAllowed(path + [key], node, "true or false")
        }
    }

    /// One of the enum's raw values (restricted to `choices` when given).
    public func choice<E: RawRepresentable & CaseIterable>(_ key: String, default fallback: E?, among choices: [E]? = nil)
        throws -> E? where E.RawValue == String {
        guard let node = value(key) else { return fallback }
        return try MapReader.choice(node, path: path + [key], among: choices ?? Array(E.allCases), context: context)
    }

    public static func choice<E: RawRepresentable>(_ node: Node, path: [String], among choices: [E],
                                            context: RecipeContext) throws -> E where E.RawValue == String {
        let names = choices.map(\.rawValue)
        guard case .scalar(let s) = node, let v = E(rawValue: s.string), names.contains(s.string) else {
            throw context.notAllowed(path, node, "one of \(names.joined(separator: ", "))")
        }
        return v
    }

    /// A file name or glob pattern (any scalar; not a list or map).
    public func string(_ key: String, describe: String = "a file name or pattern") throws -> String? {
        guard let node = value(key) else { return nil }
        guard case .scalar(let s) = node, !s.string.isEmpty else {
            throw context.notAllowed(path + [key], node, describe)
        }
        return s.string
    }

    /// A list of integers in `range` (a single integer is accepted as a list of one).
    public func intList(_ key: String, in range: ClosedRange<Int>, describe: String) throws -> [Int]? {
        guard let node = value(key) else { return nil }
        let items: [Node]
        switch node {
        case .sequence(let seq): items = Array(seq)
        case .scalar: items = [node]
        case .mapping: throw context.notAllowed(path + [key], node, describe)
        }
        var out: [Int] = []
        for item in items {
            guard let v = RecipeContext.int(item), range.contains(v) else {
                throw context.notAllowed(path + [key], node, describe)
            }
            out.append(v)
        }
        guard !out.isEmpty else { throw context.notAllowed(path + [key], node, describe) }
        return out
    }

    /// A nested section under `key`.
    public func section(_ key: String, allowed: [String]?, what: String) throws -> MapReader {
        try MapReader(value(key), path: path + [key], allowed: allowed, what: what, context: context)
    }
}
