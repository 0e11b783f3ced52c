import Foundation
import LucidAutograd
import LucidCore

/// An optimizer's state: per-parameter tensors keyed `"<parameter name>.<slot>"` (PyTorch's slot
/// names: `exp_avg`, `exp_avg_sq`, `momentum_buffer`) and the number of steps taken.
public struct OptimizerState {
    /// Steps taken so far.
    public var step: Int
    /// State tensors by `"<parameter>.<slot>"`.
    public var tensors: [String: Tensor]

    public init(step: Int, tensors: [String: Tensor]) {
        self.step = step
        self.tensors = tensors
    }
}

extension OptimizerState {
    /// Writes the state as a safetensors file (atomically), the step count under the
    /// metadata key `"step"` next to `metadata`.
    public func save(to url: URL, metadata: [String: String] = [:]) throws {
        var meta = metadata
        meta["step"] = String(step)
        try SafeTensors.save(tensors, metadata: meta, to: url)
    }

    /// Reads a state written by `save(to:metadata:)`.
    public init(contentsOf url: URL) throws {
        let (tensors, meta) = try SafeTensors.load(from: url)
        guard let s = meta["step"], let step = Int(s), step >= 0 else {
            throw SafeTensorsError(path: url.path, reason: "no valid optimizer step in the metadata (key \"step\")")
        }
        self.init(step: step, tensors: tensors)
    }
}

/// Updates named parameters from their gradients. Parameters without a gradient are skipped.
public protocol Optimizer: AnyObject {
    /// Current learning rate (schedules set it between steps). Hyper-parameters are Double, as
    /// PyTorch's Python floats, so `1 − β` etc. round the same way before reaching Float32.
    var learningRate: Double { get set }
    /// Number of `step()` calls so far.
    var stepCount: Int { get }
    /// The parameters updated, by name.
    var parameters: [(name: String, parameter: Variable)] { get }
    /// Applies one update from the current gradients.
    func step() throws
    /// The state to store in a checkpoint.
    func exportState() -> OptimizerState
    /// Restores a state from `exportState()`; throws on unknown names or shape mismatches.
    func importState(_ state: OptimizerState) throws
}

extension Optimizer {
    /// Clears every parameter's gradient.
    public func zeroGrad() { for (_, p) in parameters { p.zeroGrad() } }
}

/// Shared bookkeeping: the named slots of each parameter.
struct SlotStore {
    let slots: [String]
    var tensors: [String: Tensor] = [:]

    func export(_ step: Int) -> OptimizerState { OptimizerState(step: step, tensors: tensors) }

    mutating func load(_ state: OptimizerState, parameters: [(name: String, parameter: Variable)], op: String) throws {
        let shapes = Dictionary(parameters.map { ($0.name, $0.parameter.value.shape) }, uniquingKeysWith: { a, _ in a })
        for (key, t) in state.tensors {
            guard let dot = key.lastIndex(of: "."), slots.contains(String(key[key.index(after: dot)...])),
                  let shape = shapes[String(key[..<dot])] else {
                throw TensorError.invalidArgument(op: op, detail: "state key '\(key)' names no parameter slot (slots: \(slots))")
            }
            guard shape == t.shape else {
                throw TensorError.shapeMismatch(op: op, detail: "state '\(key)' has shape \(t.shape), parameter has \(shape)")
            }
        }
        guard state.step >= 0 else { throw TensorError.invalidArgument(op: op, detail: "negative step count \(state.step)") }
        tensors = state.tensors
    }

    /// The slot tensor of `name`, created as zeros when missing (`created` tells which).
    mutating func take(_ name: String, _ slot: String, shape: [Int]) -> (Tensor, created: Bool) {
        if let t = tensors.removeValue(forKey: name + "." + slot) { return (t, false) }
        return (Tensor(zeros: shape), true)
    }

    mutating func put(_ name: String, _ slot: String, _ t: Tensor) { tensors[name + "." + slot] = t }
}

/// Runs `body(lo, hi)` over `0..<n` in parallel chunks large enough to be worth a thread.
@inline(__always)
func parallelElementwise(_ n: Int, _ body: (Int, Int) -> Void) {
    Threads.parallelChunks(n, minChunk: 1 << 16) { r in body(r.lowerBound, r.upperBound) }
}

