import Foundation

/// How much memory Lucid may still allocate, so that sizes declared by untrusted files (TIFF
/// tags, safetensors headers, recipes) are refused with a message before an allocation that
/// cannot succeed, instead of aborting the process.
public enum SystemMemory {
    /// Bytes available now: `MemAvailable` plus `SwapFree` from `/proc/meminfo`, at most the
    /// cgroup's `memory.max` less its `memory.current`, and at most `LUCID_MEMORY_LIMIT_MB`
    /// megabytes when that is set (a cap for shared machines, and for fuzzing); free physical
    /// pages (`sysconf`) where `/proc` is missing.
    public static var availableBytes: UInt64 {
        var available: UInt64
        if let info = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
           let free = field(info, "MemAvailable:") {
            available = free + (field(info, "SwapFree:") ?? 0)
        } else {
            let pages = sysconf(Int32(_SC_AVPHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
            available = pages > 0 && size > 0 ? UInt64(pages) * UInt64(size) : .max
        }
        if let limit = number("/sys/fs/cgroup/memory.max"), let used = number("/sys/fs/cgroup/memory.current") {
            available = min(available, limit > used ? limit - used : 0)
        }
        if let text = ProcessInfo.processInfo.environment["LUCID_MEMORY_LIMIT_MB"], let mb = UInt64(text) {
            available = min(available, mb << 20)
        }
        return available
    }

    /// Nil when `bytes` fit in the available memory; otherwise the reason, e.g.
    /// `needs 3.73e+04 GiB, more than the 21.4 GiB of memory available`.
    public static func shortfall(_ bytes: Int?) -> String? {
        let free = availableBytes
        guard let bytes, bytes >= 0 else { return "needs more bytes than a 64-bit size can count" }
        guard UInt64(bytes) > free else { return nil }
        return "needs \(gibibytes(UInt64(bytes))) GiB, more than the \(gibibytes(free)) GiB of memory available"
    }

    /// The product of `factors` (non-negative) multiplied left to right, nil when a partial
    /// product overflows `Int` (as `reduce(1, *)` over a shape would trap).
    public static func product(_ factors: [Int]) -> Int? {
        var p = 1
        for f in factors {
            let (r, overflow) = p.multipliedReportingOverflow(by: f)
            guard !overflow else { return nil }
            p = r
        }
        return p
    }

    /// The sum of `terms` (non-negative), nil when one is nil or the sum overflows `Int`.
    public static func sum(_ terms: [Int?]) -> Int? {
        var total = 0
        for term in terms {
            guard let term else { return nil }
            let (r, overflow) = total.addingReportingOverflow(term)
            guard !overflow else { return nil }
            total = r
        }
        return total
    }

    private static func gibibytes(_ bytes: UInt64) -> String { String(format: "%.3g", Double(bytes) / 1_073_741_824) }

    /// The kB value of a `/proc/meminfo` line, in bytes.
    private static func field(_ info: String, _ name: String) -> UInt64? {
        guard let line = info.split(separator: "\n").first(where: { $0.hasPrefix(name) }) else { return nil }
        return line.split(separator: " ").dropFirst().first.flatMap { UInt64($0) }.map { $0 * 1024 }
    }

    /// A number file of the cgroup v2 hierarchy ("max" reads as nil).
    private static func number(_ path: String) -> UInt64? {
        (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
}
