import Foundation
import LucidTestSupport
import XCTest
import LucidAutograd
import LucidCore
@testable import LucidNN

final class UNetTests: XCTestCase {
    /// Parameters of a PyTorch `ConvNd(a, b, k)` (+ bias) in `dims` dimensions.
    func convParams(_ a: Int, _ b: Int, k: Int, dims: Int, bias: Bool = true) -> Int {
        a * b * Int(pow(Double(k), Double(dims))) + (bias ? b : 0)
    }

    func testCARE2DChannelPlanAndParameterCount() throws {
        var rng = RandomGenerator(seed: 0)
        let net = try UNet(.care2D, rng: &rng)
        // The torch_unet.py plan, by hand: d0 1→32→32, d1 32→64→64, mid 64→128→64,
        // u1 128→64→32, u0 64→32→32, out 1×1 32→1.
        let f = 32
        let plan = [(1, f), (f, f), (f, 2 * f), (2 * f, 2 * f), (2 * f, 4 * f), (4 * f, 2 * f),
                    (4 * f, 2 * f), (2 * f, f), (2 * f, f), (f, f)]
        let expected = plan.reduce(0) { $0 + convParams($1.0, $1.1, k: 3, dims: 2) } + convParams(f, 1, k: 1, dims: 2)
        XCTAssertEqual(net.parameterCount, expected)
        XCTAssertEqual(expected, 332_641)
        XCTAssertEqual(Array(net.namedParameters.map(\.name).prefix(4)), ["d0.0.conv.weight", "d0.0.conv.bias", "d0.1.conv.weight", "d0.1.conv.bias"])
        XCTAssertEqual(net.namedParameters.last?.name, "out.bias")
        let shapes = Dictionary(uniqueKeysWithValues: net.namedParameters.map { ($0.name, $0.parameter.shape) })
        XCTAssertEqual(shapes["mid.1.conv.weight"], [64, 128, 3, 3])
        XCTAssertEqual(shapes["u1.0.conv.weight"], [64, 128, 3, 3])
        XCTAssertEqual(shapes["u0.1.conv.weight"], [32, 32, 3, 3])
        XCTAssertEqual(shapes["out.weight"], [1, 32, 1, 1])
    }

    func testFnet3DParameterCountMatchesPytorchFnetByHand() throws {
        var rng = RandomGenerator(seed: 0)
        let net = try UNet(.fnet3D, rng: &rng)
        // pytorch_fnet (depth 4, mult_chan 32): per level i with n = 32·2ⁱ: 2×(conv3 + BN) down,
        // conv_down k2 s2 + BN, convt k2 s2 (2n→n) + BN, 2×(conv3 + BN) up (2n→n, n→n);
        // bottom 2×(conv3 + BN) 256→512→512; output conv3 32→1. All convs have a bias.
        let c = [32, 64, 128, 256, 512]
        var total = 0
        for i in 0..<4 {
            let n = c[i], prev = i == 0 ? 1 : c[i - 1]
            total += convParams(prev, n, k: 3, dims: 3) + 2 * n + convParams(n, n, k: 3, dims: 3) + 2 * n
            total += convParams(n, n, k: 2, dims: 3) + 2 * n
            total += c[i + 1] * n * 8 + n + 2 * n
            total += convParams(2 * n, n, k: 3, dims: 3) + 2 * n + convParams(n, n, k: 3, dims: 3) + 2 * n
        }
        total += convParams(256, 512, k: 3, dims: 3) + 2 * 512 + convParams(512, 512, k: 3, dims: 3) + 2 * 512
        total += convParams(32, 1, k: 3, dims: 3)
        XCTAssertEqual(net.parameterCount, total)
        let shapes = Dictionary(uniqueKeysWithValues: net.namedParameters.map { ($0.name, $0.parameter.shape) })
        XCTAssertEqual(shapes["down0.conv.weight"], [32, 32, 2, 2, 2])
        XCTAssertEqual(shapes["up3.conv.weight"], [512, 256, 2, 2, 2])
        XCTAssertEqual(shapes["u3.0.conv.weight"], [256, 512, 3, 3, 3])
        XCTAssertEqual(shapes["out.weight"], [1, 32, 3, 3, 3])
    }

