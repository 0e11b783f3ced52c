import LucidAutograd
import LucidCore

/// Batch normalization over axis 1 (`nn.BatchNorm1d/2d/3d`): batch statistics in training
/// (updating the running ones with `momentum`), running statistics in evaluation. Buffers are
/// named as PyTorch names them: `running_mean`, `running_var`, `num_batches_tracked`.
public final class BatchNorm: Layer {
    public let channels: Int
    public let eps: Float
    public let momentum: Float
    /// `[channels]` scale (γ), or nil without affine parameters.
    public let weight: Variable?
    /// `[channels]` shift (β), or nil.
    public let bias: Variable?
    /// Running mean/variance and the number of batches seen.
    public let statistics: BatchNormStatistics
    /// True while training (batch statistics are used and the running ones updated).
    public private(set) var training = true

    public init(channels: Int, eps: Float = 1e-5, momentum: Float = 0.1, affine: Bool = true) throws {
        guard channels > 0, eps > 0, (0...1).contains(momentum) else {
            throw TensorError.invalidArgument(op: "BatchNorm", detail: "channels \(channels) must be > 0, eps \(eps) > 0, momentum \(momentum) in [0, 1]")
        }
        self.channels = channels
        self.eps = eps
        self.momentum = momentum
        weight = affine ? Variable(Tensor(ones: [channels]), requiresGrad: true) : nil
        bias = affine ? Variable(Tensor(zeros: [channels]), requiresGrad: true) : nil
        statistics = BatchNormStatistics(channels: channels)
    }

    public var ownParameters: [(name: String, parameter: Variable)] {
        guard let weight, let bias else { return [] }
        return [("weight", weight), ("bias", bias)]
    }

    public var ownBuffers: [(name: String, buffer: Tensor)] {
        [("running_mean", statistics.mean), ("running_var", statistics.variance),
         ("num_batches_tracked", Tensor(scalar: Float(statistics.batchesTracked)))]
    }

    public func setOwnBuffer(_ name: String, to value: Tensor) throws {
        switch name {
        case "running_mean": statistics.mean = value
        case "running_var": statistics.variance = value
        case "num_batches_tracked":
            guard value.count == 1 else {
                throw TensorError.shapeMismatch(op: "BatchNorm.setOwnBuffer", detail: "num_batches_tracked must be a scalar, got \(value.shape)")
            }
            statistics.batchesTracked = Int(value.scalars[0])
        default:
            throw TensorError.invalidArgument(op: "BatchNorm.setOwnBuffer", detail: "no buffer named '\(name)'")
        }
    }

    public func trainingDidChange(_ training: Bool) { self.training = training }

    public func callAsFunction(_ x: Variable) throws -> Variable {
        guard x.shape.count >= 2, x.shape[1] == channels else {
            throw TensorError.shapeMismatch(op: "BatchNorm", detail: "expected input [N, \(channels), …], got \(x.shape)")
        }
        return try batchNorm(x, weight: weight, bias: bias, statistics: statistics, training: training,
                             momentum: momentum, eps: eps)
    }
}

/// Group normalization (`nn.GroupNorm`): statistics over each group of channels and all
/// spatial positions of one sample; per-channel affine `weight`/`bias`.
public final class GroupNorm: Layer {
    public let groups: Int
    public let channels: Int
    public let eps: Float
    public let weight: Variable?
    public let bias: Variable?

    public init(groups: Int, channels: Int, eps: Float = 1e-5, affine: Bool = true) throws {
        guard groups > 0, channels > 0, channels % groups == 0 else {
            throw TensorError.invalidArgument(op: "GroupNorm", detail: "channels \(channels) must be a positive multiple of groups \(groups)")
        }
        self.groups = groups
        self.channels = channels
        self.eps = eps
        weight = affine ? Variable(Tensor(ones: [channels]), requiresGrad: true) : nil
        bias = affine ? Variable(Tensor(zeros: [channels]), requiresGrad: true) : nil
    }

    public var ownParameters: [(name: String, parameter: Variable)] {
        guard let weight, let bias else { return [] }
        return [("weight", weight), ("bias", bias)]
    }

    public func callAsFunction(_ x: Variable) throws -> Variable {
        guard x.shape.count >= 2, x.shape[1] == channels else {
            throw TensorError.shapeMismatch(op: "GroupNorm", detail: "expected input [N, \(channels), …], got \(x.shape)")
        }
        return try groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps)
    }
}

/// Instance normalization (`nn.InstanceNorm1d/2d/3d`, no running statistics): each channel
/// of each sample normalized over its spatial positions; affine parameters optional (PyTorch's
/// default is none).
public final class InstanceNorm: Layer {
    public let channels: Int
    public let eps: Float
    public let weight: Variable?
    public let bias: Variable?

    public init(channels: Int, eps: Float = 1e-5, affine: Bool = false) throws {
        guard channels > 0 else {
            throw TensorError.invalidArgument(op: "InstanceNorm", detail: "channels \(channels) must be positive")
        }
        self.channels = channels
        self.eps = eps
        weight = affine ? Variable(Tensor(ones: [channels]), requiresGrad: true) : nil
        bias = affine ? Variable(Tensor(zeros: [channels]), requiresGrad: true) : nil
    }

    public var ownParameters: [(name: String, parameter: Variable)] {
        guard let weight, let bias else { return [] }
        return [("weight", weight), ("bias", bias)]
    }

    public func callAsFunction(_ x: Variable) throws -> Variable {
        guard x.shape.count >= 3, x.shape[1] == channels else {
            throw TensorError.shapeMismatch(op: "InstanceNorm", detail: "expected input [N, \(channels), spatial…], got \(x.shape)")
        }
        return try instanceNorm(x, weight: weight, bias: bias, eps: eps)
    }
}
