import LucidAutograd
import LucidCore

/// A layer or network: parameters with stable dotted names, and a train/eval switch.
///
/// Names are those PyTorch would give the same network (`down.0.conv1.weight`): they are the
/// safetensors keys and the optimizer-state keys.
public protocol Module: AnyObject {
    /// Every parameter of this module and its children, by dotted name.
    var namedParameters: [(name: String, parameter: Variable)] { get }
    /// Non-trainable state saved with the weights (BatchNorm running statistics), by dotted name.
    var namedBuffers: [(name: String, buffer: Variable)] { get }
    /// Switches training-only behaviour (dropout, batch statistics) on or off, recursively.
    func setTraining(_ training: Bool)
}

extension Module {
    public var namedBuffers: [(name: String, buffer: Variable)] { [] }
    public func setTraining(_ training: Bool) {}

    /// The parameters, in name order.
    public var parameters: [Variable] { namedParameters.map(\.parameter) }
}

/// Prefixes child names: `prefixed("down.0", child.namedParameters)`.
public func prefixed<T>(_ prefix: String, _ items: [(name: String, parameter: T)]) -> [(name: String, parameter: T)] {
    items.map { (name: prefix + "." + $0.name, parameter: $0.parameter) }
}
