import CFFTW
import Foundation
import LucidCore

/// Float storage from `fftwf_malloc` (SIMD-aligned as FFTW wants), freed when released.
public final class FFTWBuffer: @unchecked Sendable {
    /// Number of Float elements.
    public let count: Int
    /// First element.
    public let base: UnsafeMutablePointer<Float>

    /// Allocates `count` uninitialized floats.
    public init(count: Int) {
        guard let raw = fftwf_malloc(max(count, 1) * MemoryLayout<Float>.stride) else {
            fatalError("LucidOptics: out of memory allocating \(count) floats for FFTW")
        }
        self.count = count
        base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    deinit { fftwf_free(base) }

    /// Sets every element to zero.
    public func zero() { base.update(repeating: 0, count: count) }
}

/// An FFTW single-precision real-to-complex / complex-to-real plan pair for one N-d shape,
/// working in place on a buffer in FFTW's padded layout (last axis holds `2·(n/2+1)` floats).
///
/// Execution is thread-safe (FFTW's new-array execute); plans come from `FFT.plan(shape:)`,
/// which caches them and serializes planning. Transforms are unnormalized: `inverse(forward(x))`
/// is `x · count`.
public final class RealFFTPlan: @unchecked Sendable {
    /// Logical real shape.
    public let shape: [Int]
    /// Number of real points (product of `shape`).
    public let count: Int
    /// Floats per row of the in-place layout (`2·(shape.last/2+1)`).
    public let rowStride: Int
    /// Number of rows (product of all but the last extent).
    public let rows: Int
    /// Floats a buffer for this plan needs (`rows · rowStride`).
    public let bufferCount: Int
    private let forwardPlan: fftwf_plan
    private let inversePlan: fftwf_plan

    fileprivate init(shape: [Int], flags: UInt32) {
        self.shape = shape
        count = shape.reduce(1, *)
        rowStride = 2 * (shape.last! / 2 + 1)
        rows = count / shape.last!
        bufferCount = rows * rowStride
        let scratch = FFTWBuffer(count: bufferCount)
        let n = shape.map { Int32($0) }
        let cplx = UnsafeMutableRawPointer(scratch.base).assumingMemoryBound(to: fftwf_complex.self)
        forwardPlan = fftwf_plan_dft_r2c(Int32(shape.count), n, scratch.base, cplx, flags)!
        inversePlan = fftwf_plan_dft_c2r(Int32(shape.count), n, cplx, scratch.base, flags)!
    }

    deinit {
        fftwf_destroy_plan(forwardPlan)
        fftwf_destroy_plan(inversePlan)
    }

    /// Real → half spectrum, in place (`buffer` holds `bufferCount` floats, FFTW-aligned).
    public func forward(_ buffer: UnsafeMutablePointer<Float>) {
        fftwf_execute_dft_r2c(forwardPlan, buffer,
                              UnsafeMutableRawPointer(buffer).assumingMemoryBound(to: fftwf_complex.self))
    }

    /// Half spectrum → real (unnormalized), in place.
    public func inverse(_ buffer: UnsafeMutablePointer<Float>) {
        fftwf_execute_dft_c2r(inversePlan,
                              UnsafeMutableRawPointer(buffer).assumingMemoryBound(to: fftwf_complex.self), buffer)
    }

    /// A zeroed buffer of the right size for this plan.
    public func makeBuffer() -> FFTWBuffer {
        let b = FFTWBuffer(count: bufferCount)
        b.zero()
        return b
    }
}

/// FFTW plumbing: plan cache, thread setup, FFT-friendly sizes.
public enum FFT {
    private struct Key: Hashable { let shape: [Int]; let threads: Int }
    nonisolated(unsafe) private static var cache: [Key: RealFFTPlan] = [:]
    nonisolated(unsafe) private static var threadsReady = false
    private static let lock = NSLock()

    /// Real points above which plans are made with `FFTW_ESTIMATE` instead of `FFTW_MEASURE`
    /// (measuring huge transforms takes minutes and a scratch buffer of the full size).
    nonisolated(unsafe) public static var measureLimit = 1 << 24

    /// The cached in-place plan for `shape` with `Threads.count` FFTW threads (planned on first use).
    public static func plan(shape: [Int]) throws -> RealFFTPlan {
        guard !shape.isEmpty, shape.allSatisfy({ $0 > 0 }) else {
            throw TensorError.invalidArgument(op: "FFT.plan", detail: "shape \(shape) must have positive extents")
        }
        lock.lock(); defer { lock.unlock() }
        let key = Key(shape: shape, threads: Threads.count)
        if let p = cache[key] { return p }
        if !threadsReady {
            fftwf_init_threads()
            threadsReady = true
        }
        fftwf_plan_with_nthreads(Int32(Threads.count))
        let n = shape.reduce(1, *)
        let p = RealFFTPlan(shape: shape, flags: n <= measureLimit ? FFTW_MEASURE : FFTW_ESTIMATE)
        cache[key] = p
        return p
    }

    /// Forgets every cached plan (frees their memory).
    public static func clearCache() {
        lock.lock(); defer { lock.unlock() }
        cache.removeAll()
    }

    /// The smallest length ≥ `n` whose only prime factors are 2, 3, 5 and 7.
    public static func fastLength(_ n: Int) -> Int {
        var m = max(n, 1)
        while true {
            var r = m
            for f in [2, 3, 5, 7] { while r % f == 0 { r /= f } }
            if r == 1 { return m }
            m += 1
        }
    }
}