@inline(__always) func load16(_ p: UnsafePointer<Float>, _ i: Int) -> SIMD16<Float> {
    UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
}

@inline(__always) func store16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: SIMD16<Float>.self)
}

/// Stochastic gradient descent with optional momentum (PyTorch's formulation: the first step
/// stores the gradient as the buffer), dampening, Nesterov momentum and L2 weight decay.
public final class SGD: Optimizer {
    public var learningRate: Double
    public let momentum: Double
    public let dampening: Double
    public let nesterov: Bool
    public let weightDecay: Double
    public let parameters: [(name: String, parameter: Variable)]
    public private(set) var stepCount = 0
    private var store = SlotStore(slots: ["momentum_buffer"])

    /// - Throws: for negative hyper-parameters or Nesterov without momentum.
    public init(parameters: [(name: String, parameter: Variable)], learningRate: Double, momentum: Double = 0,
                dampening: Double = 0, nesterov: Bool = false, weightDecay: Double = 0) throws {
        guard learningRate >= 0, momentum >= 0, weightDecay >= 0 else {
            throw TensorError.invalidArgument(op: "SGD", detail: "learningRate \(learningRate), momentum \(momentum), weightDecay \(weightDecay) must be ≥ 0")
        }
        guard !nesterov || (momentum > 0 && dampening == 0) else {
            throw TensorError.invalidArgument(op: "SGD", detail: "nesterov needs momentum > 0 and dampening 0 (got \(momentum), \(dampening))")
        }
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.weightDecay = weightDecay
    }

    public func step() throws {
        stepCount += 1
        let lr = Float(learningRate), mu = Float(momentum), damp = Float(1 - dampening), wd = Float(weightDecay), nest = nesterov
        for (name, p) in parameters {
            guard let grad = p.grad else { continue }
            guard grad.shape == p.value.shape else {
                throw TensorError.shapeMismatch(op: "SGD.step", detail: "'\(name)': gradient \(grad.shape) vs parameter \(p.value.shape)")
            }
            let n = grad.count
            if mu == 0 {
                grad.withUnsafeBufferPointer { gb in
                    p.value.withUnsafeMutableBufferPointer { pb in
                        let g = gb.baseAddress!, w = pb.baseAddress!
                        parallelElementwise(n) { lo, hi in
                            for i in lo..<hi { w[i] -= lr * (g[i] + wd * w[i]) }
                        }
                    }
                }
                continue
            }
            var (buf, fresh) = store.take(name, "momentum_buffer", shape: p.value.shape)
            grad.withUnsafeBufferPointer { gb in
                p.value.withUnsafeMutableBufferPointer { pb in
                    buf.withUnsafeMutableBufferPointer { bb in
                        let g = gb.baseAddress!, w = pb.baseAddress!, b = bb.baseAddress!
                        // Branch-free bodies per case so each loop vectorizes.
                        let keep: Float = fresh ? 0 : mu, take: Float = fresh ? 1 : damp
                        let onBuffer: Float = nest ? mu : 1, direct: Float = nest ? 1 : 0
                        parallelElementwise(n) { lo, hi in
                            for i in lo..<hi {
                                let gi = g[i] + wd * w[i]
                                let bi = keep * b[i] + take * gi
                                b[i] = bi
                                w[i] -= lr * (direct * gi + onBuffer * bi)
                            }
                        }
                    }
                }
            }
            store.put(name, "momentum_buffer", buf)
        }
    }

    public func exportState() -> OptimizerState { store.export(stepCount) }

    public func importState(_ state: OptimizerState) throws {
        try store.load(state, parameters: parameters, op: "SGD.importState")
        stepCount = state.step
    }
}

/// Adam (`decoupled: false`, L2 weight decay added to the gradient) and AdamW (`decoupled:
/// true`, weights shrunk by `1 − lr·weightDecay` first), with PyTorch's update formulas:
/// `m ← m + (1−β₁)(g − m)`, `v ← β₂v + (1−β₂)g²`,
/// `p ← p − lr/(1−β₁ᵗ) · m / (√v / √(1−β₂ᵗ) + ε)`.
public class Adam: Optimizer {
    public var learningRate: Double
    public let beta1: Double
    public let beta2: Double
    public let eps: Double
    public let weightDecay: Double
    /// True for AdamW's decoupled weight decay.
    public let decoupledWeightDecay: Bool
    public let parameters: [(name: String, parameter: Variable)]
    public private(set) var stepCount = 0
    private var store = SlotStore(slots: ["exp_avg", "exp_avg_sq"])

