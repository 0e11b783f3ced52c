import Foundation
import XCTest
import LucidAutograd
import LucidCore
@testable import LucidNN

final class OptimizerTests: XCTestCase {
    /// Parameters of odd sizes (the SIMD body and its scalar tail both run) with set gradients.
    func makeParameters(seed: UInt64) -> [(name: String, parameter: Variable)] {
        var rng = RandomGenerator(seed: seed)
        return [("a.weight", [37]), ("b", [3, 5]), ("c", [])].map { name, shape in
            let v = Variable(Tensor.randomNormal(shape, rng: &rng), requiresGrad: true)
            return (name, v)
        }
    }

    func setGradients(_ ps: [(name: String, parameter: Variable)], seed: UInt64) {
        var rng = RandomGenerator(seed: seed)
        for (_, p) in ps { p.grad = Tensor.randomNormal(p.value.shape, std: 0.7, rng: &rng) }
    }

    /// PyTorch's Adam/AdamW step, written out in Double for one element sequence.
    func referenceAdam(p0: Double, grads: [Double], lr: Double, b1: Double, b2: Double, eps: Double,
                       wd: Double, decoupled: Bool) -> Double {
        var p = p0, m = 0.0, v = 0.0
        for (t, g0) in grads.enumerated() {
            let step = Double(t + 1)
            if decoupled { p *= 1 - lr * wd }
            let g = decoupled ? g0 : g0 + wd * p
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            let bc1 = 1 - pow(b1, step), bc2 = 1 - pow(b2, step)
            p -= lr / bc1 * m / (v.squareRoot() / bc2.squareRoot() + eps)
        }
        return p
    }

    func checkAdam(decoupled: Bool) throws {
        let ps = makeParameters(seed: 1)
        let initial = ps.map { $0.parameter.value.scalars }
        let opt: Adam = decoupled
            ? try AdamW(parameters: ps, learningRate: 0.01, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1)
            : try Adam(parameters: ps, learningRate: 0.01, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1)
        var grads: [[[Float]]] = []
        for s in 0..<3 {
            setGradients(ps, seed: 10 + UInt64(s))
            grads.append(ps.map { $0.parameter.grad!.scalars })
            try opt.step()
        }
        XCTAssertEqual(opt.stepCount, 3)
        for (k, (_, p)) in ps.enumerated() {
            let got = p.value.scalars
            for i in got.indices {
                let want = referenceAdam(p0: Double(initial[k][i]), grads: grads.map { Double($0[k][i]) },
                                         lr: 0.01, b1: 0.8, b2: 0.99, eps: 1e-6, wd: 0.1, decoupled: decoupled)
                XCTAssertEqual(Double(got[i]), want, accuracy: 2e-6, "param \(k) element \(i)")
            }
        }
    }

    func testAdamMatchesPyTorchFormula() throws { try checkAdam(decoupled: false) }
    func testAdamWMatchesPyTorchFormula() throws { try checkAdam(decoupled: true) }

    /// One Adam step worked by hand: p = 1, g = 0.5, lr = 0.1, default betas, eps = 1e-8.
    /// m = 0.05, v = 0.00025, m̂ = 0.5, v̂ = 0.25, p ← 1 − 0.1 · 0.5 / (0.5 + 1e-8) = 0.9 (+2e-9).
    func testSingleAdamStepByHand() throws {
        let p = Variable(Tensor(scalar: 1), requiresGrad: true)
        p.grad = Tensor(scalar: 0.5)
        let opt = try Adam(parameters: [("p", p)], learningRate: 0.1)
        try opt.step()
        XCTAssertEqual(p.value.scalar, 0.9, accuracy: 1e-7)
        let st = opt.exportState()
        // As PyTorch: 1 − β is formed in Double, then rounded to Float32 (0.1 → 0.10000000149).
        XCTAssertEqual(st.tensors["p.exp_avg"]!.scalar, Float(0.1) * 0.5)
        XCTAssertEqual(st.tensors["p.exp_avg_sq"]!.scalar, 0.00025, accuracy: 1e-10)
    }

