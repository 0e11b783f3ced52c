import Foundation
import LucidCore
import LucidDistributed
import LucidImaging
import LucidNN
import LucidRestore
import LucidTestSupport
import XCTest

/// `lucid train` and `lucid predict` under `mpirun -np 2` on this machine, against the same
/// commands in one process. Skipped (with the reason printed) where Open MPI's `mpirun` is missing.
final class DistributedTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = try temporaryFolder(self)
        for k in 0..<2 { try writeNoisy("noisy\(k).tif", shape: [96, 96], seed: UInt64(k)) }
    }

    /// A noisy synthetic specimen (about 20 photons), float32 TIFF, in `dir`.
    private func writeNoisy(_ name: String, shape: [Int], seed: UInt64) throws {
        var noisy = try SyntheticSpecimen(shape: shape, seed: seed).render()
        var rng = RandomGenerator(seed: seed &+ 100)
        noisy.withUnsafeMutableBufferPointer { b in
            for i in b.indices { b[i] = 20 * b[i] + (20 * b[i] + 4).squareRoot() * rng.normal() }
        }
        try Image(data: noisy, axes: "YX").write(to: dir.appendingPathComponent(name).path)
    }

    /// A recipe training a tiny 2-D U-Net on the noisy files.
    private func writeRecipe(method: String = "noise2void", norm: String = "none", steps: Int = 20, batch: Int = 4,
                             extra: String = "") throws -> String {
        let yaml = """
            method: \(method)
            data: {train: "\(dir.path)/noisy*.tif", axes: YX, patch: [32, 32], validation: 0.1}
            model: {depth: 1, filters: 8, norm: \(norm)}
            training: {steps: \(steps), batch: \(batch), lr: 4.0e-4, seed: 3, validate_every: 10\(extra)}
            output: \(dir.path)/unused
            """
        let path = dir.appendingPathComponent("recipe-\(UUID().uuidString.prefix(8)).yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `lucid ARGS` in one process (one thread, as each of the two ranks has on two cores).
    private func lucid(_ arguments: [String]) throws -> ProcessOutput {
        let r = try runLucid(arguments + ["--threads", "1"], in: dir)
        XCTAssertEqual(r.status, 0, "lucid \(arguments.joined(separator: " ")): \(r.err)")
        return r
    }

    /// `mpirun -np 2 lucid ARGS`.
    private func mpiLucid(_ arguments: [String], ranks: Int = 2) throws -> ProcessOutput {
        let r = try runProcess(try mpirun(), mpirunArguments(ranks) + [try binary().path] + arguments, in: dir)
        XCTAssertEqual(r.status, 0, "mpirun -np \(ranks) lucid \(arguments.joined(separator: " ")): \(r.err)")
        return r
    }

    private func mpirunArguments(_ ranks: Int) -> [String] {
        ["--allow-run-as-root", "--oversubscribe", "-np", "\(ranks)"]
    }

    private func binary() throws -> URL {
        guard let binary = lucidBinary else { throw XCTSkip("the lucid binary is not built next to the tests") }
        return binary
    }

    /// Open MPI's launcher; skips the test (printing why) when it is not installed.
    private func mpirun() throws -> URL {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
            .map { "\($0)/mpirun" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let path else {
            print("skipping: mpirun is not installed (make deps installs openmpi-bin)")
            throw XCTSkip("mpirun is not installed (make deps installs openmpi-bin)")
        }
        return URL(fileURLWithPath: path)
    }

    /// The largest difference of two checkpoints' last weights relative to the weights' norm:
    /// `‖a − b‖ / ‖a‖` over every parameter and buffer.
    private func relativeDifference(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) throws -> Double {
        let wa = try Checkpoint.load(directory: dir.appendingPathComponent(a).path).weights(.last)
        let wb = try Checkpoint.load(directory: dir.appendingPathComponent(b).path).weights(.last)
        XCTAssertEqual(Set(wa.keys), Set(wb.keys), file: file, line: line)
        var difference = 0.0, norm = 0.0
        for (name, x) in wa {
            let y = try XCTUnwrap(wb[name])
            XCTAssertEqual(x.shape, y.shape, name, file: file, line: line)
            for (p, q) in zip(x.scalars, y.scalars) {
                difference += Double(p - q) * Double(p - q)
                norm += Double(p) * Double(p)
            }
        }
        return (difference / norm).squareRoot()
    }

    private func metricsRows(_ output: String) throws -> [String] {
        try String(contentsOfFile: dir.appendingPathComponent(output + "/metrics.csv").path, encoding: .utf8)
            .split(separator: "\n").dropFirst().map(String.init)
    }

    // MARK: - training

    /// 2 ranks × 2 patches train the weights 1 rank × 4 patches trains (Noise2Void: its blind
    /// spots are drawn per patch, its loss averages over the whole batch's masked pixels):
    /// after 20 Adam steps within 1e-5 of the weights' norm, and only rank 0 wrote metrics.
    func testTwoRanksTrainTheWeightsOfOneRank() throws {
        let recipe = try writeRecipe()
        let one = try lucid(["train", recipe, "-o", "one"])
        XCTAssertFalse(one.err.contains("data-parallel"), "a plain lucid train must run alone")
        let two = try mpiLucid(["train", recipe, "-o", "two"])
        XCTAssertTrue(two.err.contains("data-parallel over 2 ranks"), two.err)
        XCTAssertEqual(two.err.components(separatedBy: "completed at step 20").count, 2, "rank 0 alone reports: \(two.err)")
        let d = try relativeDifference("one", "two")
        XCTAssertLessThan(d, 1e-5)
        print("2 ranks vs 1 rank after 20 steps: relative weight difference \(d)")
        let rows = try metricsRows("two")
        XCTAssertEqual(rows.count, 20, "one metrics row a step, written by rank 0 alone")
        // The logged loss is the whole batch's (the mean of the ranks' shares).
        for (a, b) in zip(try metricsRows("one"), rows) {
            let (la, lb) = (Double(a.split(separator: ",")[1])!, Double(b.split(separator: ",")[1])!)
            XCTAssertEqual(la, lb, accuracy: 1e-4 * max(1, abs(la)), "\(a) vs \(b)")
        }
    }

    /// Synchronized batch normalization with an uneven split (3 + 2 patches): the whole batch's
    /// statistics, so the weights and running statistics follow the one-process run. (SGD: Adam
    /// would turn the rounding noise of the zero-gradient convolution bias before each
    /// BatchNorm into full-size steps.)
    func testBatchNormIsSynchronizedAcrossRanks() throws {
        let recipe = try writeRecipe(method: "noise2self", norm: "batch", batch: 5,
                                     extra: ", optimizer: sgd")
        _ = try lucid(["train", recipe, "-o", "one", "--set", "training.lr=3e-3"])
        _ = try mpiLucid(["train", recipe, "-o", "two", "--set", "training.lr=3e-3"])
        let d = try relativeDifference("one", "two")
        XCTAssertLessThan(d, 1e-5)
        print("batch norm, 2 ranks (3 + 2 patches) vs 1 rank: relative weight difference \(d)")
    }

    /// A run started on 2 ranks and resumed on 1 continues the same global trajectory. (A
    /// constant rate: the first half stops by `training.steps=10`, which would also shorten a
    /// cosine schedule.)
    func testResumeOnAnotherNumberOfRanks() throws {
        let recipe = try writeRecipe(extra: ", schedule: none")
        _ = try lucid(["train", recipe, "-o", "whole"])
        _ = try mpiLucid(["train", recipe, "-o", "split", "--set", "training.steps=10"])
        _ = try lucid(["train", recipe, "-o", "split", "--resume"])
        XCTAssertLessThan(try relativeDifference("whole", "split"), 1e-5)
        // And back: 1 rank, then 2.
        _ = try lucid(["train", recipe, "-o", "back", "--set", "training.steps=10"])
        _ = try mpiLucid(["train", recipe, "-o", "back", "--resume"])
        XCTAssertLessThan(try relativeDifference("whole", "back"), 1e-5)
        XCTAssertEqual(try metricsRows("back").count, 20)
    }

    /// Killing rank 1 mid-run ends the job within 30 s with a message naming rank 1; the last
    /// checkpoint loads.
    func testKilledRankEndsTheJobNamingIt() throws {
        let launcher = try mpirun()
        let recipe = try writeRecipe(steps: 1_000_000)
        let job = UUID().uuidString
        let p = Process()
        p.executableURL = launcher
        p.arguments = mpirunArguments(2) + [try binary().path, "train", recipe, "-o", "killed"]
        p.currentDirectoryURL = dir
        p.environment = ProcessInfo.processInfo.environment.merging(["LUCID_TEST_JOB": job]) { $1 }
        let log = dir.appendingPathComponent("killed.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        defer { if p.isRunning { p.terminate() } }

        // Wait for the first checkpoint, then kill rank 1 (found by its environment).
        let checkpoint = dir.appendingPathComponent("killed/lucid.json").path
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: checkpoint) && Date() < deadline && p.isRunning { usleep(100_000) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: checkpoint), "no checkpoint was written")
        let rank1 = try XCTUnwrap(Self.process(environment: ["LUCID_TEST_JOB=\(job)", "OMPI_COMM_WORLD_RANK=1"]), "rank 1 not found")
        let killed = Date()
        kill(rank1, SIGKILL)
        while p.isRunning && Date().timeIntervalSince(killed) < 60 { usleep(100_000) }
        let seconds = Date().timeIntervalSince(killed)
        XCTAssertFalse(p.isRunning, "the job still runs 60 s after rank 1 was killed")
        XCTAssertLessThan(seconds, 30)
        XCTAssertNotEqual(p.terminationStatus, 0)
        let text = try String(contentsOf: log, encoding: .utf8)
        XCTAssertTrue(text.contains("rank 1"), "the message names rank 1: \(text.suffix(2000))")
        print(String(format: "killed rank 1: the job ended after %.1f s", seconds))
        let ckpt = try Checkpoint.load(directory: dir.appendingPathComponent("killed").path)
        XCTAssertGreaterThan(ckpt.metadata.step, 0)
        XCTAssertFalse(try ckpt.weights(.last).isEmpty)
    }

    /// The process whose environment holds every one of `entries`.
    private static func process(environment entries: [String]) -> pid_t? {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { Int32($0) } ?? []
        for pid in pids {
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { continue }
            let variables = Set(data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) })
            if entries.allSatisfy(variables.contains) { return pid }
        }
        return nil
    }

    // MARK: - prediction

    /// `mpirun -np 2 lucid predict` writes what one process writes: the tiles of one large image
    /// shared by the ranks, and three files split over them, within 1e-6 of the output's range.
    func testDistributedPredictionEqualsOneProcess() throws {
        _ = try lucid(["train", try writeRecipe(steps: 4), "-o", "model"])
        try writeNoisy("large.tif", shape: [300, 260], seed: 7)
        _ = try lucid(["predict", "model", "large.tif", "-o", "one/large.tif", "--tile", "64"])
        _ = try mpiLucid(["predict", "model", "large.tif", "-o", "two/large.tif", "--tile", "64"])
        let files = ["noisy0.tif", "noisy1.tif", "large.tif"]
        _ = try lucid(["predict", "model"] + files + ["-o", "oneFiles/"])
        let split = try mpiLucid(["predict", "model"] + files + ["-o", "twoFiles/"])
        XCTAssertTrue(split.err.contains("restored 3 images") && split.err.contains("on 2 ranks"), split.err)
        for (a, b) in [("one/large.tif", "two/large.tif")] + files.map({ ("oneFiles/\($0)", "twoFiles/\($0)") }) {
            let x = try Image.read(dir.appendingPathComponent(a).path), y = try Image.read(dir.appendingPathComponent(b).path)
            XCTAssertEqual(x.data.shape, y.data.shape)
            XCTAssertEqual(x.axes, y.axes)
            let range = x.data.scalars.map(abs).max() ?? 0
            let difference = zip(x.data.scalars, y.data.scalars).map { abs($0 - $1) }.max() ?? 0
            XCTAssertGreaterThan(range, 0)
            XCTAssertLessThanOrEqual(difference, 1e-6 * range, "\(a) vs \(b)")
        }
    }

    // MARK: - launch

    /// MPI is initialized only for a job of several ranks, whichever launcher started it.
    func testLaunchDetection() {
        XCTAssertNil(Launch.processCount([:]))
        XCTAssertEqual(Launch.processCount(["OMPI_COMM_WORLD_SIZE": "4"]), 4)
        XCTAssertEqual(Launch.processCount(["PMI_SIZE": "8"]), 8)
        XCTAssertEqual(Launch.processCount(["PMIX_RANK": "0", "SLURM_NTASKS": "16"]), 16)
        XCTAssertEqual(Launch.processCount(["OMPI_COMM_WORLD_SIZE": "1"]), 1)
        // This test process was not launched by mpirun.
        XCTAssertFalse(Launch.isDistributed)
    }

    /// Threads per rank: LUCID_THREADS, else the machine's cores shared by its ranks, never
    /// more than the CPUs the rank is bound to, at least one.
    func testThreadsPerRank() {
        XCTAssertEqual(Launch.threadsPerRank(localRanks: 4, environment: [:], cpus: 16, machineCPUs: 16), 4)
        XCTAssertEqual(Launch.threadsPerRank(localRanks: 3, environment: [:], cpus: 16, machineCPUs: 16), 5)
        XCTAssertEqual(Launch.threadsPerRank(localRanks: 2, environment: [:], cpus: 1, machineCPUs: 16), 1)
        XCTAssertEqual(Launch.threadsPerRank(localRanks: 4, environment: [:], cpus: 2, machineCPUs: 2), 1)
        XCTAssertEqual(Launch.threadsPerRank(localRanks: 4, environment: ["LUCID_THREADS": "3"], cpus: 16, machineCPUs: 16), 3)
    }

    /// Buckets: parameters from the last back, at most 25 MB unless one parameter is larger,
    /// each parameter once; fnet3D's 93 MB make 5.
    func testGradientBucketPlan() throws {
        XCTAssertEqual(GradientBuckets.plan(counts: [10, 20, 30], bucketBytes: 200), [[2, 1], [0]])
        XCTAssertEqual(GradientBuckets.plan(counts: [100, 1], bucketBytes: 200), [[1], [0]])
        var rng = RandomGenerator(seed: 0)
        let counts = try UNet(.fnet3D, rng: &rng).parameters.map { $0.value.count }
        let plan = GradientBuckets.plan(counts: counts, bucketBytes: 25_000_000)
        XCTAssertEqual(plan.flatMap { $0 }.sorted(), Array(counts.indices))
        for b in plan where b.count > 1 { XCTAssertLessThanOrEqual(b.reduce(0) { $0 + 4 * counts[$1] }, 25_000_000) }
        print("fnet3D gradient buckets (MB): \(plan.map { Double($0.reduce(0) { $0 + 4 * counts[$1] }) / 1e6 })")
        XCTAssertEqual(plan.count, 5)
    }

    /// The rows of a batch each rank takes: contiguous, covering the batch, sizes within one.
    func testShareOfBatch() {
        let shares = (0..<3).map { TrainLoop.shareOfBatch(8, rank: $0, size: 3) }
        XCTAssertEqual(shares, [0..<3, 3..<6, 6..<8])
        XCTAssertEqual(TrainLoop.shareOfBatch(4, rank: 1, size: 2), 2..<4)
    }
}
