import LucidCore

/// A mistake in a training recipe: which file, which key, what was wrong, and what is allowed.
///
/// The description is one line, e.g.
/// `recipe.yaml: model.depth: 0 is not allowed (an integer from 1 to 6) [line 7]`, or, when the
/// value came from the command line, `… [--set model.depth=0]`.
public struct RecipeError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The recipe file name as given (or `recipe.yaml` for text parsed without a file).
    public var file: String
    /// The dotted key path (`model.depth`); empty for problems with the whole document.
    public var path: String
    /// What is wrong, including what is allowed.
    public var message: String
    /// 1-based line in the file, when the problem points at a place in it.
    public var line: Int?
    /// 1-based column, for malformed YAML.
    public var column: Int?
    /// The `--set key=value` override that supplied the offending value, if any.
    public var override: String?

    public init(file: String, path: String, message: String, line: Int? = nil, column: Int? = nil,
                override: String? = nil) {
        self.file = file
        self.path = path
        self.message = message
        self.line = line
        self.column = column
        self.override = override
    }

    public var description: String {
        var text = file
        if !path.isEmpty { text += ": " + path }
        text += ": " + message
        if let override {
            text += " [--set \(override)]"
        } else if let line {
            text += column.map { " [line \(line), column \($0)]" } ?? " [line \(line)]"
        }
        return text.escapingControlCharacters
    }
}
