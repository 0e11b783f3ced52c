import CMPI
import Foundation
import LucidCore

/// An MPI failure, a peer that died or a collective that got no answer; the message is one
/// line that names this rank and, where it can be known, the rank at fault.
public struct DistributedError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// The ranks of the MPI job this process is part of, as a `ProcessGroup`.
///
/// Every wait polls its request (so nonblocking collectives progress) with a deadline:
/// a rank on this machine that has exited is named within about a second, and a collective
/// that gets no answer for `timeout` seconds (`LUCID_MPI_TIMEOUT`, default 600) fails instead
/// of hanging. Calls are made from one thread (`MPI_THREAD_FUNNELED`).
public final class MPIWorld: ProcessGroup {
    public let rank: Int
    public let size: Int
    /// Ranks on this machine and this rank's index among them.
    public let localSize: Int
    public let localRank: Int
    /// Seconds a wait may last before the job is declared hung.
    public let timeout: Double
    /// Small collectives (sums, broadcasts, point-to-point).
    let comm: MPI_Comm
    /// Gradient buckets, so their nonblocking reductions never interleave with the others.
    let gradientComm: MPI_Comm
    /// Process id and host of every rank (to tell which peer on this machine died).
    private let peers: [(pid: Int32, host: String)]
    nonisolated(unsafe) private static var shared: MPIWorld?

    /// Initializes MPI when this process is one of several ranks (`Launch.isDistributed`), sets
    /// this rank's thread budget (`Launch.threadsPerRank`) and returns the job (the same one on
    /// later calls); nil for a process that runs alone.
    public static func start() throws -> MPIWorld? {
        if let shared { return shared }
        guard Launch.isDistributed else { return nil }
        var provided: Int32 = 0
        let status = MPI_Init_thread(nil, nil, lucid_mpi_thread_funneled(), &provided)
        guard status == lucid_mpi_success() else {
            throw DistributedError(message: "MPI_Init_thread failed (\(MPIWorld.describe(status))); is this an Open MPI launch (mpirun, srun --mpi=pmix)?")
        }
        let world = try MPIWorld()
        shared = world
        Threads.count = Launch.threadsPerRank(localRanks: world.localSize)
        return world
    }

    private init() throws {
        let world = lucid_mpi_comm_world()
        MPI_Comm_set_errhandler(world, lucid_mpi_errors_return())
        var r: Int32 = 0, n: Int32 = 0
        try MPIWorld.check(MPI_Comm_rank(world, &r), "MPI_Comm_rank")
        try MPIWorld.check(MPI_Comm_size(world, &n), "MPI_Comm_size")
        rank = Int(r)
        size = Int(n)
        func duplicate() throws -> MPI_Comm {
            var c: MPI_Comm? = nil
            try MPIWorld.check(MPI_Comm_dup(world, &c), "MPI_Comm_dup")
            MPI_Comm_set_errhandler(c!, lucid_mpi_errors_return())
            return c!
        }
        comm = try duplicate()
        gradientComm = try duplicate()
        var local: MPI_Comm? = nil
        try MPIWorld.check(MPI_Comm_split_type(world, lucid_mpi_comm_type_shared(), r, lucid_mpi_info_null(), &local),
                           "MPI_Comm_split_type")
        var lr: Int32 = 0, ln: Int32 = 0
        MPI_Comm_rank(local!, &lr)
        MPI_Comm_size(local!, &ln)
        MPI_Comm_free(&local)
        localRank = Int(lr)
        localSize = Int(ln)
        timeout = ProcessInfo.processInfo.environment["LUCID_MPI_TIMEOUT"].flatMap { Double($0) }.map { max(1, $0) } ?? 600

        // Every rank's pid and host name (64 bytes each).
        var mine = [UInt8](repeating: 0, count: 68)
        var pid = getpid()
        withUnsafeBytes(of: &pid) { for i in 0..<4 { mine[i] = $0[i] } }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        for (i, c) in host.prefix(63).enumerated() { mine[4 + i] = UInt8(bitPattern: c) }
        var all = [UInt8](repeating: 0, count: 68 * Int(n))
        try MPIWorld.check(MPI_Allgather(mine, 68, lucid_mpi_char(), &all, 68, lucid_mpi_char(), comm), "MPI_Allgather")
        peers = (0..<Int(n)).map { k in
            let bytes = Array(all[(68 * k)..<(68 * k + 68)])
            let pid = bytes[0..<4].withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
            let name = String(decoding: bytes[4...].prefix { $0 != 0 }, as: UTF8.self)
            return (pid, name)
        }
    }

