import ArgumentParser
import LucidCore

/// `--threads N`: the one thread budget of Lucid and OpenBLAS (`Threads.count`); `--verbose`:
/// the convolution planner reports its plans.
struct ThreadOptions: ParsableArguments {
    @Option(help: "Threads for Lucid and OpenBLAS (default: all cores, or LUCID_THREADS).")
    var threads: Int?

    @Flag(help: "Print each convolution plan (the timings of every candidate) and the planning time on stderr.")
    var verbose = false

    /// Sets the budget when `--threads` was given, and the planner's reporting.
    func apply() {
        if let threads { Threads.count = threads }
        if verbose { ConvPlanner.verbose = true }
    }
}
