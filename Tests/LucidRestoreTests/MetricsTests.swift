import Foundation
import XCTest
import LucidCore
@testable import LucidRestore

final class MetricsTests: XCTestCase {
    private func noisy(_ ref: Tensor, std: Float, seed: UInt64) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return try! Tensor(shape: ref.shape, scalars: ref.scalars.map { $0 + std * rng.normal() })
    }

    /// A smooth image with structure plus a little texture, `offset` added.
    private func scene(_ shape: [Int], offset: Float = 0, seed: UInt64 = 1) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        let n = shape.reduce(1, *)
        var values = [Float](repeating: 0, count: n)
        let strides = Tensor.strides(of: shape)
        for i in 0..<n {
            var phase: Float = 0
            for (axis, s) in strides.enumerated() { phase += Float((i / s) % shape[axis]) * Float(axis + 1) * 0.37 }
            values[i] = offset + 10 * sin(phase) + 12 + rng.uniform()
        }
        return try! Tensor(shape: shape, scalars: values)
    }

    func testIdenticalImages() throws {
        let ref = scene([20, 24])
        XCTAssertEqual(try Metrics.ssim(ref, reference: ref), 1, accuracy: 1e-12)
        XCTAssertEqual(try Metrics.psnr(ref, reference: ref), .infinity)
        XCTAssertEqual(try Metrics.nrmse(ref, reference: ref), 0)
        XCTAssertEqual(try Metrics.pearson(ref, reference: ref), 1, accuracy: 1e-12)
        let report = try Metrics.evaluate(ref, reference: ref)
        XCTAssertEqual(report.json(), "{\"psnr\": Infinity, \"ssim\": \(report.ssim), \"nrmse\": 0.0, \"pearson\": \(report.pearson)}")
    }

    func testHandCheckableValues() throws {
        let ref = try Tensor(shape: [10, 10], scalars: (0..<100).map(Float.init))
        let shifted = try Tensor(shape: [10, 10], scalars: ref.scalars.map { $0 + 0.5 })
        // MSE 0.25, range max − min = 99.
        XCTAssertEqual(try Metrics.psnr(shifted, reference: ref), 10 * log10(99.0 * 99.0 / 0.25), accuracy: 1e-9)
        XCTAssertEqual(try Metrics.psnr(shifted, reference: ref, dataRange: 255), 10 * log10(255.0 * 255.0 / 0.25), accuracy: 1e-9)
        XCTAssertEqual(try Metrics.pearson(shifted, reference: ref), 1, accuracy: 1e-12)
        let flipped = try Tensor(shape: [10, 10], scalars: ref.scalars.map { 7 - 2 * $0 })
        XCTAssertEqual(try Metrics.pearson(flipped, reference: ref), -1, accuracy: 1e-12)
        let twos = Tensor(shape: [4, 4], repeating: 2), threes = Tensor(shape: [4, 4], repeating: 3)
        XCTAssertEqual(try Metrics.nrmse(threes, reference: twos), 0.5, accuracy: 1e-12)   // 1 / √4
        XCTAssertEqual(try Metrics.nrmse(threes, reference: twos, normalization: .mean), 0.5, accuracy: 1e-12)  // 1 / 2
        XCTAssertEqual(try Metrics.nrmse(shifted, reference: ref, normalization: .minMax), 0.5 / 99, accuracy: 1e-12)
        XCTAssertTrue(try Metrics.pearson(threes, reference: twos).isNaN)
    }

    /// SSIM against a direct (non-separable) sum over the 11^d Gaussian window on the cropped region.
    func testSSIMMatchesNaiveWindowSum() throws {
        for shape in [[13, 17], [12, 11, 14]] {
            let ref = scene(shape, seed: 3)
            let pred = noisy(ref, std: 2, seed: 4)
            let range = 25.0
            XCTAssertEqual(try Metrics.ssim(pred, reference: ref, dataRange: range),
                           naiveSSIM(ref, pred, range: range), accuracy: 1e-10, "\(shape)")
        }
    }

    private func naiveSSIM(_ x: Tensor, _ y: Tensor, range: Double) -> Double {
        let g = (-5...5).map { exp(-0.5 * Double($0 * $0) / 2.25) }
        let gs = g.reduce(0, +)
        let w = g.map { $0 / gs }
        let shape = x.rank == 2 ? [1] + x.shape : x.shape
        let (d, h, wd) = (shape[0], shape[1], shape[2])
        let zs = x.rank == 2 ? 0..<1 : 5..<(d - 5)
        let c1 = pow(0.01 * range, 2), c2 = pow(0.03 * range, 2)
        let xs = x.scalars, ys = y.scalars
        var total = 0.0, count = 0
        for z in zs { for i in 5..<(h - 5) { for j in 5..<(wd - 5) {
            var mx = 0.0, my = 0.0, mxx = 0.0, myy = 0.0, mxy = 0.0
            for dz in (x.rank == 2 ? 0...0 : -5...5) { for di in -5...5 { for dj in -5...5 {
                let weight = (x.rank == 2 ? 1 : w[dz + 5]) * w[di + 5] * w[dj + 5]
                let k = ((z + dz) * h + i + di) * wd + j + dj
                let a = Double(xs[k]), b = Double(ys[k])
                mx += weight * a; my += weight * b; mxx += weight * a * a; myy += weight * b * b; mxy += weight * a * b
            } } }
            let vx = mxx - mx * mx, vy = myy - my * my, vxy = mxy - mx * my
            total += (2 * mx * my + c1) * (2 * vxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
            count += 1
        } } }
        return total / Double(count)
    }

    func testAgreesWithScikitImage() throws {
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = ["python3", "-c", "import skimage, numpy"]
        probe.standardError = FileHandle.nullDevice
        guard (try? probe.run()) != nil else { throw XCTSkip("python3 is not available") }
        probe.waitUntilExit()
        guard probe.terminationStatus == 0 else { throw XCTSkip("python3 cannot import skimage and numpy") }

        struct Case { let ref: Tensor; let pred: Tensor; let range: Double }
        let r2 = scene([23, 31], seed: 5), r3 = scene([13, 17, 19], seed: 6), big = scene([16, 20], offset: 1000, seed: 7)
        let cases = [
            Case(ref: r2, pred: noisy(r2, std: 3, seed: 8), range: 22.5),
            Case(ref: r3, pred: noisy(r3, std: 1, seed: 9), range: 30),
            Case(ref: big, pred: noisy(big, std: 0.5, seed: 10), range: 4095),
            Case(ref: scene([11, 11], seed: 11), pred: scene([11, 11], seed: 12), range: 1),
        ]
        let payload = cases.map { c -> [String: Any] in
            ["shape": c.ref.shape, "ref": c.ref.scalars.map(Double.init), "pred": c.pred.scalars.map(Double.init),
             "range": c.range]
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lucid-metrics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("cases.json")
        try JSONSerialization.data(withJSONObject: payload).write(to: input)
        let script = """
        import json, sys, numpy as np
        from skimage.metrics import structural_similarity, peak_signal_noise_ratio, normalized_root_mse
        out = []
        for c in json.load(open(sys.argv[1])):
            ref = np.array(c['ref'], dtype=np.float64).reshape(c['shape'])
            pred = np.array(c['pred'], dtype=np.float64).reshape(c['shape'])
            r = c['range']
            out.append(dict(
                psnr=peak_signal_noise_ratio(ref, pred, data_range=r),
                psnr_maxmin=peak_signal_noise_ratio(ref, pred, data_range=ref.max() - ref.min()),
                ssim=structural_similarity(ref, pred, data_range=r, gaussian_weights=True, sigma=1.5,
                                           use_sample_covariance=False),
                nrmse=normalized_root_mse(ref, pred),
                nrmse_minmax=normalized_root_mse(ref, pred, normalization='min-max'),
                nrmse_mean=normalized_root_mse(ref, pred, normalization='mean'),
                pearson=float(np.corrcoef(ref.ravel(), pred.ravel())[0, 1])))
        print(json.dumps(out))
        """
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", script, input.path]
        let pipe = Pipe()
        python.standardOutput = pipe
        try python.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        python.waitUntilExit()
        XCTAssertEqual(python.terminationStatus, 0)
        let expected = try XCTUnwrap(JSONSerialization.jsonObject(with: output) as? [[String: Double]])
        XCTAssertEqual(expected.count, cases.count)
        for (c, e) in zip(cases, expected) {
            let tag = "\(c.ref.shape)"
            XCTAssertEqual(try Metrics.psnr(c.pred, reference: c.ref, dataRange: c.range), e["psnr"]!, accuracy: 1e-4, tag)
            XCTAssertEqual(try Metrics.psnr(c.pred, reference: c.ref), e["psnr_maxmin"]!, accuracy: 1e-4, tag)
            XCTAssertEqual(try Metrics.ssim(c.pred, reference: c.ref, dataRange: c.range), e["ssim"]!, accuracy: 1e-4, tag)
            XCTAssertEqual(try Metrics.nrmse(c.pred, reference: c.ref), e["nrmse"]!, accuracy: 1e-4, tag)
            XCTAssertEqual(try Metrics.nrmse(c.pred, reference: c.ref, normalization: .minMax), e["nrmse_minmax"]!,
                           accuracy: 1e-4, tag)
            XCTAssertEqual(try Metrics.nrmse(c.pred, reference: c.ref, normalization: .mean), e["nrmse_mean"]!,
                           accuracy: 1e-4, tag)
            XCTAssertEqual(try Metrics.pearson(c.pred, reference: c.ref), e["pearson"]!, accuracy: 1e-4, tag)
        }
    }

    func testBadInputsThrowNamingTheOp() {
        let a = Tensor(zeros: [12, 12]), b = Tensor(zeros: [12, 13])
        XCTAssertThrowsError(try Metrics.psnr(a, reference: b)) { e in
            XCTAssertEqual("\(e)", "psnr: shape mismatch: prediction [12, 12] vs reference [12, 13]")
        }
        XCTAssertThrowsError(try Metrics.ssim(Tensor(zeros: [10, 40]), reference: Tensor(zeros: [10, 40]), dataRange: 1)) { e in
            XCTAssertEqual("\(e)", "ssim: invalid argument: image shape [10, 40] is smaller than the 11-pixel window along an axis")
        }
        XCTAssertThrowsError(try Metrics.ssim(Tensor(zeros: [40]), reference: Tensor(zeros: [40]), dataRange: 1)) { e in
            XCTAssertEqual("\(e)", "ssim: invalid argument: images of shape [40] are not 2D or 3D")
        }
        XCTAssertThrowsError(try Metrics.psnr(a, reference: a)) { e in
            XCTAssertEqual("\(e)", "psnr: invalid argument: the reference is constant (0.0), so its data range is 0: pass dataRange")
        }
        XCTAssertThrowsError(try Metrics.nrmse(a, reference: a)) { e in
            XCTAssertEqual("\(e)", "nrmse: invalid argument: the euclidean normalization of the reference is 0")
        }
    }

    func testSpearmanRanks() throws {
        let a = try Tensor(shape: [6], scalars: [1, 5, 2, 9, 3, 4])
        XCTAssertEqual(try Metrics.spearman(a, a.map { $0 * $0 * $0 + 7 }), 1, accuracy: 1e-12)
        XCTAssertEqual(try Metrics.spearman(a, a.map { -$0 }), -1, accuracy: 1e-12)
        // Ties take their mean rank: ranks [0.5, 0.5, 2, 3] against [0, 1, 2, 3].
        let tied = try Tensor(shape: [4], scalars: [1, 1, 2, 3]), ordered = try Tensor(shape: [4], scalars: [0, 1, 2, 3])
        let r = try Metrics.spearman(tied, ordered)
        let ra = [0.5, 0.5, 2, 3], rb = [0.0, 1, 2, 3]
        let ma = ra.reduce(0, +) / 4, mb = rb.reduce(0, +) / 4
        let num = zip(ra, rb).map { ($0 - ma) * ($1 - mb) }.reduce(0, +)
        let den = (ra.map { ($0 - ma) * ($0 - ma) }.reduce(0, +) * rb.map { ($0 - mb) * ($0 - mb) }.reduce(0, +)).squareRoot()
        XCTAssertEqual(r, num / den, accuracy: 1e-6)
        XCTAssertThrowsError(try Metrics.spearman(a, tied))
    }
}
