import COpenBLAS
import LucidCore

/// Engine cases of `lucid bench`: the GEMM ceiling and the convolution layers of the U-Nets.
enum EngineBenchmarks {
    static var cases: [BenchCase] {
        [BenchCase(name: "sgemm", run: sgemm), BenchCase(name: "conv2d", run: conv2d), BenchCase(name: "conv3d", run: conv3d)]
    }

    private static func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return Tensor.randomUniform(shape, low: -0.5, high: 0.5, rng: &rng)
    }

    /// OpenBLAS `cblas_sgemm` (row-major `C = A·B`) at 1 and 2 threads, and Lucid's own
    /// `Gemm.sgemm` (packing `A` included, as OpenBLAS packs inside its call) on the same shapes.
    static func sgemm(_ ctx: BenchContext) throws {
        let shapes: [(String, Int, Int, Int)] = [
            ("square_2048", 2048, 2048, 2048), ("conv2d_32x288x65536", 32, 65536, 288),
            ("conv2d_64x576x16384", 64, 16384, 576), ("conv3d_16x432x131072", 16, 131072, 432),
        ]
        let saved = Threads.count
        defer { Threads.count = saved }
        for (name, m, n, k) in shapes {
            let a = random([m, k], seed: 1), b = random([k, n], seed: 2)
            var c = Tensor(zeros: [m, n])
            let flops = 2 * Double(m) * Double(n) * Double(k)
            let rate: [String: (Double) -> Double] = ["gflops": { flops / $0 / 1e9 }]
            for threads in [1, 2] {
                Threads.count = threads
                let config: [String: Any] = ["m": m, "n": n, "k": k, "library": "openblas"]
                c.withUnsafeMutableBufferPointer { cb in
                    ctx.measure("sgemm_" + name, config: config, rates: rate, repeats: max(5, ctx.repeats / 2)) {
                        Threads.prepareBLAS()
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
                                    a.storage.base, Int32(k), b.storage.base, Int32(n), 0, cb.baseAddress!, Int32(n))
                    }
                }
                for loop in Gemm.Loop.allCases {
                    var lucidConfig = config
                    lucidConfig["library"] = "lucid"
                    lucidConfig["loop"] = loop.rawValue
                    c.withUnsafeMutableBufferPointer { cb in
                        ctx.measure("sgemm_" + name, config: lucidConfig, rates: rate, repeats: max(5, ctx.repeats / 2)) {
                            Gemm.sgemm(m: m, n: n, k: k, a.storage.base, lda: k, b.storage.base, ldb: n, cb.baseAddress!, ldc: n,
                                       loop: loop)
                        }
                    }
                }
            }
        }
    }

    /// One training step of a convolution layer: forward, then input, weight and bias gradients.
    private static func convLayer(_ ctx: BenchContext, name: String, input: [Int], cout: Int, kernel: Int,
                                  inputGradient: Bool = true) throws {
        let sp = input.count - 2
        let x = random(input, seed: 3)
        let w = random([cout, input[1]] + [Int](repeating: kernel, count: sp), seed: 4)
        let b = random([cout], seed: 5)
        let pad = [kernel / 2]
        let pixels = Double(input[0]) * Double(input.dropFirst(2).reduce(1, *))
        let fwd = 2 * pixels * Double(cout * input[1]) * Double(w.count / (cout * input[1]))
        let total = fwd * (inputGradient ? 3 : 2)
        let config: [String: Any] = ["input": input, "cout": cout, "kernel": kernel, "padding": kernel / 2,
                                     "input_gradient": inputGradient]
        let y = try conv(x, weight: w, bias: b, padding: pad)
        let gy = random(y.shape, seed: 6)
        try ctx.measure(name, config: config, rates: ["gflops": { total / $0 / 1e9 }]) {
            _ = try conv(x, weight: w, bias: b, padding: pad)
            if inputGradient { _ = try convBackwardInput(gy, weight: w, inputShape: x.shape, padding: pad) }
            _ = try convBackwardWeight(gy, input: x, weightShape: w.shape, padding: pad)
            _ = try convBackwardBias(gy)
        }
        try ctx.measure(name + "_fwd", config: config, rates: ["gflops": { fwd / $0 / 1e9 }]) {
            _ = try conv(x, weight: w, bias: b, padding: pad)
        }
    }

    /// Conv2d 32→32, 3×3, pad 1, batch 16 of 64×64 (forward + backward, as torch_unet.py's
    /// `conv2d_fwd_bwd`), then the other layer shapes of the 2-D CARE U-Net.
    static func conv2d(_ ctx: BenchContext) throws {
        try convLayer(ctx, name: "conv2d", input: [16, 32, 64, 64], cout: 32, kernel: 3)
        try convLayer(ctx, name: "conv2d_cin1", input: [16, 1, 64, 64], cout: 32, kernel: 3, inputGradient: false)
        try convLayer(ctx, name: "conv2d_64to64", input: [16, 64, 32, 32], cout: 64, kernel: 3)
        try convLayer(ctx, name: "conv2d_128to64", input: [16, 128, 16, 16], cout: 64, kernel: 3)
        try convLayer(ctx, name: "conv2d_1x1_32to1", input: [16, 32, 64, 64], cout: 1, kernel: 1)
    }

    /// Conv3d 16→16, 3×3×3, pad 1, batch 4 of 32×64×64 (the first level of the 3-D U-Net).
    static func conv3d(_ ctx: BenchContext) throws {
        try convLayer(ctx, name: "conv3d", input: [4, 16, 32, 64, 64], cout: 16, kernel: 3)
        try convLayer(ctx, name: "conv3d_cin1", input: [4, 1, 32, 64, 64], cout: 16, kernel: 3, inputGradient: false)
    }
}
