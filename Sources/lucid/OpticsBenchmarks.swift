import Foundation
import LucidCore
import LucidOptics

/// Optics cases of `lucid bench`, on the data of `shared/bench/deconv_bench.py`: a 64×256×256
/// float32 volume of blurred random blobs and a 31³ Gaussian PSF with σ (z, y, x) = (3, 1.5, 1.5).
enum OpticsBenchmarks {
    static var cases: [BenchCase] {
        [
            BenchCase(name: "fftconv3d") { ctx in
                let (volume, psf) = data()
                // Like scipy.signal.fftconvolve(vol, psf, mode="same"): kernel FFT included.
                try ctx.measure("fftconv3d", config: config(["boundary": "zero"])) {
                    _ = try fftConvolve(volume, psf, boundary: .zero)
                }
            },
            BenchCase(name: "rl3d") { ctx in
                let (volume, psf) = data()
                // Circular RL on the native grid, like deconv_bench.py's rl20_*_circ cases.
                let options = RichardsonLucyOptions(iterations: 20, boundary: .periodic)
                try ctx.measure("rl3d", config: config(["iterations": 20, "boundary": "periodic"])) {
                    _ = try Deconvolution.richardsonLucy(volume, psf: psf, options: options)
                }
            },
            BenchCase(name: "rl3d_reflect") { ctx in
                let (volume, psf) = data()
                // Padded RL (96×288×288 grid), comparable to rl20_scipyfft_pad_w2.
                let options = RichardsonLucyOptions(iterations: 20, boundary: .reflect)
                try ctx.measure("rl3d_reflect", config: config(["iterations": 20, "boundary": "reflect"])) {
                    _ = try Deconvolution.richardsonLucy(volume, psf: psf, options: options)
                }
            },
        ]
    }

    private static func config(_ extra: [String: Any]) -> [String: Any] {
        extra.merging(["shape": [64, 256, 256], "psf": [31, 31, 31]]) { a, _ in a }
    }

    /// The benchmark volume and PSF (seeded, not timed).
    static func data() -> (Tensor, Tensor) {
        let psf = gaussianKernel(size: 31, sigma: (3, 1.5, 1.5))
        var rng = RandomGenerator(seed: 0)
        var truth = Tensor(zeros: [64, 256, 256])
        for _ in 0..<400 {
            let z = rng.int(below: 64), y = rng.int(below: 256), x = rng.int(below: 256)
            truth[z, y, x] = 0.2 + 0.8 * rng.uniform()
        }
        let blobs = try! fftConvolve(truth, gaussianKernel(size: 13, sigma: (1, 2, 2)))
        let peak = blobs.scalars.max()!
        var volume = try! fftConvolve(blobs, psf)
        volume.withUnsafeMutableBufferPointer { v in
            for i in v.indices { v[i] = max(0, (0.8 * v[i] / peak + 0.01) + 0.005 * rng.normal()) }
        }
        return (volume, psf)
    }

    private static func gaussianKernel(size: Int, sigma: (Float, Float, Float)) -> Tensor {
        var k = Tensor(uninitialized: [size, size, size])
        let c = Float(size / 2)
        var sum: Float = 0
        k.withUnsafeMutableBufferPointer { p in
            var i = 0
            for z in 0..<size { for y in 0..<size { for x in 0..<size {
                let dz = (Float(z) - c) / sigma.0, dy = (Float(y) - c) / sigma.1, dx = (Float(x) - c) / sigma.2
                p[i] = expf(-0.5 * (dz * dz + dy * dy + dx * dx))
                sum += p[i]
                i += 1
            }}}
            for j in p.indices { p[j] /= sum }
        }
        return k
    }
}
