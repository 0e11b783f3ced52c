import COpenBLAS
import Dispatch
import Foundation

/// The one thread policy of Lucid: a single budget shared by OpenBLAS and Lucid's own loops.
///
/// Either a GEMM runs with `Threads.count` OpenBLAS threads (called from outside a parallel
/// region), or `parallelFor` splits work across `Threads.count` workers whose GEMMs run on one
/// OpenBLAS thread each — never both, which would oversubscribe the cores.
/// The budget defaults to `LUCID_THREADS`, else the number of active cores.
public enum Threads {
    nonisolated(unsafe) private static var budget: Int = {
        if let s = ProcessInfo.processInfo.environment["LUCID_THREADS"], let n = Int(s), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()
    nonisolated(unsafe) private static var blasThreads = 0
    private static let lock = NSLock()

    /// Number of threads Lucid uses for one operation.
    public static var count: Int {
        get { budget }
        set { budget = max(1, newValue) }
    }

    /// True on a worker of `parallelFor` (nested calls then run serially).
    public static var inParallelRegion: Bool {
        Thread.current.threadDictionary["lucid.parallel"] != nil
    }

    /// Sets OpenBLAS's thread count for GEMMs called from here on (no-op when unchanged).
    public static func setBLASThreads(_ n: Int) {
        lock.lock(); defer { lock.unlock() }
        if blasThreads != n { openblas_set_num_threads(Int32(n)); blasThreads = n }
    }

    /// Prepares OpenBLAS for a GEMM issued by the caller: the whole budget outside parallel
    /// regions, one thread inside them.
    public static func prepareBLAS() {
        if !inParallelRegion { setBLASThreads(budget) }
    }

    /// Runs `body(i)` for `i` in `0..<n`, split into contiguous chunks over the thread budget.
    /// Inside a parallel region (or with a budget of 1) it runs serially on the caller.
    public static func parallelFor(_ n: Int, _ body: (Int) -> Void) {
        parallelChunks(n) { range in for i in range { body(i) } }
    }

    /// Splits `0..<n` into at most `Threads.count` contiguous ranges and runs them concurrently.
    public static func parallelChunks(_ n: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        guard n > 0 else { return }
        let workers = min(budget, max(1, n / max(1, minChunk)))
        if workers <= 1 || inParallelRegion {
            body(0..<n)
            return
        }
        setBLASThreads(1)
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let lo = n * w / workers, hi = n * (w + 1) / workers
                let td = Thread.current.threadDictionary
                let wasInside = td["lucid.parallel"] != nil
                td["lucid.parallel"] = true
                body(lo..<hi)
                if !wasInside { td.removeObject(forKey: "lucid.parallel") }
            }
        }
    }
}