    /// This rank's host name.
    private var hostName: String { peers[rank].host }

    /// Ends MPI after a successful run (every rank calls it).
    public func finish() {
        MPI_Finalize()
        MPIWorld.shared = nil
    }

    /// Prints `command: rank R of N: error` and ends the whole job with `MPI_Abort`.
    public func abort(_ command: String, _ error: Error) -> Never {
        FileHandle.standardError.write(Data("\(command): rank \(rank) of \(size): \(error)\n".utf8))
        MPI_Abort(lucid_mpi_comm_world(), 1)
        exit(1)
    }

    // MARK: - Waiting

    /// Waits for `request` while the rest of the job answers: polls it (which also progresses
    /// other nonblocking operations), names a rank on this machine that exited, and fails
    /// after `timeout` seconds.
    func wait(_ request: inout MPI_Request?, _ what: @autoclosure () -> String) throws {
        let start = DispatchTime.now().uptimeNanoseconds
        var lastCheck = start
        var flag: Int32 = 0
        var polls = 0
        while true {
            try check(MPI_Test(&request, &flag, lucid_mpi_status_ignore()), "MPI_Test (\(what()))")
            if flag != 0 { return }
            polls += 1
            let now = DispatchTime.now().uptimeNanoseconds
            if now - start < 2_000_000 { sched_yield() } else { usleep(polls < 10_000 ? 50 : 200) }
            if now - lastCheck > 1_000_000_000 {
                lastCheck = now
                let (peer, _) = peerStates().first { $0.state == "Z" || $0.state == "gone" } ?? (-1, "")
                if peer >= 0 {
                    throw DistributedError(message: "rank \(peer) (pid \(peers[peer].pid) on \(peers[peer].host)) has died; stopping (while waiting for \(what()))")
                }
                let waited = Double(now - start) / 1e9
                if waited > timeout {
                    let stopped = peerStates().filter { $0.state == "T" || $0.state == "t" }.map { "rank \($0.rank) (pid \(peers[$0.rank].pid)) is stopped" }
                    let cause = stopped.isEmpty ? "a rank died or hangs" : stopped.joined(separator: ", ")
                    throw DistributedError(message: String(format: "no answer from the other ranks for %.0f s (while waiting for %@); %@ (LUCID_MPI_TIMEOUT=%.0f)",
                                                           waited, what(), cause, timeout))
                }
            }
        }
    }

    /// Tests `request` once (progressing MPI); true when it has completed.
    func test(_ request: inout MPI_Request?) throws -> Bool {
        var flag: Int32 = 0
        try check(MPI_Test(&request, &flag, lucid_mpi_status_ignore()), "MPI_Test")
        return flag != 0
    }

    /// The state of every other rank on this machine: its `/proc/PID/stat` state letter
    /// (`R`, `S`, `T` stopped, `Z` exited, …), or `gone`.
    func peerStates() -> [(rank: Int, state: String)] {
        peers.enumerated().filter { $0.offset != rank && $0.element.host == hostName }.map { k, p in
            guard kill(p.pid, 0) == 0 || errno != ESRCH,
                  let stat = try? String(contentsOfFile: "/proc/\(p.pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")"), stat.distance(from: close, to: stat.endIndex) > 2 else { return (k, "gone") }
            return (k, String(stat[stat.index(close, offsetBy: 2)]))
        }
    }

    // MARK: - Errors

    func check(_ status: Int32, _ call: @autoclosure () -> String) throws {
        try MPIWorld.check(status, call())
    }

    static func check(_ status: Int32, _ call: @autoclosure () -> String) throws {
        guard status != lucid_mpi_success() else { return }
        throw DistributedError(message: "\(call()) failed: \(describe(status))")
    }

