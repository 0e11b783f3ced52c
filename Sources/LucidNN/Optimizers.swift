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

/// The optimizers a recipe can name (`training.optimizer`).
public enum OptimizerKind: String, CaseIterable, Codable, Sendable {
    case adam, adamw, sgd

    /// A fresh optimizer of this kind over `parameters`; `momentum` is used by `sgd` only.
    public func make(parameters: [(name: String, parameter: Variable)], learningRate: Double, weightDecay: Double,
                     momentum: Double) throws -> Optimizer {
        switch self {
        case .adam: return try Adam(parameters: parameters, learningRate: learningRate, weightDecay: weightDecay)
        case .adamw: return try AdamW(parameters: parameters, learningRate: learningRate, weightDecay: weightDecay)
        case .sgd: return try SGD(parameters: parameters, learningRate: learningRate, momentum: momentum, weightDecay: weightDecay)
        }
    }
}

/// Updates named parameters from their gradients; parameters without a gradient are skipped.
///
/// The base class keeps the learning rate, the step count and the per-parameter state slots
/// (exported for checkpoints); a subclass writes only its update rule, `update(_:_:_:_:)`.
public class Optimizer {
    /// Current learning rate (schedules set it between steps). Hyper-parameters are Double, as
    /// PyTorch's Python floats, so `1 − β` etc. round the same way before reaching Float32.
    public var learningRate: Double
    /// Number of `step()` calls so far.
    public private(set) var stepCount = 0
    /// The parameters updated, by name.
    public let parameters: [(name: String, parameter: Variable)]
    /// The state slots of each parameter, by PyTorch's slot names.
    var store: SlotStore
    private let name: String

    init(parameters: [(name: String, parameter: Variable)], learningRate: Double, slots: [String], name: String) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.name = name
        store = SlotStore(slots: slots)
    }

    /// Applies one update from the current gradients.
    public func step() throws {
        stepCount += 1
        beginStep()
        for (name, p) in parameters {
            guard let grad = p.grad else { continue }
            guard grad.shape == p.value.shape else {
                throw TensorError.shapeMismatch(op: "\(self.name).step", detail: "'\(name)': gradient \(grad.shape) vs parameter \(p.value.shape)")
            }
            update(name, p, grad, grad.count)
        }
    }

    /// Called once per step before the parameters are updated (bias corrections and the like).
    func beginStep() {}

    /// Updates parameter `p` (called `name`) from its gradient `grad` of `count` values.
    func update(_ name: String, _ p: Variable, _ grad: Tensor, _ count: Int) {
        preconditionFailure("\(type(of: self)) must override update")
    }

    /// Clears every parameter's gradient.
    public func zeroGrad() { for (_, p) in parameters { p.zeroGrad() } }

    /// The state to store in a checkpoint.
    public func exportState() -> OptimizerState { store.export(stepCount) }

    /// Restores a state from `exportState()`; throws on unknown names or shape mismatches.
    public func importState(_ state: OptimizerState) throws {
        try store.load(state, parameters: parameters, op: "\(name).importState")
        stepCount = state.step
    }
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

/// Stochastic gradient descent with optional momentum (PyTorch's formulation: the first step
/// stores the gradient as the buffer), dampening, Nesterov momentum and L2 weight decay.
public final class SGD: Optimizer {
    public let momentum: Double
    public let dampening: Double
    public let nesterov: Bool
    public let weightDecay: Double

    /// - Throws: for negative hyper-parameters or Nesterov without momentum.
    public init(parameters: [(name: String, parameter: Variable)], learningRate: Double, momentum: Double = 0,
                dampening: Double = 0, nesterov: Bool = false, weightDecay: Double = 0) throws {
        guard learningRate >= 0, momentum >= 0, weightDecay >= 0 else {
            throw TensorError.invalidArgument(op: "SGD", detail: "learningRate \(learningRate), momentum \(momentum), weightDecay \(weightDecay) must be ≥ 0")
        }
        guard !nesterov || (momentum > 0 && dampening == 0) else {
            throw TensorError.invalidArgument(op: "SGD", detail: "nesterov needs momentum > 0 and dampening 0 (got \(momentum), \(dampening))")
        }
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        super.init(parameters: parameters, learningRate: learningRate, slots: ["momentum_buffer"], name: "SGD")
    }