    func testSGDMomentumNesterovAndDecay() throws {
        for nesterov in [false, true] {
            let ps = makeParameters(seed: 2)
            let initial = ps.map { $0.parameter.value.scalars }
            let opt = try SGD(parameters: ps, learningRate: 0.05, momentum: 0.9, nesterov: nesterov, weightDecay: 0.01)
            var grads: [[[Float]]] = []
            for s in 0..<3 {
                setGradients(ps, seed: 20 + UInt64(s))
                grads.append(ps.map { $0.parameter.grad!.scalars })
                try opt.step()
            }
            for (k, (_, p)) in ps.enumerated() {
                for i in 0..<p.value.count {
                    var w = Double(initial[k][i]), buf = 0.0
                    for (t, g) in grads.enumerated() {
                        let gi = Double(g[k][i]) + 0.01 * w
                        buf = t == 0 ? gi : 0.9 * buf + gi
                        w -= 0.05 * (nesterov ? gi + 0.9 * buf : buf)
                    }
                    XCTAssertEqual(Double(p.value.scalars[i]), w, accuracy: 1e-5, "nesterov \(nesterov) param \(k)[\(i)]")
                }
            }
        }
        XCTAssertThrowsError(try SGD(parameters: [], learningRate: 0.1, nesterov: true)) { e in
            XCTAssertTrue("\(e)".contains("nesterov"), "\(e)")
        }
    }

    func testParametersWithoutGradientAreSkipped() throws {
        let ps = makeParameters(seed: 3)
        let before = ps[1].parameter.value.scalars
        setGradients(ps, seed: 4)
        ps[1].parameter.grad = nil
        try Adam(parameters: ps).step()
        XCTAssertEqual(ps[1].parameter.value.scalars, before)
    }

    func testStateExportImportResumesExactly() throws {
        let a = makeParameters(seed: 5), b = makeParameters(seed: 5)
        let optA = try Adam(parameters: a, learningRate: 0.01)
        setGradients(a, seed: 30)
        try optA.step()
        let saved = optA.exportState()
        XCTAssertEqual(Set(saved.tensors.keys), ["a.weight.exp_avg", "a.weight.exp_avg_sq", "b.exp_avg", "b.exp_avg_sq", "c.exp_avg", "c.exp_avg_sq"])
        for ((_, pa), (_, pb)) in zip(a, b) { pb.value = pa.value.copy() }
        let optB = try Adam(parameters: b, learningRate: 0.01)
        try optB.importState(saved)
        XCTAssertEqual(optB.stepCount, 1)
        setGradients(a, seed: 31); setGradients(b, seed: 31)
        try optA.step(); try optB.step()
        for ((_, pa), (_, pb)) in zip(a, b) { XCTAssertEqual(pa.value.scalars, pb.value.scalars) }

        // Through a file, as a checkpoint stores it.
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lucid-opt-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try optA.exportState().save(to: url, metadata: ["optimizer": "adam"])
        let reread = try OptimizerState(contentsOf: url)
        XCTAssertEqual(reread.step, 2)
        XCTAssertEqual(reread.tensors.mapValues(\.scalars), optA.exportState().tensors.mapValues(\.scalars))
        try SafeTensors.save(["w": Tensor(zeros: [1])], to: url)
        XCTAssertThrowsError(try OptimizerState(contentsOf: url)) { e in XCTAssertTrue("\(e)".contains("step"), "\(e)") }

        var bad = saved
        bad.tensors["zzz.exp_avg"] = Tensor(zeros: [1])
        XCTAssertThrowsError(try optB.importState(bad)) { e in XCTAssertTrue("\(e)".contains("zzz.exp_avg"), "\(e)") }
        bad = saved
        bad.tensors["b.exp_avg"] = Tensor(zeros: [5, 3])
        XCTAssertThrowsError(try optB.importState(bad)) { e in
            XCTAssertTrue("\(e)".contains("[5, 3]") && "\(e)".contains("[3, 5]"), "\(e)")
        }
    }

