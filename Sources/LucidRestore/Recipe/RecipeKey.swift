import Foundation
import Yams

/// What a key's reader knows besides its own section: the method (whose settings are read
/// first), for defaults and checks that depend on it.
public struct RecipeParseContext {
    /// The recipe's method with its settings.
    public var method: any RestorationMethod
}

/// One key of a recipe section whose settings are `S`: its name, what it allows, its default,
/// what it means, and how it is read from YAML into `S` and written back.
///
/// A section's key list is the one place a key is declared. It drives parsing (unknown keys
/// are refused; an absent key keeps the default already in `S`), the resolved recipe written
/// next to the weights, `lucid recipe --keys`, and the key table of `Recipes/README.md`.
public struct RecipeKey<S> {
    /// The key as written in YAML (`convs_per_level`).
    public let name: String
    /// What values are allowed, as error messages and the key table say it.
    public let allowed: String
    /// The default as the key table shows it; nil shows the section's default value.
    public let defaultText: String?
    /// What the key means, in one line.
    public let summary: String
    /// The rows of a nested mapping (such as `data.normalize`) for the key table, given a prefix
    /// and the section's defaults; nil for a plain key.
    let nestedRows: ((String, S?) -> [KeyRow])?
    let read: (inout S, MapReader, RecipeParseContext) throws -> Void
    let write: (S) -> RecipeValue?

    /// A key with its own reader and writer; `write` returns nil to leave the key out.
    public init(_ name: String, allowed: String, default defaultText: String? = nil, _ summary: String,
                read: @escaping (inout S, MapReader, RecipeParseContext) throws -> Void,
                write: @escaping (S) -> RecipeValue?) {
        self.init(name, allowed: allowed, default: defaultText, summary, nestedRows: nil, read: read, write: write)
    }

    init(_ name: String, allowed: String, default defaultText: String?, _ summary: String,
         nestedRows: ((String, S?) -> [KeyRow])?,
         read: @escaping (inout S, MapReader, RecipeParseContext) throws -> Void, write: @escaping (S) -> RecipeValue?) {
        self.name = name
        self.allowed = allowed
        self.defaultText = defaultText
        self.summary = summary
        self.nestedRows = nestedRows
        self.read = read
        self.write = write
    }

    /// An integer in `range` (odd when `odd`).
    public static func int(_ name: String, _ path: WritableKeyPath<S, Int>, in range: ClosedRange<Int>, odd: Bool = false,
                           describe: String? = nil, default shown: String? = nil, _ summary: String) -> RecipeKey {
        let allowed = describe ?? "\(odd ? "an odd integer" : "an integer") from \(range.lowerBound) to \(range.upperBound)"
        return RecipeKey(name, allowed: allowed, default: shown, summary,
                         read: { s, r, _ in
                             s[keyPath: path] = try r.int(name, default: s[keyPath: path], in: range, odd: odd, describe: describe)
                         },
                         write: { .int($0[keyPath: path]) })
    }

    /// A finite number for which `check` holds (`allowed` says which).
    public static func double(_ name: String, _ path: WritableKeyPath<S, Double>, allowed: String,
                              default shown: String? = nil, _ summary: String,
                              _ check: @escaping (Double) -> Bool) -> RecipeKey {
        RecipeKey(name, allowed: allowed, default: shown, summary,
                  read: { s, r, _ in s[keyPath: path] = try r.double(name, default: s[keyPath: path], describe: allowed, check) },
                  write: { .double($0[keyPath: path]) })
    }

    /// `true` or `false`.
    public static func bool(_ name: String, _ path: WritableKeyPath<S, Bool>, default shown: String? = nil,
                            _ summary: String) -> RecipeKey {
        RecipeKey(name, allowed: "true or false", default: shown, summary,
                  read: { s, r, _ in s[keyPath: path] = try r.bool(name, default: s[keyPath: path]) },
                  write: { .bool($0[keyPath: path]) })
    }

    /// One of an enum's raw values (of `among` when given).
    public static func choice<E: RawRepresentable & CaseIterable>(
        _ name: String, _ path: WritableKeyPath<S, E>, among choices: [E]? = nil, default shown: String? = nil,
        _ summary: String) -> RecipeKey where E.RawValue == String {
        let names = (choices ?? Array(E.allCases)).map(\.rawValue)
        return RecipeKey(name, allowed: "one of " + names.joined(separator: ", "), default: shown, summary,
                         read: { s, r, _ in s[keyPath: path] = try r.choice(name, default: s[keyPath: path], among: choices)! },
                         write: { .string($0[keyPath: path].rawValue) })
    }

    /// A nested mapping read with its own keys; `shorthand` reads a scalar written in its place
    /// (`normalize: none`, `early_stopping: 10`), given the scalar and the outer section.
    public static func section<T>(_ name: String, _ path: WritableKeyPath<S, T>, keys: [RecipeKey<T>], what: String,
                                  summary: String,
                                  shorthand: ((Node, MapReader, inout T) throws -> Void)? = nil,
                                  check: ((T, MapReader) throws -> Void)? = nil) -> RecipeKey {
        let allowed = keys.map(\.name)
        return RecipeKey(name, allowed: what, default: "", summary,
                         nestedRows: { prefix, defaults in
                             keys.flatMap { $0.rows(prefix: prefix + name + ".", defaults: defaults?[keyPath: path]) }
                         },
                         read: { s, r, context in
                             if let shorthand, let node = r.value(name), case .scalar = node {
                                 try shorthand(node, r, &s[keyPath: path])
                                 return
                             }
                             let inner = try r.section(name, allowed: allowed, what: what)
                             for key in keys { try key.read(&s[keyPath: path], inner, context) }
                             try check?(s[keyPath: path], inner)
                         },
                         write: { s in .map(keys.compactMap { key in key.write(s[keyPath: path]).map { (key.name, $0) } }) })
    }

    /// The key-table rows of this key (and of its nested keys), names prefixed by `prefix`;
    /// defaults shown from `defaults` unless the key gives its own text.
    func rows(prefix: String, defaults: S?) -> [KeyRow] {
        if let nestedRows { return nestedRows(prefix, defaults) }
        let shown = defaultText ?? defaults.flatMap(write).map { $0.flowText() } ?? ""
        return [KeyRow(key: prefix + name, allowed: allowed, defaultText: shown, summary: summary)]
    }
}

/// A section's keys read in order into `S`, starting from `initial` (the defaults), then `check`.
struct SectionReader<S> {
    let keys: [RecipeKey<S>]

    var names: [String] { keys.map(\.name) }

    func read(_ initial: S, _ reader: MapReader, _ context: RecipeParseContext) throws -> S {
        var s = initial
        for key in keys { try key.read(&s, reader, context) }
        return s
    }

    /// The section as an ordered value tree, in its keys' order.
    func value(_ s: S) -> RecipeValue {
        .map(keys.compactMap { key in key.write(s).map { (key.name, $0) } })
    }
}

/// One row of the generated key table.
public struct KeyRow: Equatable, Sendable {
    /// The dotted key path (`data.normalize.mode`).
    public var key: String
    public var allowed: String
    public var defaultText: String
    public var summary: String
}
