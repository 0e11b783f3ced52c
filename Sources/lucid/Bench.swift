import ArgumentParser
import Foundation
import LucidCore

/// `lucid bench`: timed cases printed as JSON lines (config, median/min/max seconds, rate).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure Lucid's kernels and training steps; prints one JSON object per case.")

    @Option(name: .customLong("case"), help: "Run only these cases (repeatable); default: all.")
    var cases: [String] = []

    @Option(help: "Timed repeats per case (after warm-up).")
    var repeats: Int = 7

    @OptionGroup var threads: ThreadOptions

    @Flag(help: "List the case names and exit.")
    var list = false

    /// One side of `ddp_unet2d_train` (started by it, alone or under mpirun).
    @Flag(help: .hidden)
    var ddpWorker = false

    func validate() throws {
        if repeats < 5 { throw ValidationError("--repeats must be at least 5 so the median means something") }
        let known = Set(BenchRegistry.all.map(\.name))
        for c in cases where !known.contains(c) {
            throw ValidationError("unknown case '\(c)'; known: \(BenchRegistry.all.map(\.name).joined(separator: ", "))")
        }
    }

    func run() throws {
        if list { BenchRegistry.all.forEach { print($0.name) }; return }
        threads.apply()
        if ddpWorker { return try DistributedBenchmarks.worker(BenchContext(repeats: repeats)) }
        for c in BenchRegistry.all where cases.isEmpty || cases.contains(c.name) {
            try c.run(BenchContext(repeats: repeats))
        }
    }
}

/// A named group of benchmark measurements.
struct BenchCase {
    let name: String
    let run: (BenchContext) throws -> Void
}

/// Timing and JSON output shared by every case.
struct BenchContext {
    let repeats: Int
    var warmup = 2

    /// Times `body` `repeats` times after warm-up and prints one JSON line: `case`, `config`,
    /// the machine (`cpu`, `isa`, `threads`, `planner`), `median_s`, `min_s`, `max_s`, and each
    /// rate computed from the median and best time.
    func measure(_ name: String, config: [String: Any], rates: [String: (Double) -> Double] = [:],
                 repeats: Int? = nil, _ body: () throws -> Void) rethrows {
        for _ in 0..<warmup { try body() }
        var times: [Double] = []
        for _ in 0..<(repeats ?? self.repeats) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        times.sort()
        let median = times[times.count / 2]
        var json: [String: Any] = ["case": name, "config": config, "threads": Threads.count,
                                   "cpu": Wisdom.cpuModel, "isa": Wisdom.isa, "planner": ConvPlanner.mode.rawValue,
                                   "repeats": times.count, "median_s": median,
                                   "min_s": times.first!, "max_s": times.last!]
        for (rate, f) in rates {
            json[rate + "_median"] = f(median)
            json[rate + "_best"] = f(times.first!)
        }
        let data = try! JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
        fflush(stdout)
    }
}

/// Every benchmark case, in the order `lucid bench` runs them.
enum BenchRegistry {
    static var all: [BenchCase] {
        EngineBenchmarks.cases + NetworkBenchmarks.cases + DiffusionBenchmarks.cases + DistributedBenchmarks.cases
            + OpticsBenchmarks.cases + MetricsBenchmarks.cases
    }
}
