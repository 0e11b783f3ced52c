import Dispatch
import Foundation

/// The three products of a convolution layer.
enum ConvDirection: String, CaseIterable, Sendable {
    case forward = "fwd"
    case inputGradient = "dx"
    case weightGradient = "dw"
}

/// Chooses how each convolution is computed, as FFTW and oneDNN do: the first time a geometry
/// (batch, channels, spatial size, kernel, stride, padding, dilation, direction, threads) is
/// seen, every applicable `ConvMethod` (Lucid's micro-kernels with their loop orders, the
/// padded grid, batched columns, im2col + OpenBLAS, …) is timed on it and the fastest kept:
/// in memory, and in this machine's wisdom file (`Wisdom`, kind `conv`) when a wisdom folder is
/// set, so later processes, a resumed training run among them, use the same methods.
///
/// Timing runs on synthetic data of the layer's shape, its batch (then its output channels and
/// outer spatial extents) reduced until one product is about `timingFlops`, so planning a whole
/// U-Net takes a second or two; one plan stops timing after `planBudget`, and past
/// `processBudget` a process uses the heuristic (unsaved, so a later process times those). `LUCID_PLANNER=estimate` skips timing and uses the built-in
/// heuristic; `LUCID_PLANNER_VERBOSE=1` prints each plan and its timings on stderr.
public enum ConvPlanner {
    /// How plans are made.
    public enum Mode: String, Sendable {
        /// Time the candidates (the default).
        case measure
        /// Use the heuristic, no timing (`LUCID_PLANNER=estimate`).
        case estimate
    }

    private static let environment = ProcessInfo.processInfo.environment
    private static let lock = NSLock()
    nonisolated(unsafe) private static var plans: [String: ConvMethod] = [:]
    nonisolated(unsafe) private static var measured: Set<String> = []
    nonisolated(unsafe) private static var wisdomFolder: String??
    nonisolated(unsafe) private static var modeSetting: Mode = environment["LUCID_PLANNER"] == "estimate" ? .estimate : .measure
    nonisolated(unsafe) private static var verboseSetting = ["1", "true", "yes"].contains(environment["LUCID_PLANNER_VERBOSE"] ?? "")
    nonisolated(unsafe) private static var seconds = 0.0
    nonisolated(unsafe) private static var timedPlans = 0
    nonisolated(unsafe) private static var log: [(geometry: ConvGeometry, direction: ConvDirection, method: ConvMethod)] = []

    /// Forward FLOPs one timing run aims at (`2·batch·pixels·cout·cin·taps`).
    static let timingFlops = 6e7
    /// Seconds of timing after which one plan takes the best method timed so far.
    static let planBudget = 0.1
    /// Seconds of timing after which this process plans by the heuristic (not saved as wisdom).
    static let processBudget = 4.0

    /// How plans are made from now on.
    public static var mode: Mode {
        get { lock.lock(); defer { lock.unlock() }; return modeSetting }
        set { lock.lock(); modeSetting = newValue; lock.unlock() }
    }

    /// Whether each plan made by timing is printed on stderr.
    public static var verbose: Bool {
        get { lock.lock(); defer { lock.unlock() }; return verboseSetting }
        set { lock.lock(); verboseSetting = newValue; lock.unlock() }
    }

    /// Seconds this process has spent timing candidates, and the number of plans so made (since
    /// the last `clearPlans`).
    public static var planningTime: (seconds: Double, plans: Int) {
        lock.lock(); defer { lock.unlock() }
        return (seconds, timedPlans)
    }

    /// Forgets every plan in memory (the wisdom file is read again on the next plan) and the
    /// planning time spent.
    public static func clearPlans() {
        lock.lock(); defer { lock.unlock() }
        seconds = 0
        timedPlans = 0
        plans.removeAll()
        measured.removeAll()
        log.removeAll()
        wisdomFolder = nil
    }

    /// Every geometry and direction planned since `clearPlans`, with the method chosen.
    static var planLog: [(geometry: ConvGeometry, direction: ConvDirection, method: ConvMethod)] {
        lock.lock(); defer { lock.unlock() }
        return log
    }

    /// The plan's key: direction, geometry and threads.
    static func key(_ g: ConvGeometry, _ d: ConvDirection, threads: Int) -> String {
        "\(d.rawValue):b\(g.batch):c\(g.cin)>\(g.cout):i\(g.iD)x\(g.iH)x\(g.iW):k\(g.kD)x\(g.kH)x\(g.kW)"
            + ":s\(g.sD)x\(g.sH)x\(g.sW):p\(g.pD)x\(g.pH)x\(g.pW):d\(g.dD)x\(g.dH)x\(g.dW):t\(threads)"
    }

