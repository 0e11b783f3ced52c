import LucidAutograd
import LucidCore

/// A pointwise nonlinearity, by the name a config file uses.
public enum Activation: String, Codable, Sendable, CaseIterable {
    case relu
    /// Leaky ReLU with slope 0.01 (PyTorch's default).
    case leakyReLU = "leaky_relu"
    case silu
    /// GELU, exact (erf) form.
    case gelu
    case sigmoid
    case tanh
    /// No nonlinearity.
    case identity

    /// Applies the nonlinearity.
    public func callAsFunction(_ x: Variable) throws -> Variable {
        switch self {
        case .relu: return LucidAutograd.relu(x)
        case .leakyReLU: return LucidAutograd.leakyReLU(x)
        case .silu: return LucidAutograd.silu(x)
        case .gelu: return LucidAutograd.gelu(x)
        case .sigmoid: return LucidAutograd.sigmoid(x)
        case .tanh: return LucidAutograd.tanh(x)
        case .identity: return x
        }
    }
}

/// An activation as a layer (no parameters), for use in `Sequential`.
public final class ActivationLayer: Layer {
    public let activation: Activation

    public init(_ activation: Activation) { self.activation = activation }

    public func callAsFunction(_ x: Variable) throws -> Variable { try activation(x) }
}

/// Dropout (`nn.Dropout`): in training, zeroes elements with `probability` and scales the rest
/// by `1/(1−p)`; the identity in evaluation. Draws from its own seeded generator.
public final class Dropout: Layer {
    public let probability: Float
    public private(set) var training = true
    /// The generator that draws the masks.
    public var rng: RandomGenerator

    public init(probability: Float, seed: UInt64 = 0) throws {
        guard (0..<1).contains(probability) else {
            throw TensorError.invalidArgument(op: "Dropout", detail: "probability \(probability) must lie in [0, 1)")
        }
        self.probability = probability
        rng = RandomGenerator(seed: seed)
    }

    public func trainingDidChange(_ training: Bool) { self.training = training }

    public func callAsFunction(_ x: Variable) throws -> Variable {
        dropout(x, probability: probability, training: training, rng: &rng)
    }
}
