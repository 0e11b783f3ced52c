/// Errors raised by tensor operations. Every message names the operation and the offending shapes
/// or arguments, so a user can tell what went wrong without a debugger.
public enum TensorError: Error, Equatable, CustomStringConvertible {
    /// Operand shapes that the operation cannot combine.
    case shapeMismatch(op: String, detail: String)
    /// An argument outside what the operation allows (negative padding, kernel too large, …).
    case invalidArgument(op: String, detail: String)

    public var description: String {
        switch self {
        case let .shapeMismatch(op, detail): return "\(op): shape mismatch: \(detail)"
        case let .invalidArgument(op, detail): return "\(op): invalid argument: \(detail)"
        }
    }
}
