import ArgumentParser
import LucidCore

/// `--threads N`: the one thread budget of Lucid and OpenBLAS (`Threads.count`).
struct ThreadOptions: ParsableArguments {
    @Option(help: "Threads for Lucid and OpenBLAS (default: all cores, or LUCID_THREADS).")
    var threads: Int?

    /// Sets the budget when `--threads` was given.
    func apply() {
        if let threads { Threads.count = threads }
    }
}
