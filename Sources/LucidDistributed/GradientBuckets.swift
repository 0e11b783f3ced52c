import CMPI
import Foundation
import LucidAutograd
import LucidCore
import LucidRestore

/// Averages gradients over the ranks with `MPI_Iallreduce` on flat buckets of about
/// `bucketBytes` (PyTorch DDP's design): parameters are bucketed in reverse order (about the
/// order `backward` finishes them), a bucket's reduction starts as soon as its last gradient is
/// final, and the rest of the backward pass runs while it travels (each finished gradient also
/// polls the reductions in flight, which is what moves them on). `reduce` starts what is left
/// and waits. Buckets start in the same order on every rank.
public final class GradientBuckets: GradientReducer {
    /// Default bucket size: 25 MB, or `LUCID_BUCKET_MB`.
    public static var defaultBucketBytes: Int {
        let mb = ProcessInfo.processInfo.environment["LUCID_BUCKET_MB"].flatMap { Double($0) } ?? 25
        return max(4, Int(mb * 1_000_000))
    }

    /// Seconds spent communicating, summed over steps.
    public struct Timing {
        /// Steps reduced.
        public var steps = 0
        /// Time `reduce` waited after the backward pass (communication not hidden by it).
        public var exposedSeconds = 0.0
        /// From the first bucket's start to the last one's completion (overlapping the backward pass).
        public var spanSeconds = 0.0

        public init() {}
    }

    private final class Bucket {
        /// Indices into `parameters`, and each one's offset in `buffer`.
        var members: [Int] = []
        var offsets: [Int] = []
        var count = 0
        var buffer: UnsafeMutablePointer<Float>!
        var waiting = 0
        var request: MPI_Request? = nil
        var started = false
        var done = false
    }

    private let world: MPIWorld
    private let parameters: [(name: String, parameter: Variable)]
    private let buckets: [Bucket]
    private let place: [ObjectIdentifier: Int]
    /// Buckets started this step (they start in index order).
    private var nextToStart = 0
    private var stepStart: UInt64 = 0
    public private(set) var timing = Timing()

    public init(parameters: [(name: String, parameter: Variable)], world: MPIWorld, bucketBytes: Int = GradientBuckets.defaultBucketBytes) {
        self.world = world
        self.parameters = parameters
        var place: [ObjectIdentifier: Int] = [:]
        buckets = GradientBuckets.plan(counts: parameters.map { $0.parameter.value.count }, bucketBytes: bucketBytes)
            .enumerated().map { k, members in
                let b = Bucket()
                for index in members {
                    b.members.append(index)
                    b.offsets.append(b.count)
                    b.count += parameters[index].parameter.value.count
                    place[ObjectIdentifier(parameters[index].parameter)] = k
                }
                b.buffer = .allocate(capacity: max(1, b.count))
                b.waiting = members.count
                return b
            }
        self.place = place
    }

    /// The buckets of parameters with `counts` floats: indices from the last parameter back,
    /// each bucket at most `bucketBytes` unless one parameter alone is larger.
    public static func plan(counts: [Int], bucketBytes: Int) -> [[Int]] {
        var buckets: [[Int]] = [], current: [Int] = [], bytes = 0
        for index in counts.indices.reversed() {
            let n = 4 * counts[index]
            if !current.isEmpty && bytes + n > bucketBytes {
                buckets.append(current)
                current = []
                bytes = 0
            }
            current.append(index)
            bytes += n
        }
        if !current.isEmpty { buckets.append(current) }
        return buckets
    }

    deinit { for b in buckets { b.buffer.deallocate() } }

    /// Bucket sizes in bytes, in the order they are reduced.
    public var bucketBytes: [Int] { buckets.map { $0.count * 4 } }

    public func gradientReady(_ parameter: Variable) throws {
        guard let k = place[ObjectIdentifier(parameter)] else { return }
        buckets[k].waiting -= 1
        while nextToStart < buckets.count && buckets[nextToStart].waiting == 0 { try start(buckets[nextToStart]) }
        try poll()
    }

    public func reduce(_ parameters: [(name: String, parameter: Variable)]) throws {
        let t0 = DispatchTime.now().uptimeNanoseconds
        // Buckets with a parameter that got no gradient this step start now, with zeros for it.
        while nextToStart < buckets.count { try start(buckets[nextToStart]) }
        let scale = 1 / Float(world.size)
        for (k, b) in buckets.enumerated() {
            if !b.done { try world.wait(&b.request, "the gradient bucket \(k + 1) of \(buckets.count)") }
            for (index, offset) in zip(b.members, b.offsets) {
                let p = self.parameters[index].parameter
                let g = Tensor(uninitialized: p.value.shape)
                let src = b.buffer + offset, dst = g.storage.base
                for i in 0..<g.count { dst[i] = src[i] * scale }
                p.grad = g
            }
            b.started = false
            b.done = false
            b.waiting = b.members.count
        }
        let t1 = DispatchTime.now().uptimeNanoseconds
        timing.steps += 1
        timing.exposedSeconds += Double(t1 - t0) / 1e9
        timing.spanSeconds += Double(t1 - stepStart) / 1e9
        nextToStart = 0
    }

    /// Copies the bucket's gradients (zeros where none) into its buffer and starts its sum.
    private func start(_ b: Bucket) throws {
        if nextToStart == 0 { stepStart = DispatchTime.now().uptimeNanoseconds }
        for (index, offset) in zip(b.members, b.offsets) {
            let p = parameters[index].parameter
            let dst = b.buffer + offset
            if let g = p.grad {
                g.withUnsafeBufferPointer { dst.update(from: $0.baseAddress!, count: $0.count) }
            } else {
                dst.update(repeating: 0, count: p.value.count)
            }
        }
        try world.check(MPI_Iallreduce(lucid_mpi_in_place(), b.buffer, Int32(b.count), lucid_mpi_float(), lucid_mpi_sum(),
                                       world.gradientComm, &b.request), "MPI_Iallreduce (gradients)")
        b.started = true
        nextToStart += 1
    }

    /// Moves the reductions in flight on.
    private func poll() throws {
        for b in buckets where b.started && !b.done {
            b.done = try world.test(&b.request)
            if !b.done { return }
        }
    }
}
