import Foundation
import LucidAutograd
import LucidCore
import LucidDistributed
import LucidNN
import LucidRestore

/// `ddp_unet2d_train`: data-parallel training steps of the CARE U-Net (global batch 16 of 64×64,
/// Adam) on 2 ranks × 1 thread (`mpirun -np 2`) against 1 process × 1 thread, each run as a
/// `lucid bench --ddp-worker` child; prints the throughput ratio and the communication time.
enum DistributedBenchmarks {
    static let name = "ddp_unet2d_train"
    static let batch = 16
    static let patch = [64, 64]

    static var cases: [BenchCase] { [BenchCase(name: name, run: compare), BenchCase(name: "ddp_cost_model", run: costModel)] }

    /// The links of the cost model: bandwidth in bits/s and per-message latency in seconds
    /// (TCP over 10 Gb/s Ethernet; InfiniBand/RoCE at 100 Gb/s).
    static let links: [(name: String, bitsPerSecond: Double, latency: Double)] = [
        ("10GbE", 10e9, 25e-6), ("100Gb", 100e9, 3e-6),
    ]

    /// Seconds of a ring allreduce of `bytes` over `ranks`: each rank sends and receives
    /// 2(N−1)/N of the data in 2(N−1) messages.
    static func ringAllreduce(bytes: Double, ranks: Int, bitsPerSecond: Double, latency: Double) -> Double {
        let n = Double(ranks)
        return 2 * (n - 1) / n * bytes * 8 / bitsPerSecond + 2 * (n - 1) * latency
    }

    /// One JSON line per shipped U-Net, rank count (8–64) and link: gradient bytes per step and
    /// the ring-allreduce time (a model, not a measurement).
    static func costModel(_ ctx: BenchContext) throws {
        for (net, config) in [("care2D", UNetConfig.care2D), ("unet3D", UNetConfig.unet3D), ("fnet3D", UNetConfig.fnet3D)] {
            var rng = RandomGenerator(seed: 0)
            let params = try UNet(config, rng: &rng).parameterCount
            let bytes = Double(4 * params)
            for ranks in [8, 16, 32, 64] {
                var row: [String: Any] = ["case": "ddp_cost_model", "net": net, "params": params, "gradient_bytes": Int(bytes),
                                          "ranks": ranks, "bytes_sent_per_rank": Int(2 * Double(ranks - 1) / Double(ranks) * bytes)]
                for link in links {
                    row["allreduce_s_" + link.name] = ringAllreduce(bytes: bytes, ranks: ranks, bitsPerSecond: link.bitsPerSecond,
                                                                    latency: link.latency)
                }
                print(json(row))
            }
        }
        fflush(stdout)
    }

    /// Runs the worker alone and on 2 ranks and prints one JSON line comparing them.
    static func compare(_ ctx: BenchContext) throws {
        let load = loadAverage()
        guard let mpirun = executable("mpirun") else {
            print(json(["case": name, "skipped": "mpirun is not installed (make deps installs openmpi-bin)"]))
            return
        }
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let worker = ["bench", "--ddp-worker", "--threads", "1", "--repeats", "\(ctx.repeats)"]
        let one = try runWorker(URL(fileURLWithPath: me), worker)
        var launch = ["-np", "2", "-x", "LUCID_THREADS=1"]
        if getuid() == 0 { launch.insert("--allow-run-as-root", at: 0) }
        let two = try runWorker(mpirun, launch + [me] + worker)
        let t1 = one["median_s"] as! Double, t2 = two["median_s"] as! Double
        let result: [String: Any] = [
            "case": name, "config": ["net": "care2D", "global_batch": batch, "patch": patch, "optimizer": "adam",
                                     "threads_per_rank": 1, "params": one["params"] ?? 0],
            "one_rank_step_s": t1, "two_ranks_step_s": t2,
            "one_rank_patches_per_s": Double(batch) / t1, "two_ranks_patches_per_s": Double(batch) / t2,
            "throughput_ratio": t1 / t2, "scaling_efficiency": t1 / t2 / 2,
            "gradient_bytes": two["gradient_bytes"] ?? 0, "buckets": two["buckets"] ?? 0,
            "allreduce_s": two["allreduce_s"] ?? 0, "exposed_wait_s": two["exposed_wait_s"] ?? 0,
            "overlapped_span_s": two["span_s"] ?? 0,
            "load_before": load, "load_after": loadAverage(), "cores": ProcessInfo.processInfo.activeProcessorCount,
        ]
        print(json(result))
        fflush(stdout)
    }

