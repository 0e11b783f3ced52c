import Foundation

/// A progress bar on stderr for long runs: a redrawn bar on a terminal, plain periodic lines
/// (about every 10 % or 5 s) when stderr is a file or a pipe.
public final class ProgressBar {
    private let total: Int
    private let label: String
    private let interactive: Bool
    private let start = Date()
    private var lastLine = Date.distantPast
    private var lastPercent = -100

    /// A bar for `total` steps, printed after `label`.
    public init(total: Int, label: String) {
        self.total = max(total, 1)
        self.label = label
        interactive = isatty(2) != 0
    }

    /// Reports that `done` steps are finished, with an optional status (e.g. the residual).
    public func update(_ done: Int, status: String = "") {
        let fraction = Double(min(done, total)) / Double(total)
        let elapsed = Date().timeIntervalSince(start)
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let timing = String(format: "%.1fs elapsed, %.1fs left", elapsed, eta)
        if interactive {
            let width = 30, filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(done)/\(total) \(timing) \(status)\u{1B}[K".utf8))
            if done >= total { FileHandle.standardError.write(Data("\n".utf8)) }
        } else {
            let percent = Int(fraction * 100)
            guard done >= total || percent >= lastPercent + 10 || Date().timeIntervalSince(lastLine) >= 5 else { return }
            lastPercent = percent
            lastLine = Date()
            FileHandle.standardError.write(Data("\(label): \(done)/\(total) (\(percent)%) \(timing) \(status)\n".utf8))
        }
    }

    /// Ends the bar early (e.g. when a stopping rule fired).
    public func finish(_ done: Int, status: String = "") {
        if interactive && done < total { FileHandle.standardError.write(Data("\n".utf8)) }
        if !interactive && done < total { update(done, status: status + " (stopped early)") }
    }
}