    /// Every method that computes direction `d` of `g`, less those that cannot win here:
    /// batched columns on images whose padded grid wastes under 30% (gathering columns then
    /// costs more than the border saves), the padded grid on images it pads over 6× (a 2×2×2
    /// image padded by one), and 16-lane dot accumulators (`DotAccumulator`: 64 bytes a weight)
    /// for weight gradients of over `2¹⁷` weights. The heuristic's method is always among them.
    static func candidates(_ g: ConvGeometry, _ d: ConvDirection) -> [ConvMethod] {
        let all: [ConvMethod]
        let unit = PaddedGridConv.applies(g)
        switch d {
        case .forward:
            all = unit ? [.paddedGrid, .paddedGridPacked, .batchedColumns, .batchedColumnsBLAS, .columns, .columnsBLAS]
                : [.columns, .columnsBLAS]
        case .inputGradient:
            let viaForward = ConvKernels.inputGradientIsForward(g) ? candidates(ConvKernels.flippedGeometry(g), .forward) : []
            return viaForward + [.scatter, .scatterBLAS]
        case .weightGradient:
            all = unit ? [.paddedGrid, .batchedColumns, .batchedColumnsBLAS, .columns, .columnsBLAS] : [.columns, .columnsBLAS]
        }
        let waste = Double((g.iD + 2 * g.pD) * (g.iH + 2 * g.pH) * (g.iW + 2 * g.pW)) / Double(g.outPlane)
        let fallback = heuristic(g, d)
        return all.filter { m in
            if m == fallback { return true }
            if d == .weightGradient && (m == .paddedGrid || m == .columns) && g.cout * g.k > lanesLimit { return false }
            switch m {
            case .batchedColumns, .batchedColumnsBLAS: return waste > 1.3
            case .paddedGrid, .paddedGridPacked: return waste < 6
            default: return true
            }
        }
    }

    /// Weights above which a weight gradient is not accumulated in 16-lane registers per weight.
    static let lanesLimit = 1 << 17

    /// The method chosen without timing (measured on the Zen 4 EPYC the kernels were first
    /// tuned on): batched columns for small images with many channels, else the padded grid
    /// for stride 1, else im2col chunks (through OpenBLAS for the weight gradient of over
    /// `lanesLimit` weights); the input gradient as a flipped forward convolution where it is one.
    static func heuristic(_ g: ConvGeometry, _ d: ConvDirection) -> ConvMethod {
        switch d {
        case .forward:
            if BatchedColumns.applies(g, waste: BatchedColumns.forwardWaste) { return .batchedColumns }
            return PaddedGridConv.applies(g) ? .paddedGrid : .columns
        case .inputGradient:
            return ConvKernels.inputGradientIsForward(g) ? heuristic(ConvKernels.flippedGeometry(g), .forward) : .scatter
        case .weightGradient:
            if BatchedColumns.applies(g, waste: BatchedColumns.weightWaste) { return .batchedColumns }
            if g.cout * g.k > lanesLimit { return .columnsBLAS }
            return PaddedGridConv.applies(g) ? .paddedGrid : .columns
        }
    }

