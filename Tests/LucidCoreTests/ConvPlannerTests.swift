import Foundation
import XCTest
@testable import LucidCore

/// Every convolution method the planner may choose, against the naive reference; the planner's
/// choices, its wisdom file (round trip, corrupt and foreign files) and its timing geometry.
final class ConvPlannerTests: XCTestCase {
    /// Direction `d` of the convolution of `x` by `w` computed by `method`.
    private func run(_ method: ConvMethod, _ d: ConvDirection, _ g: ConvGeometry, x: Tensor, w: Tensor, bias: Tensor,
                     gy: Tensor) -> Tensor {
        switch d {
        case .forward:
            var y = Tensor(zeros: gy.shape)
            y.withUnsafeMutableBufferPointer { yb in
                ConvKernels.forward(g, x: x.storage.base, weight: ConvWeight(w: w.storage.base, cout: g.cout, cin: g.cin, taps: g.taps, flipped: false),
                                    bias: bias.storage.base, y: yb.baseAddress!, method: method)
            }
            return y
        case .inputGradient:
            var dx = Tensor(ones: x.shape)
            dx.withUnsafeMutableBufferPointer { ConvKernels.backwardData(g, dy: gy.storage.base, weight: w.storage.base, dx: $0.baseAddress!, method: method) }
            return dx
        case .weightGradient:
            var dw = Tensor(ones: w.shape)
            dw.withUnsafeMutableBufferPointer { ConvKernels.backwardWeight(g, dy: gy.storage.base, x: x.storage.base, dw: $0.baseAddress!, method: method) }
            return dw
        }
    }

    /// Odd shapes of every rank, strides, paddings and dilations, partial 8-row panels and
    /// 48-column tiles, K blocks (K > 256), and small images with many channels.
    let cases: [([Int], [Int], [Int], [Int], [Int])] = [
        ([2, 3, 17], [5, 3, 3], [1], [1], [1]),
        ([2, 3, 19], [4, 3, 4], [2], [0], [2]),
        ([2, 3, 9, 11], [11, 3, 3, 3], [1], [1], [1]),
        ([1, 4, 10, 7], [6, 4, 3, 2], [2, 1], [1, 0], [1, 2]),
        ([1, 30, 6, 50], [9, 30, 3, 3], [1], [1], [1]),
        ([2, 5, 8, 8], [7, 5, 1, 1], [1], [0], [1]),
        ([3, 5, 3, 5], [130, 5, 3, 3], [1], [1], [1]),
        ([1, 3, 6, 8, 9], [5, 3, 3, 3, 3], [1], [1], [1]),
        ([2, 2, 7, 6, 9], [3, 2, 2, 3, 3], [2, 1, 2], [0, 1, 1], [1, 2, 1]),
        ([2, 3, 2, 3, 4], [17, 3, 3, 3, 3], [1], [1], [1]),
    ]

    func testEveryCandidateMatchesTheReferenceInEveryDirection() throws {
        var rng = RandomGenerator(seed: 31)
        let savedChunk = BatchedColumns.chunkFloats
        defer { BatchedColumns.chunkFloats = savedChunk }
        var checked: [ConvMethod: Int] = [:]
        for (xs, ws, s, p, d) in cases {
            let sp = xs.count - 2
            let g = try convGeometry(op: "test", input: xs, weight: ws, stride: s, padding: p, dilation: d)
            let x = Tensor.randomNormal(xs, rng: &rng), w = Tensor.randomNormal(ws, rng: &rng)
            let bias = Tensor.randomNormal([ws[0]], rng: &rng)
            let ref = ReferenceConv(xs: lead5(xs), ws: lead5(ws), s: lead3(s, count: sp, fill: 1),
                                    p: lead3(p, count: sp, fill: 0), d: lead3(d, count: sp, fill: 1))
            let ys = Array(ref.os.prefix(2)) + Array(ref.os.suffix(sp))
            let gy = Tensor.randomNormal(ys, rng: &rng)
            let plane = ref.os.suffix(3).reduce(1, *)
            let xv = x.scalars.map(Double.init), wv = w.scalars.map(Double.init), gv = gy.scalars.map(Double.init)
            let bv = bias.scalars.map(Double.init)
            var y = (0..<gy.count).map { bv[($0 / plane) % ws[0]] }
            var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
            ref.forEachTerm { xi, wi, yi in
                y[yi] += xv[xi] * wv[wi]
                dx[xi] += wv[wi] * gv[yi]
                dw[wi] += xv[xi] * gv[yi]
            }
            let expected: [ConvDirection: [Double]] = [.forward: y, .inputGradient: dx, .weightGradient: dw]
            for direction in ConvDirection.allCases {
                let methods = ConvPlanner.candidates(g, direction)
                XCTAssertTrue(methods.contains(ConvPlanner.heuristic(g, direction)))
                XCTAssertTrue(methods.contains { $0.rawValue.hasSuffix("BLAS") }, "OpenBLAS is a candidate of \(direction)")
                for method in methods {
                    // Batched columns also in chunks of two output rows (crossing images).
                    for chunk in method.rawValue.hasPrefix("batched") ? [savedChunk, 2 * max(g.k, g.cout * g.taps) * g.oW] : [savedChunk] {
                        BatchedColumns.chunkFloats = chunk
                        let out = run(method, direction, g, x: x, w: w, bias: bias, gy: gy)
                        assertClose(out, expected[direction]!, tolerance: 1e-4,
                                    "\(method) \(direction) x \(xs) w \(ws) s \(s) p \(p) d \(d) chunk \(chunk)")
                        checked[method, default: 0] += 1
                    }
                    BatchedColumns.chunkFloats = savedChunk
                }
            }
        }
        XCTAssertEqual(Set(checked.keys), Set(ConvMethod.allCases), "every method was checked")
        XCTAssertGreaterThan(checked.values.reduce(0, +), 150)
    }

