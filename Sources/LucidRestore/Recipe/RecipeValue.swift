import Foundation
import LucidCore

/// An ordered, typed value tree: the resolved recipe before it is written as YAML or JSON.
public indirect enum RecipeValue: Equatable, Sendable {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    case list([RecipeValue])
    /// Keys keep their order, so the written file reads like the schema.
    case map([(String, RecipeValue)])

    public static func == (a: RecipeValue, b: RecipeValue) -> Bool {
        switch (a, b) {
        case let (.string(x), .string(y)): return x == y
        case let (.int(x), .int(y)): return x == y
        case let (.double(x), .double(y)): return x == y
        case let (.bool(x), .bool(y)): return x == y
        case let (.list(x), .list(y)): return x == y
        case let (.map(x), .map(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// Block-style YAML (lists of scalars in flow style), ending with a newline.
    public func yaml() -> String {
        var out = ""
        switch self {
        case .map(let pairs): Self.writeYAML(pairs, indent: 0, into: &out)
        default: out = scalarText(json: false) + "\n"
        }
        return out
    }

    /// Pretty-printed JSON with keys in schema order, ending with a newline.
    public func json() -> String {
        var out = ""
        writeJSON(indent: 0, into: &out)
        return out + "\n"
    }

    private static func writeYAML(_ pairs: [(String, RecipeValue)], indent: Int, into out: inout String) {
        let pad = String(repeating: " ", count: indent)
        for (key, value) in pairs {
            if case .map(let inner) = value, !inner.isEmpty {
                out += pad + quotedIfNeeded(key) + ":\n"
                writeYAML(inner, indent: indent + 2, into: &out)
            } else {
                out += pad + quotedIfNeeded(key) + ": " + value.flowText() + "\n"
            }
        }
    }

    /// The value on one line (flow style for lists and maps).
    func flowText() -> String {
        switch self {
        case .list(let items): return "[" + items.map { $0.flowText() }.joined(separator: ", ") + "]"
        case .map(let pairs):
            return "{" + pairs.map { Self.quotedIfNeeded($0.0) + ": " + $0.1.flowText() }
                .joined(separator: ", ") + "}"
        default: return scalarText(json: false)
        }
    }

    private func scalarText(json: Bool) -> String {
        switch self {
        case .string(let s): return json ? jsonQuoted(s) : Self.quotedIfNeeded(s)
        case .int(let i): return String(i)
        case .double(let d): return Self.number(d)
        case .bool(let b): return b ? "true" : "false"
        case .list, .map: return flowText()
        }
    }

    private func writeJSON(indent: Int, into out: inout String) {
        let pad = String(repeating: "  ", count: indent + 1)
        switch self {
        case .map(let pairs):
            if pairs.isEmpty { out += "{}"; return }
            out += "{\n"
            for (i, (key, value)) in pairs.enumerated() {
                out += pad + jsonQuoted(key) + ": "
                value.writeJSON(indent: indent + 1, into: &out)
                out += i + 1 < pairs.count ? ",\n" : "\n"
            }
            out += String(repeating: "  ", count: indent) + "}"
        case .list(let items):
            out += "[" + items.map { item -> String in
                var s = ""
                item.writeJSON(indent: indent + 1, into: &s)
                return s
            }.joined(separator: ", ") + "]"
        default:
            out += scalarText(json: true)
        }
    }

    /// A finite double written so that YAML and JSON read it back as a float (`20.0`, `0.0004`).
    static func number(_ d: Double) -> String {
        guard d.isFinite else { return d.isNaN ? ".nan" : (d > 0 ? ".inf" : "-.inf") }
        var s = "\(d)"
        if !s.contains(".") && !s.contains("e") { s += ".0" }
        if s.contains("e") && !s.contains(".") {
            // YAML 1.1 floats need a dot in the mantissa: 1e-05 → 1.0e-05.
            let parts = s.split(separator: "e", maxSplits: 1)
            s = parts[0] + ".0e" + parts[1]
        }
        return s
    }

    /// Plain when YAML would read the text back as the same string, double-quoted otherwise.
    static func quotedIfNeeded(_ s: String) -> String {
        let reserved: Set<String> = ["", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false",
                                     "False", "FALSE", "yes", "Yes", "YES", "no", "No", "NO", "on", "On",
                                     "ON", "off", "Off", "OFF", "y", "Y", "n", "N"]
        let first = s.unicodeScalars.first
        let special = "-?:,[]{}#&*!|>'\"%@`".unicodeScalars
        let looksNumeric = Double(s) != nil || Int(s) != nil || s.hasPrefix(".") || s.hasPrefix("0x")
        if reserved.contains(s) || looksNumeric || s.contains(": ") || s.contains(" #")
            || s.hasSuffix(":") || s.hasPrefix(" ") || s.hasSuffix(" ")
            || first.map({ special.contains($0) }) == true
            || s.unicodeScalars.contains(where: { ",[]{}".unicodeScalars.contains($0) })
            || s.unicodeScalars.contains(where: needsEscapeInJSONOrYAML) {
            return jsonQuoted(s)
        }
        return s
    }
}