    /// The method for direction `d` of `g` on the threads available here: from memory, from
    /// the wisdom file, or planned now.
    static func method(for g: ConvGeometry, _ d: ConvDirection) -> ConvMethod {
        let threads = Threads.inParallelRegion ? 1 : Threads.count
        let k = key(g, d, threads: threads)
        let valid = candidates(g, d)
        lock.lock()
        loadWisdomIfNeeded()
        if let m = plans[k], valid.contains(m) { lock.unlock(); return m }
        let mode = modeSetting
        lock.unlock()
        guard mode == .measure, valid.count > 1 else {
            let m = heuristic(g, d)
            lock.lock(); plans[k] = m; log.append((g, d, m)); lock.unlock()
            return m
        }
        let fallback = heuristic(g, d)
        lock.lock()
        let spentSoFar = seconds
        lock.unlock()
        guard spentSoFar < processBudget else {
            // Over budget: the heuristic for now, not saved, so a later process times it.
            lock.lock(); plans[k] = fallback; log.append((g, d, fallback)); lock.unlock()
            return fallback
        }
        let start = DispatchTime.now().uptimeNanoseconds
        let timings = time([fallback] + valid.filter { $0 != fallback }, g, d)
        // Keep the heuristic's method unless another is clearly faster (timings are noisy).
        let best = timings.min { $0.seconds < $1.seconds }!
        let base = timings.first { $0.method == fallback }?.seconds ?? .infinity
        let chosen = best.seconds < 0.95 * base ? best.method : fallback
        let spent = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        lock.lock()
        plans[k] = chosen
        measured.insert(k)
        log.append((g, d, chosen))
        seconds += spent
        timedPlans += 1
        let total = seconds, report = verboseSetting
        saveWisdom()
        lock.unlock()
        if report {
            let list = timings.sorted { $0.seconds < $1.seconds }
                .map { "\($0.method.rawValue) \(String(format: "%.2f", $0.seconds * 1e3))" }.joined(separator: ", ")
            Wisdom.note("conv plan \(k): \(chosen.rawValue) (ms: \(list)); planned in \(String(format: "%.0f", spent * 1e3)) ms, \(String(format: "%.2f", total)) s in all")
        }
        return chosen
    }

    /// `g` with its batch, then its output channels, then its outer spatial extents reduced
    /// until one product costs about `timingFlops` (more where the extents may not shrink).
    static func timingGeometry(_ g: ConvGeometry) -> ConvGeometry {
        func flops(_ t: ConvGeometry) -> Double { 2 * Double(t.batch * t.outPlane) * Double(t.cout * t.k) }
        var t = g
        while flops(t) > timingFlops && t.batch > 1 {
            t = ConvGeometry(batch: (t.batch + 1) / 2, cin: t.cin, cout: t.cout, spatialIn: [t.iD, t.iH, t.iW],
                             kernel: [t.kD, t.kH, t.kW], stride: [t.sD, t.sH, t.sW], padding: [t.pD, t.pH, t.pW],
                             dilation: [t.dD, t.dH, t.dW])
        }
        // Then output channels (to 64), then depth and height: a slab of at least 8 planes and
        // rows from the middle of the volume, so without padding on that axis (a thin slab
        // padded on both sides would be mostly border and misjudge the padded grid).
        while flops(t) > timingFlops && t.cout > 64 {
            t = ConvGeometry(batch: t.batch, cin: t.cin, cout: max(64, t.cout / 2), spatialIn: [t.iD, t.iH, t.iW],
                             kernel: [t.kD, t.kH, t.kW], stride: [t.sD, t.sH, t.sW], padding: [t.pD, t.pH, t.pW],
                             dilation: [t.dD, t.dH, t.dW])
        }
        for axis in 0..<2 {
            var i = [t.iD, t.iH, t.iW], p = [t.pD, t.pH, t.pW]
            let span = [t.dD * (t.kD - 1), t.dH * (t.kH - 1)][axis] + 1
            let smallest = max(8, span + 3 * [t.sD, t.sH][axis])
            guard flops(t) > timingFlops, i[axis] + 2 * p[axis] > smallest else { continue }
            var extent = i[axis] + 2 * p[axis]
            p[axis] = 0
            while extent / 2 >= smallest {
                extent /= 2
                i[axis] = extent
                let trial = ConvGeometry(batch: t.batch, cin: t.cin, cout: t.cout, spatialIn: i, kernel: [t.kD, t.kH, t.kW],
                                         stride: [t.sD, t.sH, t.sW], padding: p, dilation: [t.dD, t.dH, t.dW])
                if flops(trial) <= timingFlops { break }
            }
            i[axis] = extent
            t = ConvGeometry(batch: t.batch, cin: t.cin, cout: t.cout, spatialIn: i, kernel: [t.kD, t.kH, t.kW],
                             stride: [t.sD, t.sH, t.sW], padding: p, dilation: [t.dD, t.dH, t.dW])
        }
        return t
    }