    /// The worker: training steps on this process's rows of the global batch; rank 0 prints
    /// the median step time, and (on several ranks) the time of one blocking allreduce of every
    /// gradient and the per-step wait of `GradientBuckets`.
    static func worker(_ ctx: BenchContext) throws {
        let world = try MPIWorld.start()
        defer { world?.finish() }
        var rng = RandomGenerator(seed: 0)
        let net = try UNet(.care2D, rng: &rng)
        let opt = try Adam(parameters: net.namedParameters, learningRate: 4e-4)
        let rows = TrainLoop.shareOfBatch(batch, rank: world?.rank ?? 0, size: world?.size ?? 1)
        let shape = [rows.count, 1] + patch
        var data = RandomGenerator(seed: 1 + UInt64(rows.lowerBound))
        let x = Variable(Tensor.randomUniform(shape, rng: &data)), y = Variable(Tensor.randomUniform(shape, rng: &data))
        let buckets = world.map { GradientBuckets(parameters: net.namedParameters, world: $0) }
        let reducer: any GradientReducer = buckets ?? LocalGradients()
        func step() throws {
            opt.zeroGrad()
            try Autograd.splitBatch(over: world) {
                let loss = try mseLoss(net(x), y)
                try loss.backward(gradientReady: reducer.gradientReady)
            }
            try reducer.reduce(opt.parameters)
            try opt.step()
        }
        for _ in 0..<ctx.warmup { try step() }
        let warm = buckets?.timing ?? GradientBuckets.Timing()
        var times: [Double] = []
        for _ in 0..<ctx.repeats {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try step()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        times.sort()
        let count = net.parameterCount
        var out: [String: Any] = ["median_s": times[times.count / 2], "params": count, "gradient_bytes": 4 * count]
        if let world, let buckets {
            let steps = Double(buckets.timing.steps - warm.steps)
            out["exposed_wait_s"] = (buckets.timing.exposedSeconds - warm.exposedSeconds) / steps
            out["span_s"] = (buckets.timing.spanSeconds - warm.spanSeconds) / steps
            out["buckets"] = buckets.bucketBytes.count
            out["allreduce_s"] = try blockingAllreduce(world, count: count, repeats: ctx.repeats)
        }
        if (world?.rank ?? 0) == 0 { print(json(out)) }
    }

    /// Median seconds of one allreduce of `count` floats (the whole gradient in one piece).
    static func blockingAllreduce(_ world: MPIWorld, count: Int, repeats: Int) throws -> Double {
        var gradient = Tensor(zeros: [count])
        var times: [Double] = []
        for _ in 0..<(repeats + 1) {
            _ = try world.sum([0])    // start together
            let t0 = DispatchTime.now().uptimeNanoseconds
            try world.sumInPlace(&gradient)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        times.removeFirst()
        return times.sorted()[times.count / 2]
    }

    private static func runWorker(_ executable: URL, _ arguments: [String]) throws -> [String: Any] {
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
        guard p.terminationStatus == 0,
              let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw BenchError(message: "\(executable.lastPathComponent) \(arguments.joined(separator: " ")) failed (status \(p.terminationStatus)): \(line)")
        }
        return object
    }

    private static func executable(_ name: String) -> URL? {
        (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
            .map { URL(fileURLWithPath: "\($0)/\(name)") }.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    /// The 1-minute load average (`uptime`), to judge how quiet the machine was.
    private static func loadAverage() -> Double {
        (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)).flatMap { Double($0.split(separator: " ")[0]) } ?? -1
    }

    private static func json(_ object: [String: Any]) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }
}

/// A benchmark that could not run; the message says why.
struct BenchError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