    override func update(_ name: String, _ p: Variable, _ grad: Tensor, _ n: Int) {
        let lr = Float(learningRate), mu = Float(momentum), damp = Float(1 - dampening), wd = Float(weightDecay)
        p.value.makeUnique()
        let w = p.value.storage.base, g = grad.storage.base
        if mu == 0 {
            parallelElementwise(n) { lo, hi in
                for i in lo..<hi { w[i] -= lr * (g[i] + wd * w[i]) }
            }
            return
        }
        var (buffer, fresh) = store.take(name, "momentum_buffer", shape: p.value.shape)
        buffer.makeUnique()
        let b = buffer.storage.base
        // Branch-free bodies per case so each loop vectorizes.
        let keep: Float = fresh ? 0 : mu, take: Float = fresh ? 1 : damp
        let onBuffer: Float = nesterov ? mu : 1, direct: Float = nesterov ? 1 : 0
        parallelElementwise(n) { lo, hi in
            for i in lo..<hi {
                let gi = g[i] + wd * w[i]
                let bi = keep * b[i] + take * gi
                b[i] = bi
                w[i] -= lr * (direct * gi + onBuffer * bi)
            }
        }
        store.put(name, "momentum_buffer", buffer)
    }
}

/// Adam (`decoupled: false`, L2 weight decay added to the gradient) and AdamW (`decoupled:
/// true`, weights shrunk by `1 − lr·weightDecay` first), with PyTorch's update formulas:
/// `m ← m + (1−β₁)(g − m)`, `v ← β₂v + (1−β₂)g²`,
/// `p ← p − lr/(1−β₁ᵗ) · m / (√v / √(1−β₂ᵗ) + ε)`.
public class Adam: Optimizer {
    public let beta1: Double
    public let beta2: Double
    public let eps: Double
    public let weightDecay: Double
    /// True for AdamW's decoupled weight decay.
    public let decoupledWeightDecay: Bool
    /// Bias corrections of the current step: `1 − β₁ᵗ`, `1 − β₂ᵗ`.
    private var corrections = (first: 1.0, second: 1.0)

    /// - Throws: for β outside [0, 1), negative rates or ε.
    public init(parameters: [(name: String, parameter: Variable)], learningRate: Double = 1e-3,
                beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0,
                decoupledWeightDecay: Bool = false) throws {
        let name = decoupledWeightDecay ? "AdamW" : "Adam"
        guard (0..<1).contains(beta1), (0..<1).contains(beta2), learningRate >= 0, eps >= 0, weightDecay >= 0 else {
            throw TensorError.invalidArgument(op: name,
                                              detail: "betas (\(beta1), \(beta2)) must lie in [0, 1); learningRate \(learningRate), eps \(eps), weightDecay \(weightDecay) must be ≥ 0")
        }
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
        super.init(parameters: parameters, learningRate: learningRate, slots: ["exp_avg", "exp_avg_sq"], name: name)
    }

    override func beginStep() {
        let t = Double(stepCount)
        corrections = (1 - pow(beta1, t), 1 - pow(beta2, t))
    }

    override func update(_ name: String, _ p: Variable, _ grad: Tensor, _ n: Int) {
        let stepSize = Float(learningRate / corrections.first)
        let sqrtBc2 = Float(corrections.second.squareRoot())
        let l2 = Float(decoupledWeightDecay ? 0 : weightDecay)
        let shrink = Float(decoupledWeightDecay ? 1 - learningRate * weightDecay : 1)
        let w1 = Float(1 - beta1), b2 = Float(beta2), w2 = Float(1 - beta2), eps = Float(eps)
        var (m, _) = store.take(name, "exp_avg", shape: p.value.shape)
        var (v, _) = store.take(name, "exp_avg_sq", shape: p.value.shape)
        p.value.makeUnique(); m.makeUnique(); v.makeUnique()
        let g = grad.storage.base, w = p.value.storage.base, mp = m.storage.base, vp = v.storage.base
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
        store.put(name, "exp_avg", m)
        store.put(name, "exp_avg_sq", v)
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
