import LucidAutograd
import LucidCore
import LucidNN

/// Whole-network cases of `lucid bench`: U-Net training steps (forward, MSE, backward, Adam)
/// and 2-D prediction, on the nets of `shared/bench/torch_unet.py` and pytorch_fnet.
enum NetworkBenchmarks {
    static var cases: [BenchCase] {
        [BenchCase(name: "unet2d_train") { try train($0, name: "unet2d_train", config: .care2D, batch: 16, patch: [64, 64], lr: 4e-4) },
         BenchCase(name: "unet2d_predict", run: predict2D),
         BenchCase(name: "unet3d_train") { try train($0, name: "unet3d_train", config: .unet3D, batch: 4, patch: [32, 64, 64], lr: 1e-3) },
         BenchCase(name: "fnet3d_train") { try train($0, name: "fnet3d_train", config: .fnet3D, batch: 4, patch: [32, 64, 64], lr: 1e-3) }]
    }

    private static func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return Tensor.randomUniform(shape, rng: &rng)
    }

    /// One optimizer step per repeat on a fixed batch of uniform noise (input and target).
    /// 3-D cases take seconds a step, so they time 5 repeats whatever `--repeats` says.
    static func train(_ ctx: BenchContext, name: String, config: UNetConfig, batch: Int, patch: [Int], lr: Double) throws {
        var rng = RandomGenerator(seed: 0)
        let net = try UNet(config, rng: &rng)
        let opt = try Adam(parameters: net.namedParameters, learningRate: lr)
        let shape = [batch, config.inChannels] + patch
        let x = Variable(random(shape, seed: 1))
        let y = Variable(random([batch, config.outChannels] + patch, seed: 2))
        let conf: [String: Any] = ["batch": batch, "patch": patch, "params": net.parameterCount, "depth": config.depth,
                                   "first_filters": config.firstFilters, "norm": config.norm.rawValue,
                                   "pooling": config.pooling.rawValue, "upsampling": config.upsampling.rawValue,
                                   "optimizer": "adam", "loss": "mse"]
        let heavy = patch.count == 3
        func step() throws {
            opt.zeroGrad()
            let loss = try mseLoss(net(x), y)
            try loss.backward()
            try opt.step()
        }
        // The first step plans every convolution of the net (timed apart, reported in the config).
        var planned = conf
        let before = ConvPlanner.planningTime
        try step()
        let after = ConvPlanner.planningTime
        planned["planning_s"] = after.seconds - before.seconds
        planned["plans_timed"] = after.plans - before.plans
        try ctx.measure(name, config: planned, rates: ["patches_per_s": { Double(batch) / $0 }],
                        repeats: heavy ? 5 : nil, step)
    }

    /// The CARE net on one 512×512 image, without recording gradients.
    static func predict2D(_ ctx: BenchContext) throws {
        var rng = RandomGenerator(seed: 0)
        let net = try UNet(.care2D, rng: &rng)
        net.setTraining(false)
        let x = Variable(random([1, 1, 512, 512], seed: 3))
        try ctx.measure("unet2d_predict", config: ["shape": [1, 1, 512, 512], "no_grad": true, "params": net.parameterCount],
                        rates: ["mpix_per_s": { 512 * 512 / $0 / 1e6 }]) {
            _ = try noGrad { try net(x) }
        }
    }
}