    /// The timing geometry keeps channels, kernel, stride, padding and dilation, and shrinks
    /// batch, then depth and height (slabs of 8 planes or rows at least, unpadded), towards
    /// `timingFlops`.
    func testTimingGeometryIsSmallAndKeepsTheLayer() throws {
        let g = try convGeometry(op: "test", input: [4, 16, 32, 64, 64], weight: [16, 16, 3, 3, 3], stride: [1], padding: [1], dilation: [1])
        let t = ConvPlanner.timingGeometry(g)
        XCTAssertEqual(t.batch, 1)
        XCTAssertEqual([t.cin, t.cout, t.kD, t.kH, t.kW, t.pW, t.iW], [16, 16, 3, 3, 3, 1, 64])
        XCTAssertEqual([t.iD, t.pD], [8, 0], "a slab of 8 planes from the middle: no padding in depth")
        XCTAssertGreaterThanOrEqual(t.iH, 8)
        XCTAssertLessThanOrEqual(2 * Double(t.outPlane * t.cout * t.k), 2 * ConvPlanner.timingFlops)
        let small = try convGeometry(op: "test", input: [2, 32, 4, 8, 8], weight: [32, 32, 3, 3, 3], stride: [1], padding: [1], dilation: [1])
        XCTAssertEqual(ConvPlanner.timingGeometry(small).batch, 2, "a small layer is timed as it is")
    }

    // MARK: - Wisdom

    private func temporaryFolder() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lucid-wisdom-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    /// The notes `Wisdom` reported.
    private final class Notes: @unchecked Sendable { var lines: [String] = [] }

    /// Runs `body` with the planner measuring, wisdom in `folder` and notes collected.
    private func withPlanner(folder: String?, _ body: (Notes) throws -> Void) rethrows {
        let (savedFolder, savedMode, savedHandler) = (Wisdom.folder, ConvPlanner.mode, Wisdom.noteHandler)
        let notes = Notes()
        Wisdom.folder = folder
        ConvPlanner.mode = .measure
        ConvPlanner.clearPlans()
        Wisdom.noteHandler = { notes.lines.append($0) }
        defer {
            Wisdom.folder = savedFolder
            ConvPlanner.mode = savedMode
            Wisdom.noteHandler = savedHandler
            ConvPlanner.clearPlans()
        }
        try body(notes)
    }

    private let layer = (x: [2, 8, 12, 12], w: [8, 8, 3, 3])

    private func geometry() throws -> ConvGeometry {
        try convGeometry(op: "test", input: layer.x, weight: layer.w, stride: [1], padding: [1], dilation: [1])
    }

