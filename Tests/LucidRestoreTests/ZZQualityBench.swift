import Foundation
import LucidAutograd
import LucidCore
import LucidImaging
import LucidNN
import XCTest
@testable import LucidRestore

/// Opt-in quality run against ../shared/bench/deep_n2s.py (LUCID_QUALITY_DIR=folder, LUCID_QUALITY_METHOD=n2s|n2v).
final class ZZQualityBench: XCTestCase {
    func testQualityAgainstReference() throws {
        guard let dir = ProcessInfo.processInfo.environment["LUCID_QUALITY_DIR"] else { throw XCTSkip("opt-in") }
        let method = ProcessInfo.processInfo.environment["LUCID_QUALITY_METHOD"] ?? "n2s"
        let steps = Int(ProcessInfo.processInfo.environment["LUCID_QUALITY_STEPS"] ?? "1000")!
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let clean: Tensor
        if FileManager.default.fileExists(atPath: dir + "/clean.tif") {
            clean = try Image.read(dir + "/clean.tif").data
        } else {
            clean = try SyntheticSpecimen(shape: [512, 512], seed: 1).render()
            var rng = RandomGenerator(seed: 77)
            var noisy = clean.copy()
            let photons: Float = 20, read: Float = 2
            noisy.withUnsafeMutableBufferPointer { b in
                for i in b.indices {
                    let lambda = Double(photons * b[i])
                    // Knuth's Poisson sampler (λ ≤ 20 here).
                    let limit = exp(-lambda)
                    var k = -1, p = 1.0
                    repeat { k += 1; p *= Double(rng.uniform()) } while p > limit
                    b[i] = (Float(k) + read * rng.normal()) / photons
                }
            }
            try Image(data: noisy, axes: "YX").write(to: dir + "/noisy.tif")
            try Image(data: clean, axes: "YX").write(to: dir + "/clean.tif")
        }
        let noisy = try Image.read(dir + "/noisy.tif").data
        let section = method == "n2s" ? "method: noise2self\nnoise2self: {grid: 4, replacement: interpolate}"
            : "method: noise2void\nnoise2void: {pixel_fraction: 0.002, neighborhood: 5}"
        let out = dir + "/out-\(method)-\(UUID().uuidString.prefix(6))"
        let yaml = """
            \(section)
            data: {train: "\(dir)/noisy.tif", axes: YX, patch: [64, 64], validation: 0, augment: true, normalize: {mode: none}}
            model: {depth: 2, filters: 32, kernel: 3, residual: false, norm: none}
            training: {steps: \(steps), batch: 8, lr: 1.0e-3, seed: \(ProcessInfo.processInfo.environment["LUCID_QUALITY_SEED"] ?? "1234"), schedule: none, validate_every: \(steps)}
            output: \(out)
            """
        let trainer = Trainer(recipe: try Recipe.parse(yaml: yaml), output: out)
        let summary = try trainer.run()
        let net = try Checkpoint.load(directory: out).makeModel(weights: .last)
        net.setTraining(false)
        let started = Date()
        let y = try noGrad { try net(Variable(noisy.reshaped([1, 1, 512, 512]))).value }.reshaped([512, 512])
        let predictSeconds = Date().timeIntervalSince(started)
        let psnr = try Metrics.psnr(y, reference: clean, dataRange: 1)
        let ssim = try Metrics.ssim(y, reference: clean, dataRange: 1)
        let noisyPSNR = try Metrics.psnr(noisy, reference: clean, dataRange: 1)
        print("QUALITY {\"method\": \"\(method)\", \"steps\": \(summary.step), \"patches_per_s\": \(summary.patchesPerSecond), \"psnr\": \(psnr), \"ssim\": \(ssim), \"noisy_psnr\": \(noisyPSNR), \"predict_s\": \(predictSeconds), \"final_loss_avg100\": \(summary.losses.suffix(100).reduce(0, +) / Float(min(100, summary.losses.count)))}")
    }
}
