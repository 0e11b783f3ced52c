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

    /// Plans both directions; nil when FFTW makes no plan (`FFTW_WISDOM_ONLY` without wisdom).
    fileprivate init?(shape: [Int], flags: UInt32) {
        self.shape = shape
        count = shape.reduce(1, *)
        rowStride = 2 * (shape.last! / 2 + 1)
        rows = count / shape.last!
        bufferCount = rows * rowStride
        let scratch = FFTWBuffer(count: bufferCount)
        let n = shape.map { Int32($0) }
        let cplx = UnsafeMutableRawPointer(scratch.base).assumingMemoryBound(to: fftwf_complex.self)
        guard let f = fftwf_plan_dft_r2c(Int32(shape.count), n, scratch.base, cplx, flags) else { return nil }
        guard let i = fftwf_plan_dft_c2r(Int32(shape.count), n, cplx, scratch.base, flags) else {
            fftwf_destroy_plan(f)
            return nil
        }
        forwardPlan = f
        inversePlan = i
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

/// An FFTW single-precision complex-to-complex plan pair for one N-d shape, working in place on
/// interleaved `(re, im)` floats. Execution is thread-safe; plans come from `FFT.complexPlan`.
/// Transforms are unnormalized: `inverse(forward(x))` is `x · count`.
public final class ComplexFFTPlan: @unchecked Sendable {
    /// Logical shape.
    public let shape: [Int]
    /// Number of complex points (product of `shape`).
    public let count: Int
    private let forwardPlan: fftwf_plan
    private let inversePlan: fftwf_plan

    fileprivate init(shape: [Int], flags: UInt32) {
        self.shape = shape
        count = shape.reduce(1, *)
        let scratch = FFTWBuffer(count: 2 * count)
        let n = shape.map { Int32($0) }
        let cplx = UnsafeMutableRawPointer(scratch.base).assumingMemoryBound(to: fftwf_complex.self)
        forwardPlan = fftwf_plan_dft(Int32(shape.count), n, cplx, cplx, FFTW_FORWARD, flags)!
        inversePlan = fftwf_plan_dft(Int32(shape.count), n, cplx, cplx, FFTW_BACKWARD, flags)!
    }

    deinit {
        fftwf_destroy_plan(forwardPlan)
        fftwf_destroy_plan(inversePlan)
    }

    /// Forward transform (`e^{-2πi…}`), in place on `2·count` interleaved floats (FFTW-aligned).
    public func forward(_ buffer: UnsafeMutablePointer<Float>) {
        let c = UnsafeMutableRawPointer(buffer).assumingMemoryBound(to: fftwf_complex.self)
        fftwf_execute_dft(forwardPlan, c, c)
    }

    /// Inverse transform (`e^{+2πi…}`, unnormalized), in place.
    public func inverse(_ buffer: UnsafeMutablePointer<Float>) {
        let c = UnsafeMutableRawPointer(buffer).assumingMemoryBound(to: fftwf_complex.self)
        fftwf_execute_dft(inversePlan, c, c)
    }

    /// A zeroed buffer of `2·count` floats.
    public func makeBuffer() -> FFTWBuffer {
        let b = FFTWBuffer(count: 2 * count)
        b.zero()
        return b
    }
}

/// FFTW plumbing: plan cache, wisdom, thread setup, FFT-friendly sizes.
///
/// A real plan comes from measured wisdom when this machine has measured its size before
/// (`fftw-<cpu>-<isa>-<version>.wisdom` in `Wisdom.folder`); otherwise it is made with
/// `FFTW_ESTIMATE` in milliseconds, unless `measureNewSizes` (`LUCID_FFTW=measure`) asks for
/// `FFTW_MEASURE`. Measuring a 64×256×256 transform takes 5–15 s and made it at most 5% faster
/// on the EPYC we measured, far less than a 20-iteration deconvolution would gain; it pays for
/// sizes run many times. Either way the wisdom is saved, so the next process plans in
/// milliseconds and gets the same algorithm (bit-identical results).
public enum FFT {
    private struct Key: Hashable { let shape: [Int]; let threads: Int }
    nonisolated(unsafe) private static var cache: [Key: RealFFTPlan] = [:]
    nonisolated(unsafe) private static var threadsReady = false
    /// The wisdom folder whose file has been imported, and the wisdom text last saved or loaded.
    nonisolated(unsafe) private static var wisdomFolder: String?
    nonisolated(unsafe) private static var savedWisdom = ""
    private static let lock = NSLock()

    /// Real points above which plans are made with `FFTW_ESTIMATE` instead of `FFTW_MEASURE`
    /// (measuring huge transforms takes minutes and a scratch buffer of the full size).
    nonisolated(unsafe) public static var measureLimit = 1 << 24

    /// Whether sizes without measured wisdom are measured (`FFTW_MEASURE`) rather than
    /// estimated; `LUCID_FFTW=measure` sets it.
    nonisolated(unsafe) public static var measureNewSizes = ProcessInfo.processInfo.environment["LUCID_FFTW"] == "measure"

    /// Calls FFTW's one-time thread setup and imports this machine's wisdom from `Wisdom.folder`
    /// (again when the folder changed). Caller holds `lock`.
    private static func prepare(threads: Int) {
        if !threadsReady {
            fftwf_init_threads()
            threadsReady = true
        }
        let folder = Wisdom.folder
        if folder != wisdomFolder {
            wisdomFolder = folder
            if let body = Wisdom.load(kind: "fftw", from: folder), fftwf_import_wisdom_from_string(body) == 0 {
                Wisdom.note("ignoring corrupt FFTW wisdom in \(Wisdom.path(kind: "fftw", in: folder!))")
            }
            savedWisdom = exportedWisdom()
        }
        fftwf_plan_with_nthreads(Int32(threads))
    }

    /// FFTW's accumulated wisdom as text.
    private static func exportedWisdom() -> String {
        guard let text = fftwf_export_wisdom_to_string() else { return "" }
        defer { free(text) }
        return String(cString: text)
    }

    /// Saves FFTW's wisdom when planning added to it. Caller holds `lock`.
    private static func saveWisdom() {
        guard Wisdom.folder != nil else { return }
        let text = exportedWisdom()
        if text != savedWisdom {
            Wisdom.save(kind: "fftw", body: text)
            savedWisdom = text
        }
    }

    /// The cached in-place plan for `shape` with `Threads.count` FFTW threads (planned on first
    /// use, from wisdom when this machine has planned the size before).
    public static func plan(shape: [Int]) throws -> RealFFTPlan {
        guard !shape.isEmpty, shape.allSatisfy({ $0 > 0 }) else {
            throw TensorError.invalidArgument(op: "FFT.plan", detail: "shape \(shape) must have positive extents")
        }
        lock.lock(); defer { lock.unlock() }
        let key = Key(shape: shape, threads: Threads.count)
        if let p = cache[key] { return p }
        prepare(threads: Threads.count)
        let measurable = shape.reduce(1, *) <= measureLimit
        let p = (measurable ? RealFFTPlan(shape: shape, flags: FFTW_MEASURE | (measureNewSizes ? 0 : FFTW_WISDOM_ONLY)) : nil)
            ?? RealFFTPlan(shape: shape, flags: FFTW_ESTIMATE)!
        cache[key] = p
        saveWisdom()
        return p
    }

    /// FFTW's wisdom now (what `plan` saves), after importing `Wisdom.folder`'s file.
    static func currentWisdom() -> String {
        lock.lock(); defer { lock.unlock() }
        prepare(threads: Threads.count)
        return exportedWisdom()
    }

    nonisolated(unsafe) private static var complexCache: [Key: ComplexFFTPlan] = [:]

    /// The cached in-place complex plan for `shape` with `threads` FFTW threads. Planned with
    /// `FFTW_ESTIMATE`, so the same shape gets the same algorithm (bit-identical results) in
    /// every process.
    public static func complexPlan(shape: [Int], threads: Int = Threads.count) throws -> ComplexFFTPlan {
        guard !shape.isEmpty, shape.allSatisfy({ $0 > 0 }), threads > 0 else {
            throw TensorError.invalidArgument(op: "FFT.complexPlan", detail: "shape \(shape) must have positive extents and threads \(threads) must be positive")
        }
        lock.lock(); defer { lock.unlock() }
        let key = Key(shape: shape, threads: threads)
        if let p = complexCache[key] { return p }
        prepare(threads: threads)
        let p = ComplexFFTPlan(shape: shape, flags: FFTW_ESTIMATE)
        complexCache[key] = p
        return p
    }

    /// Forgets every cached plan (frees their memory); with `wisdom`, also FFTW's wisdom, so
    /// the next plan comes from the wisdom file or is measured afresh.
    public static func clearCache(wisdom: Bool = false) {
        lock.lock(); defer { lock.unlock() }
        cache.removeAll()
        complexCache.removeAll()
        prunedCache.removeAll()
        if wisdom {
            fftwf_forget_wisdom()
            wisdomFolder = nil
            savedWisdom = ""
        }
    }

    private struct PrunedKey: Hashable { let grid: [Int]; let kernel: [Int]; let threads: Int }
    nonisolated(unsafe) private static var prunedCache: [PrunedKey: PrunedKernelFFT] = [:]

    /// The cached transform of kernels occupying the `kernel` corner of the 3-D `grid`. It runs
    /// once per kernel spectrum, so it is planned with `FFTW_ESTIMATE` (measuring it would cost
    /// more than it could save).
    static func prunedPlan(grid: [Int], kernel: [Int]) -> PrunedKernelFFT {
        lock.lock(); defer { lock.unlock() }
        let key = PrunedKey(grid: grid, kernel: Array(kernel.prefix(2)), threads: Threads.count)
        if let p = prunedCache[key] { return p }
        prepare(threads: Threads.count)
        let p = PrunedKernelFFT(grid: grid, kernel: kernel, flags: FFTW_ESTIMATE)
        prunedCache[key] = p
        return p
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

/// The forward real FFT of a buffer (in-place layout of a 3-D grid) that is zero outside the
/// corner `[0, k₀) × [0, k₁) × [0, p₂)`: x-transforms only the `k₀·k₁` non-zero rows, y-transforms
/// only the `k₀` non-zero planes, then z-transforms everything. A small kernel on a large grid
/// costs well under half of a full transform.
final class PrunedKernelFFT: @unchecked Sendable {
    private var plans: [(plan: fftwf_plan, realInput: Bool)] = []

    fileprivate init(grid p: [Int], kernel k: [Int], flags: UInt32) {
        let hx = p[2] / 2 + 1, rs = 2 * hx
        let scratch = FFTWBuffer(count: p[0] * p[1] * rs)
        let real = scratch.base
        let cplx = UnsafeMutableRawPointer(scratch.base).assumingMemoryBound(to: fftwf_complex.self)
        func dim(_ n: Int, _ i: Int, _ o: Int) -> fftwf_iodim { fftwf_iodim(n: Int32(n), is: Int32(i), os: Int32(o)) }
        var x = [dim(p[2], 1, 1)]
        var xMany = [dim(k[0], p[1] * rs, p[1] * hx), dim(k[1], rs, hx)]
        plans.append((fftwf_plan_guru_dft_r2c(1, &x, 2, &xMany, real, cplx, flags)!, true))
        if p[1] > 1 {
            var y = [dim(p[1], hx, hx)]
            var yMany = [dim(k[0], p[1] * hx, p[1] * hx), dim(hx, 1, 1)]
            plans.append((fftwf_plan_guru_dft(1, &y, 2, &yMany, cplx, cplx, FFTW_FORWARD, flags)!, false))
        }
        if p[0] > 1 {
            var z = [dim(p[0], p[1] * hx, p[1] * hx)]
            var zMany = [dim(p[1] * hx, 1, 1)]
            plans.append((fftwf_plan_guru_dft(1, &z, 1, &zMany, cplx, cplx, FFTW_FORWARD, flags)!, false))
        }
    }

    deinit { for p in plans { fftwf_destroy_plan(p.plan) } }

    /// Transforms `buffer` in place (unnormalized, like `RealFFTPlan.forward`).
    func forward(_ buffer: UnsafeMutablePointer<Float>) {
        let cplx = UnsafeMutableRawPointer(buffer).assumingMemoryBound(to: fftwf_complex.self)
        for p in plans {
            if p.realInput { fftwf_execute_dft_r2c(p.plan, buffer, cplx) } else { fftwf_execute_dft(p.plan, cplx, cplx) }
        }
    }
}
