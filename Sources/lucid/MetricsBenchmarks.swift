import LucidCore
import LucidRestore

/// `lucid bench` cases for the evaluation metrics (`lucid evaluate`).
enum MetricsBenchmarks {
    static var cases: [BenchCase] {
        [BenchCase(name: "metrics") { ctx in
            var rng = RandomGenerator(seed: 1)
            for shape in [[2048, 2048], [64, 512, 512]] {
                let reference = Tensor.randomUniform(shape, rng: &rng)
                let prediction = Tensor.randomUniform(shape, rng: &rng)
                let pixels = Double(reference.count)
                let config: [String: Any] = ["shape": shape]
                let rate: [String: (Double) -> Double] = ["mpixels_per_s": { pixels / $0 / 1e6 }]
                try ctx.measure("metrics.ssim", config: config, rates: rate, repeats: 5) {
                    _ = try Metrics.ssim(prediction, reference: reference, dataRange: 1)
                }
                try ctx.measure("metrics.psnr_nrmse_pearson", config: config, rates: rate, repeats: 5) {
                    _ = try Metrics.psnr(prediction, reference: reference, dataRange: 1)
                    _ = try Metrics.nrmse(prediction, reference: reference)
                    _ = try Metrics.pearson(prediction, reference: reference)
                }
            }
        }]
    }
}
