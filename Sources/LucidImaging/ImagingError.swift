import Foundation
import LucidCore

/// Errors raised by LucidImaging. Each description is one line naming the file (or pattern,
/// axes string, argument) and the cause.
public enum ImagingError: Error, Equatable, CustomStringConvertible {
    /// A file that could not be read: missing, not a TIFF/PNG, corrupt or truncated.
    case unreadable(path: String, reason: String)
    /// A file that could not be written.
    case unwritable(path: String, reason: String)
    /// A valid file using a feature Lucid does not read (e.g. 1-bit or JPEG-YCbCr pixels).
    case unsupported(path: String, reason: String)
    /// An axes string that is malformed or does not match the data.
    case invalidAxes(axes: String, reason: String)
    /// A file pattern (or folder) that matched no file.
    case noMatch(pattern: String, reason: String)
    /// An argument outside what the operation allows.
    case invalidArgument(op: String, detail: String)

    public var description: String { text.escapingControlCharacters }

    private var text: String {
        switch self {
        case let .unreadable(path, reason): return "cannot read '\(path)': \(reason)"
        case let .unwritable(path, reason): return "cannot write '\(path)': \(reason)"
        case let .unsupported(path, reason): return "unsupported image '\(path)': \(reason)"
        case let .invalidAxes(axes, reason): return "invalid axes '\(axes)': \(reason)"
        case let .noMatch(pattern, reason): return "no image files match '\(pattern)': \(reason)"
        case let .invalidArgument(op, detail): return "\(op): invalid argument: \(detail)"
        }
    }
}

extension ImagingError {
    /// Collapses a multi-line library message into one line.
    static func oneLine(_ s: String) -> String {
        s.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: "; ")
    }
}