    /// Seconds of each method on direction `d` of (a reduced) `g`, the best of up to three runs:
    /// every method once, then those within 2× of the best (the first run also pays for page
    /// faults), then those within 30%; `.infinity` for those left out by `planBudget`.
    static func time(_ methods: [ConvMethod], _ g: ConvGeometry, _ d: ConvDirection) -> [(method: ConvMethod, seconds: Double)] {
        let t = timingGeometry(g)
        let inputCount = t.batch * t.cin * t.inPlane, outputCount = t.batch * t.cout * t.outPlane
        let weightCount = t.cout * t.k
        let x = UnsafeMutablePointer<Float>.allocate(capacity: inputCount)
        let y = UnsafeMutablePointer<Float>.allocate(capacity: outputCount)
        let w = UnsafeMutablePointer<Float>.allocate(capacity: weightCount)
        let bias = UnsafeMutablePointer<Float>.allocate(capacity: t.cout)
        defer { x.deallocate(); y.deallocate(); w.deallocate(); bias.deallocate() }
        var state: UInt32 = 12345
        for (p, n) in [(x, inputCount), (y, outputCount), (w, weightCount), (bias, t.cout)] {
            for i in 0..<n {
                state = state &* 1_664_525 &+ 1_013_904_223
                p[i] = Float(state >> 8) / Float(1 << 24) - 0.5
            }
        }
        func run(_ m: ConvMethod) -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            switch d {
            case .forward:
                ConvKernels.forward(t, x: x, weight: ConvWeight(w: w, cout: t.cout, cin: t.cin, taps: t.taps, flipped: false),
                                    bias: bias, y: y, method: m)
            case .inputGradient: ConvKernels.backwardData(t, dy: y, weight: w, dx: x, method: m)
            case .weightGradient: ConvKernels.backwardWeight(t, dy: y, x: x, dw: w, method: m)
            }
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        // Round-robin, so that a burst of load from another process slows every contender alike;
        // past `planBudget` the methods not yet timed are left out (the first one always runs).
        var best = [Double](repeating: .infinity, count: methods.count)
        var alive = Array(methods.indices)
        let start = DispatchTime.now().uptimeNanoseconds
        func overBudget() -> Bool { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 > planBudget }
        for limit in [2.0, 1.3, 0] {
            for i in alive where i == 0 || !overBudget() { best[i] = min(best[i], run(methods[i])) }
            let top = alive.map { best[$0] }.min()!
            alive = alive.filter { best[$0] < limit * top }
            if alive.count < 2 { break }
        }
        return methods.indices.map { (method: methods[$0], seconds: best[$0]) }
    }

    // MARK: - Wisdom

    /// The plans of wisdom text (`key method` lines), or nil when a line is not one.
    static func parse(_ body: String) -> [String: ConvMethod]? {
        var read: [String: ConvMethod] = [:]
        for line in body.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 2, ConvDirection.allCases.contains(where: { fields[0].hasPrefix($0.rawValue + ":b") }),
                  let m = ConvMethod(rawValue: String(fields[1])) else { return nil }
            read[String(fields[0])] = m
        }
        return read
    }

    /// Every plan this process has made by timing or read from wisdom, as wisdom text: what a
    /// checkpoint can keep so that a resumed run computes with the same methods (`pin`).
    public static func exportPlans() -> String {
        lock.lock(); defer { lock.unlock() }
        return measured.sorted().compactMap { k in plans[k].map { "\(k) \($0.rawValue)\n" } }.joined()
    }

    /// Uses the plans of `text` (from `exportPlans`) for their geometries from now on, ahead of
    /// the wisdom file and of timing. Returns false, changing nothing, when `text` is not valid.
    @discardableResult
    public static func pin(_ text: String) -> Bool {
        guard let pinned = parse(text) else { return false }
        lock.lock(); defer { lock.unlock() }
        loadWisdomIfNeeded()
        for (k, m) in pinned {
            plans[k] = m
            measured.insert(k)
        }
        return true
    }

    /// Reads the wisdom file of the current folder once (caller holds `lock`).
    private static func loadWisdomIfNeeded() {
        let folder = Wisdom.folder
        if let loaded = wisdomFolder, loaded == folder { return }
        wisdomFolder = .some(folder)
        guard let body = Wisdom.load(kind: "conv", from: folder) else { return }
        guard let read = parse(body) else {
            Wisdom.note("ignoring corrupt convolution wisdom in \(Wisdom.path(kind: "conv", in: folder!))")
            return
        }
        for (k, m) in read where plans[k] == nil {
            plans[k] = m
            measured.insert(k)
        }
    }

    /// Writes every timed plan to the wisdom file (caller holds `lock`).
    private static func saveWisdom() {
        guard Wisdom.folder != nil else { return }
        Wisdom.save(kind: "conv", body: measured.sorted().compactMap { k in plans[k].map { "\(k) \($0.rawValue)\n" } }.joined())
    }
}
