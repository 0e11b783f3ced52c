import Foundation
import LucidCore

/// Weight initializers with PyTorch's conventions (fan-in from dimension 1 times the kernel size).
public enum Initializers {
    /// PyTorch's fan-in of a weight: `shape[1] · ∏ shape[2...]` (`shape[0]` for a vector).
    public static func fanIn(_ shape: [Int]) -> Int {
        guard shape.count >= 2 else { return max(1, shape.first ?? 1) }
        return max(1, shape[1] * shape.dropFirst(2).reduce(1, *))
    }

    /// `kaiming_uniform_(w, a)` with leaky-ReLU gain: U(−b, b), `b = √(6 / ((1 + a²) · fanIn))`.
    /// The default `a = √5` is what `nn.Conv*d` and `nn.Linear` use (b = 1/√fanIn).
    public static func kaimingUniform(_ shape: [Int], a: Float = Float(5).squareRoot(),
                                      rng: inout RandomGenerator) -> Tensor {
        let bound = (6 / ((1 + a * a) * Float(fanIn(shape)))).squareRoot()
        return Tensor.randomUniform(shape, low: -bound, high: bound, rng: &rng)
    }

    /// `kaiming_normal_(w, mode="fan_in", nonlinearity="relu")`: N(0, 2/fanIn).
    public static func kaimingNormal(_ shape: [Int], rng: inout RandomGenerator) -> Tensor {
        Tensor.randomNormal(shape, std: (2 / Float(fanIn(shape))).squareRoot(), rng: &rng)
    }

    /// The default bias of a conv/linear layer whose weight has `weightShape`: U(±1/√fanIn).
    public static func bias(count: Int, weightShape: [Int], rng: inout RandomGenerator) -> Tensor {
        let bound = 1 / Float(fanIn(weightShape)).squareRoot()
        return Tensor.randomUniform([count], low: -bound, high: bound, rng: &rng)
    }
}
