import LucidAutograd
import LucidCore

/// A layer or network: parameters and buffers with stable dotted names, and a train/eval switch.
///
/// A module lists what it owns directly (`ownParameters`, `ownBuffers`) and its submodules
/// (`children`); the dotted names are then built the way PyTorch's `named_parameters()` and
/// `state_dict()` build them (`d0.1.conv.weight`, `d1.0.bn.running_mean`). They are the
/// safetensors keys of a checkpoint and the keys of the optimizer state.
public protocol Module: AnyObject {
    /// Direct submodules with their attribute names, in registration order.
    var children: [(name: String, module: any Module)] { get }
    /// Parameters owned by this module itself (not by its children).
    var ownParameters: [(name: String, parameter: Variable)] { get }
    /// Non-trainable state owned by this module itself (BatchNorm running statistics).
    var ownBuffers: [(name: String, buffer: Tensor)] { get }
    /// Replaces one of `ownBuffers` (same shape); throws for an unknown name.
    func setOwnBuffer(_ name: String, to value: Tensor) throws
    /// Called on every module of the tree by `setTraining`.
    func trainingDidChange(_ training: Bool)
}

/// A module that maps one variable to another.
public protocol Layer: Module {
    /// The forward pass.
    func callAsFunction(_ x: Variable) throws -> Variable
}

extension Module {
    public var children: [(name: String, module: any Module)] { [] }
    public var ownParameters: [(name: String, parameter: Variable)] { [] }
    public var ownBuffers: [(name: String, buffer: Tensor)] { [] }
    public func setOwnBuffer(_ name: String, to value: Tensor) throws {
        throw TensorError.invalidArgument(op: "\(type(of: self)).setOwnBuffer", detail: "no buffer named '\(name)'")
    }
    public func trainingDidChange(_ training: Bool) {}

    /// Every module of the tree with its dotted name (`""` for this one), parents first.
    public var namedModules: [(name: String, module: any Module)] {
        var out: [(name: String, module: any Module)] = [("", self)]
        for (name, child) in children {
            for (sub, m) in child.namedModules { out.append((sub.isEmpty ? name : name + "." + sub, m)) }
        }
        return out
    }

    /// Every parameter of this module and its children by dotted name, in PyTorch's order.
    public var namedParameters: [(name: String, parameter: Variable)] {
        namedModules.flatMap { prefix, m in
            m.ownParameters.map { (name: prefix.isEmpty ? $0.name : prefix + "." + $0.name, parameter: $0.parameter) }
        }
    }

    /// Every buffer of this module and its children by dotted name.
    public var namedBuffers: [(name: String, buffer: Tensor)] {
        namedModules.flatMap { prefix, m in
            m.ownBuffers.map { (name: prefix.isEmpty ? $0.name : prefix + "." + $0.name, buffer: $0.buffer) }
        }
    }

    /// The parameters, in `namedParameters` order.
    public var parameters: [Variable] { namedParameters.map(\.parameter) }

    /// Total number of trainable scalars.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// Switches training-only behaviour (dropout, batch statistics) on or off, recursively.
    public func setTraining(_ training: Bool) {
        for (_, m) in namedModules { m.trainingDidChange(training) }
    }

    /// Clears the gradients of every parameter.
    public func zeroGrad() {
        for p in parameters { p.zeroGrad() }
    }

    /// Parameters and buffers by dotted name (what a checkpoint stores), sharing storage.
    public func stateDict() -> [String: Tensor] {
        var d: [String: Tensor] = [:]
        for (n, p) in namedParameters { d[n] = p.value }
        for (n, b) in namedBuffers { d[n] = b }
        return d
    }

    /// Loads parameters and buffers by dotted name. With `strict`, every key of the module must
    /// be present and no other key may be; shapes must always match.
    public func loadStateDict(_ state: [String: Tensor], strict: Bool = true) throws {
        let params = namedParameters
        var buffersByModule: [(module: any Module, local: String, full: String, shape: [Int])] = []
        for (prefix, m) in namedModules {
            for (n, b) in m.ownBuffers {
                buffersByModule.append((m, n, prefix.isEmpty ? n : prefix + "." + n, b.shape))
            }
        }
        if strict {
            let known = Set(params.map(\.name) + buffersByModule.map(\.full))
            let missing = known.subtracting(state.keys).sorted()
            let unexpected = Set(state.keys).subtracting(known).sorted()
            if !missing.isEmpty || !unexpected.isEmpty {
                throw TensorError.invalidArgument(
                    op: "loadStateDict",
                    detail: "missing keys \(missing.prefix(5))\(missing.count > 5 ? "…" : ""), unexpected keys \(unexpected.prefix(5))\(unexpected.count > 5 ? "…" : "")")
            }
        }
        for (n, p) in params {
            guard let t = state[n] else { continue }
            guard t.shape == p.value.shape else {
                throw TensorError.shapeMismatch(op: "loadStateDict", detail: "'\(n)': checkpoint \(t.shape) vs module \(p.value.shape)")
            }
            p.value = t
        }
        for b in buffersByModule {
            guard let t = state[b.full] else { continue }
            guard t.shape == b.shape else {
                throw TensorError.shapeMismatch(op: "loadStateDict", detail: "'\(b.full)': checkpoint \(t.shape) vs module \(b.shape)")
            }
            try b.module.setOwnBuffer(b.local, to: t)
        }
    }
}

/// Modules held in a list, named `"0"`, `"1"`, … as in `nn.ModuleList` (for blocks that are not
/// plain layers, such as a diffusion U-Net's residual blocks).
public final class ModuleList<M: Module>: Module {
    public let modules: [M]

    public init(_ modules: [M]) { self.modules = modules }

    public var children: [(name: String, module: any Module)] {
        modules.enumerated().map { (String($0.offset), $0.element as any Module) }
    }
}