    func testWisdomRoundTripReusesThePlanWithoutTiming() throws {
        let folder = try temporaryFolder()
        try withPlanner(folder: folder) { notes in
            let g = try geometry()
            let first = ConvPlanner.method(for: g, .forward)
            XCTAssertTrue(ConvPlanner.candidates(g, .forward).contains(first))
            let file = Wisdom.path(kind: "conv", in: folder)
            let text = try String(contentsOfFile: file, encoding: .utf8)
            let key = ConvPlanner.key(g, .forward, threads: Threads.count)
            XCTAssertTrue(text.hasPrefix(Wisdom.header(kind: "conv") + "\n"), text)
            XCTAssertTrue(text.contains("\(key) \(first.rawValue)\n"), text)
            XCTAssertTrue(file.contains(lucidVersion), file)

            // A new process (plans forgotten) takes the plan from the file: rewrite it to another
            // valid method and it is used as written, without timing.
            let other = ConvPlanner.candidates(g, .forward).first { $0 != first }!
            try text.replacingOccurrences(of: "\(key) \(first.rawValue)", with: "\(key) \(other.rawValue)")
                .write(toFile: file, atomically: true, encoding: .utf8)
            ConvPlanner.clearPlans()
            let timedBefore = ConvPlanner.planningTime.plans
            XCTAssertEqual(ConvPlanner.method(for: g, .forward), other)
            XCTAssertEqual(ConvPlanner.planningTime.plans, timedBefore)
            XCTAssertEqual(notes.lines, [])
        }
    }

    func testCorruptOrForeignWisdomIsIgnoredWithANote() throws {
        let folder = try temporaryFolder()
        let file = Wisdom.path(kind: "conv", in: folder)
        let g = try geometry()
        for (content, expected) in [
            (Wisdom.header(kind: "conv") + "\nfwd:b2 paddedGrid extra\n\u{1}garbage", "ignoring corrupt convolution wisdom"),
            (Wisdom.header(kind: "conv") + "\n\(ConvPlanner.key(g, .forward, threads: Threads.count)) noSuchMethod\n", "ignoring corrupt convolution wisdom"),
            ("lucid-wisdom conv lucid=0.0.1 isa=avx2 cpu=Some Other CPU\nfwd:x columns\n", "is not '\(Wisdom.header(kind: "conv"))'"),
            ("\u{0}\u{1}binary", "ignoring wisdom file"),
        ] {
            try withPlanner(folder: folder) { notes in
                try content.write(toFile: file, atomically: true, encoding: .utf8)
                let m = ConvPlanner.method(for: g, .forward)
                XCTAssertTrue(ConvPlanner.candidates(g, .forward).contains(m))
                XCTAssertEqual(notes.lines.count, 1, "\(notes.lines)")
                XCTAssertTrue(notes.lines.first?.contains(expected) == true, "\(notes.lines)")
                XCTAssertTrue(notes.lines.first?.contains(file) == true, "the note names the file: \(notes.lines)")
                // The planner replaced the bad file with a good one.
                XCTAssertTrue(try String(contentsOfFile: file, encoding: .utf8).hasPrefix(Wisdom.header(kind: "conv")))
            }
        }
    }

    /// Plans exported by one run and pinned in the next are used as exported (what a resumed
    /// training run needs), ahead of timing; invalid text is refused.
    func testPinnedPlansAreUsedAsExported() throws {
        try withPlanner(folder: nil) { _ in
            let g = try geometry()
            var chosen: [ConvDirection: ConvMethod] = [:]
            for d in ConvDirection.allCases { chosen[d] = ConvPlanner.method(for: g, d) }
            let exported = ConvPlanner.exportPlans()
            XCTAssertEqual(exported.split(separator: "\n").count, 3, exported)
            // Another run would time again; pin a different valid method to see the pin win.
            let other = ConvPlanner.candidates(g, .forward).first { $0 != chosen[.forward] }!
            let edited = exported.replacingOccurrences(of: "\(ConvPlanner.key(g, .forward, threads: Threads.count)) \(chosen[.forward]!.rawValue)",
                                                       with: "\(ConvPlanner.key(g, .forward, threads: Threads.count)) \(other.rawValue)")
            ConvPlanner.clearPlans()
            XCTAssertFalse(ConvPlanner.pin("fwd:b1 paddedGrid\nnot a plan"))
            XCTAssertTrue(ConvPlanner.pin(edited))
            let timed = ConvPlanner.planningTime.plans
            XCTAssertEqual(ConvPlanner.method(for: g, .forward), other)
            XCTAssertEqual(ConvPlanner.method(for: g, .weightGradient), chosen[.weightGradient])
            XCTAssertEqual(ConvPlanner.method(for: g, .inputGradient), chosen[.inputGradient])
            XCTAssertEqual(ConvPlanner.planningTime.plans, timed, "no timing")
        }
    }

    func testEstimateModeUsesTheHeuristicWithoutTiming() throws {
        try withPlanner(folder: nil) { _ in
            ConvPlanner.mode = .estimate
            let g = try geometry()
            let before = ConvPlanner.planningTime.plans
            for d in ConvDirection.allCases { XCTAssertEqual(ConvPlanner.method(for: g, d), ConvPlanner.heuristic(g, d)) }
            XCTAssertEqual(ConvPlanner.planningTime.plans, before)
        }
    }
}