    /// MPI's text for an error code.
    static func describe(_ status: Int32) -> String {
        var text = [CChar](repeating: 0, count: Int(lucid_mpi_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(status, &text, &length)
        return String(cString: text)
    }

    // MARK: - ProcessGroup

    /// Largest element count of one MPI call (counts are 32-bit).
    static let chunk = 1 << 28

    public func sum(_ values: [Double]) throws -> [Double] {
        var out = values
        try out.withUnsafeMutableBufferPointer { p in
            var request: MPI_Request? = nil
            try check(MPI_Iallreduce(lucid_mpi_in_place(), p.baseAddress, Int32(p.count), lucid_mpi_double(), lucid_mpi_sum(), comm, &request),
                      "MPI_Iallreduce")
            try wait(&request, "a sum of \(p.count) values")
        }
        return out
    }

    public func broadcast(_ values: [Double], from root: Int) throws -> [Double] {
        var out = values
        try out.withUnsafeMutableBufferPointer { p in
            var request: MPI_Request? = nil
            try check(MPI_Ibcast(p.baseAddress, Int32(p.count), lucid_mpi_double(), Int32(root), comm, &request), "MPI_Ibcast")
            try wait(&request, "a broadcast from rank \(root)")
        }
        return out
    }

    /// Sums `tensor` element-wise over the ranks, on every rank (one `MPI_Iallreduce` per
    /// 2^28 elements).
    public func sumInPlace(_ tensor: inout Tensor) throws {
        tensor.makeUnique()
        let base = tensor.storage.base
        try inPieces(tensor.count, "a sum of \(tensor.shape)") { offset, n, request in
            MPI_Iallreduce(lucid_mpi_in_place(), base + offset, Int32(n), lucid_mpi_float(), lucid_mpi_sum(), comm, &request)
        }
    }

    public func sumTensor(_ tensor: inout Tensor, onto root: Int) throws {
        tensor.makeUnique()
        let base = tensor.storage.base, isRoot = rank == root
        try inPieces(tensor.count, "a sum of \(tensor.shape) onto rank \(root)") { offset, n, request in
            isRoot
                ? MPI_Ireduce(lucid_mpi_in_place(), base + offset, Int32(n), lucid_mpi_float(), lucid_mpi_sum(), Int32(root), comm, &request)
                : MPI_Ireduce(base + offset, nil, Int32(n), lucid_mpi_float(), lucid_mpi_sum(), Int32(root), comm, &request)
        }
    }

    public func sendTensor(_ tensor: Tensor, to destination: Int) throws {
        var axes = Int64(tensor.rank)
        try send(&axes, count: 8, to: destination)
        var shape = tensor.shape.map(Int64.init)
        if axes > 0 { try shape.withUnsafeMutableBytes { try send($0.baseAddress!, count: $0.count, to: destination) } }
        if tensor.count > 0 { try send(UnsafeRawPointer(tensor.storage.base), count: tensor.count * 4, to: destination) }
    }

    public func receiveTensor(from source: Int) throws -> Tensor {
        var axes: Int64 = 0
        try receive(&axes, count: 8, from: source)
        var shape = [Int64](repeating: 0, count: Int(axes))
        if axes > 0 { try shape.withUnsafeMutableBytes { try receive($0.baseAddress!, count: $0.count, from: source) } }
        let tensor = Tensor(uninitialized: shape.map(Int.init))
        if tensor.count > 0 { try receive(tensor.storage.base, count: tensor.count * 4, from: source) }
        return tensor
    }

    public func sendData(_ data: Data, to destination: Int) throws {
        var count = Int64(data.count)
        try send(&count, count: 8, to: destination)
        guard !data.isEmpty else { return }
        try data.withUnsafeBytes { try send($0.baseAddress!, count: $0.count, to: destination) }
    }

    public func receiveData(from source: Int) throws -> Data {
        var count: Int64 = 0
        try receive(&count, count: 8, from: source)
        var bytes = Data(count: Int(count))
        guard count > 0 else { return bytes }
        try bytes.withUnsafeMutableBytes { try receive($0.baseAddress!, count: $0.count, from: source) }
        return bytes
    }

    /// Sends `count` bytes at `p` to `destination`.
    private func send(_ p: UnsafeRawPointer, count: Int, to destination: Int) throws {
        try inPieces(count, "sending \(count) bytes to rank \(destination)") { offset, n, request in
            MPI_Isend(p + offset, Int32(n), lucid_mpi_char(), Int32(destination), 1, comm, &request)
        }
    }

    /// Receives `count` bytes from `source` into `p`.
    private func receive(_ p: UnsafeMutableRawPointer, count: Int, from source: Int) throws {
        try inPieces(count, "receiving \(count) bytes from rank \(source)") { offset, n, request in
            MPI_Irecv(p + offset, Int32(n), lucid_mpi_char(), Int32(source), 1, comm, &request)
        }
    }

    /// Runs the nonblocking call `start(offset, n, &request)` on pieces of `count` elements that
    /// MPI's 32-bit counts can hold (at least one call, even for none), waiting for each.
    private func inPieces(_ count: Int, _ what: @autoclosure () -> String,
                          _ start: (Int, Int, inout MPI_Request?) -> Int32) throws {
        var offset = 0
        repeat {
            let n = min(MPIWorld.chunk, count - offset)
            var request: MPI_Request? = nil
            try check(start(offset, n, &request), what())
            try wait(&request, what())
            offset += n
        } while offset < count
    }
}
