import LucidCore

/// A tensor on the autodiff tape: its value, its gradient, and how to send gradients to the
/// variables it was computed from.
///
/// ```swift
/// let w = Variable(Tensor(ones: [3]), requiresGrad: true)
/// let loss = try (w * w).sum()
/// try loss.backward()
/// w.grad   // 2·w
/// ```
public final class Variable {
    /// The forward value.
    public var value: Tensor
    /// The accumulated gradient of the last `backward()` calls (nil until one reaches here).
    public var grad: Tensor?
    /// Whether gradients flow to (and through) this variable.
    public let requiresGrad: Bool
    /// Inputs this variable was computed from (empty for leaves).
    public private(set) var parents: [Variable]
    /// Maps the gradient of this variable to one gradient per parent (nil where none is needed).
    private var backwardRule: ((Tensor) throws -> [Tensor?])?
    /// Name of the operation that produced this variable, for error messages.
    public let op: String

    /// A leaf variable (an input or a parameter).
    public init(_ value: Tensor, requiresGrad: Bool = false) {
        self.value = value
        self.requiresGrad = requiresGrad
        self.parents = []
        self.op = "leaf"
    }

    private init(value: Tensor, parents: [Variable], op: String, rule: @escaping (Tensor) throws -> [Tensor?]) {
        self.value = value
        self.requiresGrad = true
        self.parents = parents
        self.op = op
        self.backwardRule = rule
    }

    /// Shape of the value.
    public var shape: [Int] { value.shape }
    /// True for variables not produced by a recorded operation.
    public var isLeaf: Bool { backwardRule == nil }

    /// Records an operation's result. `rule` receives the output gradient and returns one
    /// gradient per parent, in order. Nothing is recorded in a `noGrad` scope or when no parent
    /// needs a gradient.
    public static func record(_ value: Tensor, parents: [Variable], op: String,
                              rule: @escaping (Tensor) throws -> [Tensor?]) -> Variable {
        guard Autograd.isRecording, parents.contains(where: { $0.requiresGrad }) else {
            return Variable(value)
        }
        return Variable(value: value, parents: parents, op: op, rule: rule)
    }

    /// A leaf sharing this value that does not carry gradients back.
    public func detached() -> Variable { Variable(value) }

    /// Back-propagates from this variable, seeded with `seed` (ones for a scalar when nil).
    /// Gradients add up in `grad` of every variable that requires them. The graph is released
    /// afterwards (rules and saved activations are freed as soon as they have run).
    /// `gradientReady` is called with each leaf as soon as its gradient is final (data-parallel
    /// training starts sending it while the rest of the pass runs).
    public func backward(seed: Tensor? = nil, gradientReady: ((Variable) throws -> Void)? = nil) throws {
        guard requiresGrad else {
            throw TensorError.invalidArgument(op: "backward", detail: "the output does not require gradients (was it computed under noGrad, or from constants only?)")
        }
        let g0: Tensor
        if let seed {
            guard seed.shape == value.shape else {
                throw TensorError.shapeMismatch(op: "backward", detail: "seed \(seed.shape) vs output \(value.shape)")
            }
            g0 = seed
        } else {
            guard value.count == 1 else {
                throw TensorError.invalidArgument(op: "backward", detail: "output of shape \(value.shape) is not a scalar; pass a seed")
            }
            g0 = Tensor(shape: value.shape, repeating: 1)
        }
        // Topological order (iterative DFS), outputs first after reversal; and for each leaf the
        // number of rules that send it a gradient.
        var order: [Variable] = []
        var visited = Set<ObjectIdentifier>()
        var senders: [ObjectIdentifier: Int] = [:]
        var stack: [(Variable, Bool)] = [(self, false)]
        while let (v, expanded) = stack.popLast() {
            if expanded {
                order.append(v)
                for p in v.parents where p.requiresGrad && p.isLeaf { senders[ObjectIdentifier(p), default: 0] += 1 }
                continue
            }
            guard visited.insert(ObjectIdentifier(v)).inserted else { continue }
            stack.append((v, true))
            for p in v.parents where p.requiresGrad && !visited.contains(ObjectIdentifier(p)) {
                stack.append((p, false))
            }
        }
        var pending: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): g0]
        func finish(_ leaf: Variable, _ g: Tensor) throws {
            leaf.grad = leaf.grad.map { Autograd.accumulate($0, g) } ?? g
            try gradientReady?(leaf)
        }
        // Popping (rather than iterating) drops each node as soon as its rule has run, so the
        // activations it captured are freed during the backward pass, not after it.
        while let v = order.popLast() {
            guard let g = pending.removeValue(forKey: ObjectIdentifier(v)) else { continue }
            if let rule = v.backwardRule {
                let grads = try rule(g)
                precondition(grads.count == v.parents.count, "\(v.op): backward rule returned \(grads.count) gradients for \(v.parents.count) inputs")
                for (p, pg) in zip(v.parents, grads) where p.requiresGrad {
                    let key = ObjectIdentifier(p)
                    if let pg {
                        guard pg.shape == p.value.shape else {
                            throw TensorError.shapeMismatch(op: "\(v.op) backward", detail: "gradient \(pg.shape) for input \(p.value.shape)")
                        }
                        if let acc = pending[key] { pending[key] = Autograd.accumulate(acc, pg) } else { pending[key] = pg }
                    }
                    // A leaf whose last sender has run is final now, not when the order reaches it.
                    if p.isLeaf, let n = senders[key] {
                        senders[key] = n - 1
                        if n == 1, let total = pending.removeValue(forKey: key) { try finish(p, total) }
                    }
                }
                v.backwardRule = nil
                v.parents = []
            } else {
                try finish(v, g)
            }
        }
    }

    /// Clears the accumulated gradient.
    public func zeroGrad() { grad = nil }
}

/// Global switches of the tape.
public enum Autograd {
    nonisolated(unsafe) static var recordingDepth = 0

    /// False inside `noGrad` scopes.
    public static var isRecording: Bool { recordingDepth == 0 }

    /// `a + b` for equal shapes (gradient accumulation).
    static func accumulate(_ a: Tensor, _ b: Tensor) -> Tensor {
        var out = a
        out.withUnsafeMutableBufferPointer { o in
            b.withUnsafeBufferPointer { bb in
                for i in 0..<o.count { o[i] += bb[i] }
            }
        }
        return out
    }
}

/// Runs `body` without recording operations (inference, parameter updates).
public func noGrad<R>(_ body: () throws -> R) rethrows -> R {
    Autograd.recordingDepth += 1
    defer { Autograd.recordingDepth -= 1 }
    return try body()
}