    /// - Throws: for β outside [0, 1), negative rates or ε.
    public init(parameters: [(name: String, parameter: Variable)], learningRate: Double = 1e-3,
                beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0,
                decoupledWeightDecay: Bool = false) throws {
        guard (0..<1).contains(beta1), (0..<1).contains(beta2), learningRate >= 0, eps >= 0, weightDecay >= 0 else {
            throw TensorError.invalidArgument(op: decoupledWeightDecay ? "AdamW" : "Adam",
                                              detail: "betas (\(beta1), \(beta2)) must lie in [0, 1); learningRate \(learningRate), eps \(eps), weightDecay \(weightDecay) must be ≥ 0")
        }
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
    }

    public func step() throws {
        stepCount += 1
        let t = Double(stepCount)
        let bc1 = 1 - pow(beta1, t), bc2 = 1 - pow(beta2, t)
        let stepSize = Float(learningRate / bc1)
        let sqrtBc2 = Float(bc2.squareRoot())
        let l2 = Float(decoupledWeightDecay ? 0 : weightDecay)
        let shrink = Float(decoupledWeightDecay ? 1 - learningRate * weightDecay : 1)
        let w1 = Float(1 - beta1), b2 = Float(beta2), w2 = Float(1 - beta2), eps = Float(eps)
        for (name, p) in parameters {
            guard let grad = p.grad else { continue }
            guard grad.shape == p.value.shape else {
                throw TensorError.shapeMismatch(op: "Adam.step", detail: "'\(name)': gradient \(grad.shape) vs parameter \(p.value.shape)")
            }
            var (m, _) = store.take(name, "exp_avg", shape: p.value.shape)
            var (v, _) = store.take(name, "exp_avg_sq", shape: p.value.shape)
            let n = grad.count
            grad.withUnsafeBufferPointer { gb in
                p.value.withUnsafeMutableBufferPointer { pb in
                    m.withUnsafeMutableBufferPointer { mb in
                        v.withUnsafeMutableBufferPointer { vb in
                            let g = gb.baseAddress!, w = pb.baseAddress!, mp = mb.baseAddress!, vp = vb.baseAddress!
                            parallelElementwise(n) { lo, hi in
                                var i = lo
                                while i + 16 <= hi {
                                    var wi = load16(w, i)
                                    let gi = load16(g, i) + l2 * wi
                                    var mi = load16(mp, i)
                                    mi += w1 * (gi - mi)
                                    let vi = b2 * load16(vp, i) + w2 * (gi * gi)
                                    wi = wi * shrink - stepSize * mi / (vi.squareRoot() / sqrtBc2 + eps)
                                    store16(mi, mp, i); store16(vi, vp, i); store16(wi, w, i)
                                    i += 16
                                }
                                while i < hi {
                                    let gi = g[i] + l2 * w[i]
                                    let mi = mp[i] + w1 * (gi - mp[i])
                                    let vi = b2 * vp[i] + w2 * (gi * gi)
                                    mp[i] = mi; vp[i] = vi
                                    w[i] = w[i] * shrink - stepSize * mi / (vi.squareRoot() / sqrtBc2 + eps)
                                    i += 1
                                }
                            }
                        }
                    }
                }
            }
            store.put(name, "exp_avg", m)
            store.put(name, "exp_avg_sq", v)
        }
    }

    public func exportState() -> OptimizerState { store.export(stepCount) }

    public func importState(_ state: OptimizerState) throws {
        try store.load(state, parameters: parameters, op: decoupledWeightDecay ? "AdamW.importState" : "Adam.importState")
        stepCount = state.step
    }
}

/// AdamW: Adam with decoupled weight decay (PyTorch default `weightDecay` 0.01).
public final class AdamW: Adam {
    public init(parameters: [(name: String, parameter: Variable)], learningRate: Double = 1e-3,
                beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0.01) throws {
        try super.init(parameters: parameters, learningRate: learningRate, beta1: beta1, beta2: beta2,
                       eps: eps, weightDecay: weightDecay, decoupledWeightDecay: true)
    }
}