    func testSchedules() throws {
        let step = LearningRateSchedule(kind: .step, factor: 0.5, every: 10)
        XCTAssertEqual(step.learningRate(base: 0.1, at: 0, totalSteps: 100), 0.1, accuracy: 1e-12)
        XCTAssertEqual(step.learningRate(base: 0.1, at: 9, totalSteps: 100), 0.1, accuracy: 1e-12)
        XCTAssertEqual(step.learningRate(base: 0.1, at: 10, totalSteps: 100), 0.05, accuracy: 1e-12)
        XCTAssertEqual(step.learningRate(base: 0.1, at: 25, totalSteps: 100), 0.025, accuracy: 1e-12)

        let cos = LearningRateSchedule(kind: .cosine, warmup: 10, minimum: 0.001)
        XCTAssertEqual(cos.learningRate(base: 0.1, at: 0, totalSteps: 110), 0.01, accuracy: 1e-12)
        XCTAssertEqual(cos.learningRate(base: 0.1, at: 9, totalSteps: 110), 0.1, accuracy: 1e-12)
        XCTAssertEqual(cos.learningRate(base: 0.1, at: 10, totalSteps: 110), 0.1, accuracy: 1e-12)
        XCTAssertEqual(cos.learningRate(base: 0.1, at: 60, totalSteps: 110), 0.001 + 0.099 * 0.5, accuracy: 1e-12)
        XCTAssertEqual(cos.learningRate(base: 0.1, at: 35, totalSteps: 110), 0.001 + 0.099 * (1 + Foundation.cos(Double.pi / 4)) / 2, accuracy: 1e-12)
        XCTAssertEqual(cos.learningRate(base: 0.1, at: 500, totalSteps: 110), 0.001, accuracy: 1e-12)
        XCTAssertThrowsError(try LearningRateSchedule(kind: .step, every: 0).validate())
        XCTAssertThrowsError(try LearningRateSchedule(factor: 1).validate())
        let data = try JSONEncoder().encode(cos)
        XCTAssertEqual(try JSONDecoder().decode(LearningRateSchedule.self, from: data), cos)

        // The warm-up ramps every kind; a plateau schedule follows its state's rate.
        let warm = LearningRateSchedule(kind: .plateau, warmup: 4)
        XCTAssertEqual(warm.learningRate(base: 0.1, at: 1, totalSteps: 100, plateauRate: 0.05), 0.025, accuracy: 1e-12)
        XCTAssertEqual(warm.learningRate(base: 0.1, at: 4, totalSteps: 100, plateauRate: 0.05), 0.05, accuracy: 1e-12)
        XCTAssertEqual(LearningRateSchedule(kind: .none, warmup: 2).learningRate(base: 0.1, at: 0, totalSteps: 9), 0.05, accuracy: 1e-12)

        var plateau = try ReduceLROnPlateau(learningRate: 1, factor: 0.5, patience: 2, cooldown: 1, minimum: 0.2)
        // Two improvements, then a plateau. The evaluation that makes the bad count exceed the
        // patience (3rd bad) halves the rate; the next one is absorbed by the cooldown.
        let metrics: [Double] = [5, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4]
        let rates = metrics.map { plateau.update(metric: $0) }
        XCTAssertEqual(rates, [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.2])
        XCTAssertThrowsError(try ReduceLROnPlateau(learningRate: 1, factor: 2))
    }

    func testGradientClipping() throws {
        let ps = makeParameters(seed: 6)
        setGradients(ps, seed: 7)
        let grads = ps.map { $0.parameter.grad!.scalars }
        let norm = grads.joined().reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        XCTAssertEqual(Double(GradientClipping.globalNorm(ps.map(\.parameter))), norm, accuracy: 1e-5 * norm)
        let returned = try GradientClipping.clipByGlobalNorm(ps.map(\.parameter), maxNorm: 1)
        XCTAssertEqual(Double(returned), norm, accuracy: 1e-5 * norm)
        let scale = 1 / (norm + 1e-6)
        for (k, (_, p)) in ps.enumerated() {
            for (a, g) in zip(p.grad!.scalars, grads[k]) { XCTAssertEqual(Double(a), Double(g) * scale, accuracy: 1e-6) }
        }
        XCTAssertEqual(GradientClipping.globalNorm(ps.map(\.parameter)), 1, accuracy: 1e-5)
        // A norm under the limit is left alone.
        let kept = ps.map { $0.parameter.grad!.scalars }
        try GradientClipping.clipByGlobalNorm(ps.map(\.parameter), maxNorm: 10)
        XCTAssertEqual(ps.map { $0.parameter.grad!.scalars }, kept)

        setGradients(ps, seed: 8)
        let raw = ps.map { $0.parameter.grad!.scalars }
        try GradientClipping.clipByValue(ps.map(\.parameter), limit: 0.3)
        for (k, (_, p)) in ps.enumerated() {
            XCTAssertEqual(p.grad!.scalars, raw[k].map { min(max($0, -0.3), 0.3) })
        }
        ps[0].parameter.grad = Tensor(shape: [37], repeating: .nan)
        XCTAssertThrowsError(try GradientClipping.clipByGlobalNorm(ps.map(\.parameter), maxNorm: 1)) { e in
            XCTAssertTrue("\(e)".contains("clipByGlobalNorm"), "\(e)")
        }
    }
}
