/// Errors raised by tensor operations. Every message names the operation and the offending shapes
/// or arguments, so a user can tell what went wrong without a debugger.
public enum TensorError: Error, Equatable, CustomStringConvertible {
    /// Operand shapes that the operation cannot combine.
    case shapeMismatch(op: String, detail: String)
    /// An argument outside what the operation allows (negative padding, kernel too large, …).
    case invalidArgument(op: String, detail: String)

    public var description: String {
        switch self {
        case let .shapeMismatch(op, detail): return "\(op): shape mismatch: \(detail)".escapingControlCharacters
        case let .invalidArgument(op, detail): return "\(op): invalid argument: \(detail)".escapingControlCharacters
        }
    }
}

extension String {
    /// The text with line breaks and other control characters written as escapes (`\n`,
    /// `\u{7}`), so that an error message quoting a file's contents stays one line.
    public var escapingControlCharacters: String {
        var out = String.UnicodeScalarView()
        for s in unicodeScalars {
            switch s {
            case "\n": out.append(contentsOf: "\\n".unicodeScalars)
            case "\r": out.append(contentsOf: "\\r".unicodeScalars)
            case "\t", " ": out.append(s)
            default:
                switch s.properties.generalCategory {
                case .control, .lineSeparator, .paragraphSeparator:
                    out.append(contentsOf: "\\u{\(String(s.value, radix: 16))}".unicodeScalars)
                default: out.append(s)
                }
            }
        }
        return String(out)
    }
}