    /// Compares names and shapes of parameters and buffers with the PyTorch CareUNet of
    /// /work/shared/bench/torch_unet.py, when torch and that file are available.
    func testNamesAndShapesMatchPyTorch() throws {
        let script = "/work/shared/bench/torch_unet.py"
        guard FileManager.default.fileExists(atPath: script) else { throw XCTSkip("no \(script)") }
        let py = """
        import sys, json, importlib.util
        spec = importlib.util.spec_from_file_location("tu", sys.argv[1]); tu = importlib.util.module_from_spec(spec)
        sys.argv = [sys.argv[0]]; spec.loader.exec_module(tu)
        out = {}
        for key, net in [("2d", tu.CareUNet(2, 1, 1, 32, bn=False, residual=True)), ("3d", tu.CareUNet(3, 1, 1, 16, bn=True, residual=False))]:
            out[key] = {"params": [[n, list(p.shape)] for n, p in net.named_parameters()],
                        "state": {n: list(t.shape) for n, t in net.state_dict().items()}}
        print(json.dumps(out))
        """
        let r = try runPython(py, [script]); let (status, out, err) = (r.status, r.out, r.err)
        guard status == 0 else {
            print("skipping: torch not importable: \(err.split(separator: "\n").last ?? "")")
            throw XCTSkip("torch not importable")
        }
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: [String: Any]])
        var rng = RandomGenerator(seed: 0)
        for (key, config) in [("2d", UNetConfig.care2D), ("3d", UNetConfig.unet3D)] {
            let net = try UNet(config, rng: &rng)
            let torchParams = try XCTUnwrap(json[key]?["params"] as? [[Any]])
            XCTAssertEqual(net.namedParameters.map(\.name), torchParams.map { $0[0] as! String }, key)
            XCTAssertEqual(net.namedParameters.map(\.parameter.shape), torchParams.map { $0[1] as! [Int] }, key)
            let torchState = try XCTUnwrap(json[key]?["state"] as? [String: [Int]])
            XCTAssertEqual(net.stateDict().mapValues(\.shape), torchState, key)
        }
    }

    func testSmall3DUNetForwardBackwardShapes() throws {
        var rng = RandomGenerator(seed: 3)
        for base in [UNetConfig.unet3D, UNetConfig.fnet3D] {
            var c = base
            c.firstFilters = 4
            c.depth = 2
            let net = try UNet(c, rng: &rng)
            let x = Variable(Tensor.randomNormal([2, 1, 8, 12, 4], rng: &rng), requiresGrad: true)
            let y = try net(x)
            XCTAssertEqual(y.shape, [2, 1, 8, 12, 4])
            try mseLoss(y, Variable(Tensor(zeros: y.shape))).backward()
            XCTAssertEqual(x.grad?.shape, x.shape)
            for (name, p) in net.namedParameters {
                XCTAssertEqual(p.grad?.shape, p.shape, "\(c.pooling) \(name)")
            }
            XCTAssertThrowsError(try net(Variable(Tensor(zeros: [1, 1, 8, 6, 8])))) { e in
                XCTAssertEqual("\(e)", "UNet: shape mismatch: spatial extents of input [1, 1, 8, 6, 8] must be divisible by 4 (depth 2)")
            }
        }
    }

    func testVariantsN2V2ProbabilisticGroupNormLinear() throws {
        var rng = RandomGenerator(seed: 4)
        var c = UNetConfig.care2D
        c.firstFilters = 8
        c.pooling = .maxBlur
        c.skipTop = false
        c.probabilistic = true
        c.norm = .group
        c.groups = 4
        c.upsampling = .linear
        c.activation = .leakyReLU
        let net = try UNet(c, rng: &rng)
        let shapes = Dictionary(uniqueKeysWithValues: net.namedParameters.map { ($0.name, $0.parameter.shape) })
        XCTAssertEqual(shapes["u0.0.conv.weight"], [8, 8, 3, 3], "no top skip: u0 sees only the upsampled channels")
        XCTAssertEqual(shapes["u1.0.conv.weight"], [16, 32, 3, 3])
        XCTAssertEqual(shapes["d0.0.norm.weight"], [8])
        XCTAssertEqual(shapes["out.weight"], [2, 8, 1, 1])
        let x = Tensor.randomNormal([2, 1, 16, 8], rng: &rng)
        let y = try net(Variable(x))
        XCTAssertEqual(y.shape, [2, 2, 16, 8])
        let (mean, logScale) = try net.splitProbabilistic(y)
        XCTAssertEqual(mean.shape, [2, 1, 16, 8])
        // The residual goes to the mean only: mean − x equals the raw output's first channel.
        var raw = c
        raw.residual = false
        var rng2 = RandomGenerator(seed: 4)
        let twin = try UNet(raw, rng: &rng2)
        let r = try twin(Variable(x)).value
        for i in 0..<16 { for j in 0..<8 {
            XCTAssertEqual(mean.value[1, 0, i, j], r[1, 0, i, j] + x[1, 0, i, j], accuracy: 1e-5)
            XCTAssertEqual(logScale.value[1, 0, i, j], r[1, 1, i, j], accuracy: 1e-6)
        } }
    }

    /// Finite differences through a whole tiny U-Net: the input gradient by `GradientCheck`,
    /// and a few elements of every parameter by central differences.
    func testTinyUNetGradientsMatchFiniteDifferences() throws {
        for upsampling in [UNetConfig.Upsampling.nearest, .transposed] {
            var c = UNetConfig.care2D
            c.firstFilters = 2
            c.depth = 1
            c.activation = .silu
            c.upsampling = upsampling
            c.probabilistic = true
            var rng = RandomGenerator(seed: 8)
            let net = try UNet(c, rng: &rng)
            let x = Tensor.randomNormal([2, 1, 6, 4], rng: &rng)
            let t = Tensor.randomNormal([2, 2, 6, 4], rng: &rng)
            let report = try GradientCheck.run([x]) { v in try mseLoss(net(v[0]), Variable(t)) }
            XCTAssertLessThan(report.maxError, 1e-2, "\(upsampling) input: \(report)")

            net.zeroGrad()
            try mseLoss(net(Variable(x)), Variable(t)).backward()
            let h: Float = 1e-2
            for (name, p) in net.namedParameters {
                let analytic = try XCTUnwrap(p.grad, name)
                for i in Set([0, p.value.count / 2, p.value.count - 1]) {
                    let original = p.value.scalars[i]
                    p.value.withUnsafeMutableBufferPointer { $0[i] = original + h }
                    let fp = try noGrad { try mseLoss(net(Variable(x)), Variable(t)).value.scalar }
                    p.value.withUnsafeMutableBufferPointer { $0[i] = original - h }
                    let fm = try noGrad { try mseLoss(net(Variable(x)), Variable(t)).value.scalar }
                    p.value.withUnsafeMutableBufferPointer { $0[i] = original }
                    let numeric = (fp - fm) / (2 * h)
                    XCTAssertEqual(analytic.scalars[i], numeric, accuracy: 1e-2 * max(1, abs(numeric)), "\(upsampling) \(name)[\(i)]")
                }
            }
        }
    }

    func testDropoutActsInTrainingOnly() throws {
        var c = UNetConfig.care2D
        c.firstFilters = 4
        c.dropout = 0.3
        var rng = RandomGenerator(seed: 5)
        let net = try UNet(c, rng: &rng)
        var plain = c
        plain.dropout = 0
        XCTAssertEqual(net.namedParameters.map(\.name), try UNet(plain, rng: &rng).namedParameters.map(\.name))
        let x = Variable(Tensor.randomNormal([1, 1, 8, 8], rng: &rng))
        XCTAssertNotEqual(try net(x).value.scalars, try net(x).value.scalars, "fresh masks in training")
        net.setTraining(false)
        XCTAssertEqual(try net(x).value.scalars, try net(x).value.scalars)
        c.dropout = 1
        XCTAssertThrowsError(try c.validate()) { e in XCTAssertTrue("\(e)".contains("dropout 1.0"), "\(e)") }
    }

    func testConfigDecodingDefaultsAndValidation() throws {
        let c = try JSONDecoder().decode(UNetConfig.self, from: Data(#"{"dims": 3, "norm": "instance", "pooling": "max_blur", "activation": "silu"}"#.utf8))
        var want = UNetConfig()
        want.dims = 3
        want.norm = .instance
        want.pooling = .maxBlur
        want.activation = .silu
        XCTAssertEqual(c, want)
        XCTAssertEqual(try JSONDecoder().decode(UNetConfig.self, from: JSONEncoder().encode(UNetConfig.fnet3D)), .fnet3D)
        var bad = UNetConfig.care2D
        bad.outChannels = 2
        XCTAssertThrowsError(try bad.validate()) { e in
            XCTAssertEqual("\(e)", "UNetConfig: invalid argument: residual needs inChannels == outChannels (got 1, 2)")
        }
        bad = UNetConfig()
        bad.kernel = 4
        var rng = RandomGenerator(seed: 0)
        XCTAssertThrowsError(try UNet(bad, rng: &rng)) { e in XCTAssertTrue("\(e)".contains("kernel 4"), "\(e)") }
    }

    func testCheckpointRoundTripThroughSafeTensors() throws {
        var c = UNetConfig.unet3D
        c.firstFilters = 4
        var r1 = RandomGenerator(seed: 1), r2 = RandomGenerator(seed: 2)
        let a = try UNet(c, rng: &r1), b = try UNet(c, rng: &r2)
        var rng = RandomGenerator(seed: 9)
        let x = Tensor.randomNormal([2, 1, 4, 8, 8], rng: &rng)
        _ = try a(Variable(x))   // one training pass moves the running statistics
        a.setTraining(false); b.setTraining(false)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lucid-unet-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try SafeTensors.save(a.stateDict(), metadata: ["config": String(decoding: try JSONEncoder().encode(c), as: UTF8.self)], to: url)
        let (state, meta) = try SafeTensors.load(from: url)
        XCTAssertEqual(try JSONDecoder().decode(UNetConfig.self, from: Data(meta["config"]!.utf8)), c)
        try b.loadStateDict(state)
        let ya = try noGrad { try a(Variable(x)).value }, yb = try noGrad { try b(Variable(x)).value }
        XCTAssertEqual(ya.scalars, yb.scalars)
    }

    /// A small CARE-style U-Net fits one batch: the MSE falls at least 100-fold.
    func testSmallUNetOverfitsOneBatch() throws {
        var rng = RandomGenerator(seed: 42)
        var c = UNetConfig.care2D
        c.firstFilters = 8
        c.residual = false
        let net = try UNet(c, rng: &rng)
        let x = Tensor.randomNormal([4, 1, 16, 16], rng: &rng)
        // Target: a smooth nonlinear function of the input (a blurred, squashed copy).
        var t = Tensor(zeros: x.shape)
        for n in 0..<4 { for i in 0..<16 { for j in 0..<16 {
            var s: Float = 0
            for di in -1...1 { for dj in -1...1 {
                let r = min(max(i + di, 0), 15), q = min(max(j + dj, 0), 15)
                s += x[n, 0, r, q]
            } }
            t[n, 0, i, j] = Foundation.tanh(s / 3)
        } } }
        let target = Variable(t)
        let opt = try Adam(parameters: net.namedParameters, learningRate: 3e-3)
        var first: Float = 0, last: Float = 0
        for step in 0..<300 {
            opt.zeroGrad()
            let loss = try mseLoss(net(Variable(x)), target)
            try loss.backward()
            try opt.step()
            if step == 0 { first = loss.value.scalar }
            last = loss.value.scalar
        }
        print("overfit: MSE \(first) → \(last) after 300 Adam steps")
        XCTAssertGreaterThan(first, 0.1)
        XCTAssertLessThan(last, first / 100, "loss \(first) → \(last)")
    }
}
