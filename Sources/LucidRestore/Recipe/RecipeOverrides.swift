import Foundation
import Yams

/// `--set key.path=value` overrides, applied to the YAML tree before validation.
enum RecipeOverrides {
    /// Applies each `key.path=value` in order. The value is parsed as a YAML scalar or flow
    /// collection (`[32, 64, 64]`, `{mode: none}`); text YAML cannot parse is taken as a string.
    static func apply(_ overrides: [String], to root: Node?, context: inout RecipeContext) throws -> Node? {
        guard !overrides.isEmpty else { return root }
        var tree = root ?? Node([(Node, Node)]())
        if RecipeContext.isNull(tree) { tree = Node([(Node, Node)]()) }
        for text in overrides {
            guard let eq = text.firstIndex(of: "=") else {
                throw RecipeError(file: context.file, path: "",
                                  message: "--set \(text): expected key.path=value")
            }
            let keyPath = String(text[..<eq])
            let valueText = String(text[text.index(after: eq)...])
            let path = keyPath.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard path.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" } })
            else {
                throw RecipeError(file: context.file, path: "",
                                  message: "--set \(text): '\(keyPath)' is not a key path (names joined by dots, e.g. model.depth)")
            }
            let value = try parseValue(valueText, override: text, file: context.file)
            tree = try set(value, at: path, prefix: [], in: tree, override: text, file: context.file)
            context.overrides.append((path, text))
        }
        return tree
    }

    private static func parseValue(_ text: String, override: String, file: String) throws -> Node {
        do {
            return try Yams.compose(yaml: text) ?? Node("", Tag(.null))
        } catch let error as YamlError {
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("[") || trimmed.hasPrefix("{") || trimmed.hasPrefix("\"") || trimmed.hasPrefix("'") {
                var e = syntaxError(error, file: file, what: "--set \(override): the value is not valid YAML")
                e.line = nil
                e.column = nil
                throw e
            }
            return Node(text, Tag(.str), .doubleQuoted)
        }
    }

    /// Sets `value` at `path` under `node`, creating missing (or null) sections on the way.
    private static func set(_ value: Node, at path: [String], prefix: [String], in node: Node,
                            override: String, file: String) throws -> Node {
        guard case .mapping(var mapping) = node else {
            throw RecipeError(file: file, path: prefix.joined(separator: "."), message: prefix.isEmpty
                ? "the recipe is not a mapping, so --set \(override) cannot set a key in it"
                : "holds a value, not a section, so --set \(override) cannot set a key inside it")
        }
        let key = path[0]
        let index = mapping.firstIndex(where: { $0.key.string == key })
        let newValue: Node
        if path.count == 1 {
            newValue = value
        } else {
            var child = index.map { mapping[$0].value } ?? Node([(Node, Node)]())
            if RecipeContext.isNull(child) { child = Node([(Node, Node)]()) }
            newValue = try set(value, at: Array(path.dropFirst()), prefix: prefix + [key], in: child,
                               override: override, file: file)
        }
        if let index {
            mapping[index] = (key: mapping[index].key, value: newValue)
            return .mapping(mapping)
        }
        return .mapping(Node.Mapping(Array(mapping).map { ($0.key, $0.value) } + [(Node(key), newValue)],
                                     mapping.tag, mapping.style, mapping.mark))
    }

    /// A YAML syntax error as a recipe error with its line and column.
    static func syntaxError(_ error: YamlError, file: String, what: String) -> RecipeError {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            var message = "\(what): \(problem)" + (context.map { " (\($0.text) at line \($0.mark.line))" } ?? "")
            if context?.text.contains("single document") == true {
                message = "\(what): a recipe is one YAML document, but a second one starts here"
            } else if problem.contains("alias") || context?.text.contains("alias") == true {
                message += "; quote values that start with *, e.g. '*.tif'"
            }
            return RecipeError(file: file, path: "", message: message, line: mark.line, column: mark.column)
        case let .reader(problem, _, _, _):
            return RecipeError(file: file, path: "", message: "\(what): \(problem)")
        default:
            return RecipeError(file: file, path: "", message: "\(what): \(error)")
        }
    }
}
