import Foundation
import LucidAutograd
import LucidCore

/// The configuration of a `DiffusionUNet`. Missing keys decode to the defaults below.
public struct DiffusionUNetConfig: ModelConfig, Equatable {
    /// Spatial dimensions: 2 or 3.
    public var dims = 2
    /// Channels of the images the model generates (and of `x_t`).
    public var channels = 1
    /// Channels of the condition image concatenated to `x_t` (0: unconditional).
    public var conditionChannels = 0
    /// Number of downsamplings (2× average pooling).
    public var depth = 2
    /// Channels of the top level; each level below doubles them.
    public var firstFilters = 32
    /// Residual blocks per level on the way down and on the way up.
    public var blocksPerLevel = 1
    /// Convolution kernel extent (odd).
    public var kernel = 3
    /// GroupNorm groups (at most the channels of a level; reduced to a divisor).
    public var groups = 8
    /// Self-attention between the two residual blocks of the lowest resolution.
    public var attention = false
    /// Attention heads (they split the channels of the lowest level).
    public var heads = 1
    /// Keeps an exponential moving average of the weights (buffers `ema.*`) for sampling.
    public var ema = true

    public init() {}

    public static let kind = "diffusion_unet"
    public var spatialRank: Int { dims }
    /// `x_t` and the condition, concatenated.
    public var inChannels: Int { channels + conditionChannels }
    public var outputChannels: Int { channels }
    public var sizeMultiple: Int { 1 << depth }
    /// Width of the time embedding (4× the first level's channels, as DDPM).
    public var embeddingWidth: Int { 4 * firstFilters }
    public func makeModel(rng: inout RandomGenerator) throws -> any ImageModel { try DiffusionUNet(self, rng: &rng) }

    /// The convolutions' reach, as `UNetConfig` counts it. GroupNorm statistics (and attention)
    /// see the whole tile, so tiles agree with a whole-image pass only approximately.
    public var receptiveRadius: Int {
        let k = kernel / 2
        var radius = k, scale = 1
        for _ in 0..<depth {
            radius += 2 * blocksPerLevel * k * scale + scale
            scale *= 2
        }
        radius += 4 * k * scale
        for _ in 0..<depth {
            radius += scale
            scale /= 2
            radius += 2 * blocksPerLevel * k * scale
        }
        return radius + k
    }

    /// The GroupNorm groups of a level with `channels` channels.
    func groups(for channels: Int) -> Int {
        var g = min(groups, channels)
        while channels % g != 0 { g -= 1 }
        return g
    }

    /// Throws a one-line error naming the first invalid field.
    public func validate() throws {
        func bad(_ s: String) -> TensorError { TensorError.invalidArgument(op: "DiffusionUNetConfig", detail: s) }
        guard dims == 2 || dims == 3 else { throw bad("dims \(dims) must be 2 or 3") }
        guard channels > 0, conditionChannels >= 0 else { throw bad("channels \(channels) must be positive, conditionChannels \(conditionChannels) not negative") }
        guard (1...6).contains(depth) else { throw bad("depth \(depth) must be 1…6") }
        guard firstFilters > 0, blocksPerLevel > 0, groups > 0 else {
            throw bad("firstFilters \(firstFilters), blocksPerLevel \(blocksPerLevel) and groups \(groups) must be positive")
        }
        guard kernel > 0, kernel % 2 == 1 else { throw bad("kernel \(kernel) must be odd and positive") }
        guard heads > 0, (firstFilters << depth) % heads == 0 else {
            throw bad("heads \(heads) must divide the \(firstFilters << depth) channels of the lowest level")
        }
    }

    enum CodingKeys: String, CodingKey {
        case dims, channels, conditionChannels, depth, firstFilters, blocksPerLevel, kernel, groups, attention, heads, ema
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func get<T: Decodable>(_ k: CodingKeys, _ d: T) throws -> T { try c.decodeIfPresent(T.self, forKey: k) ?? d }
        let d = DiffusionUNetConfig()
        dims = try get(.dims, d.dims)
        channels = try get(.channels, d.channels)
        conditionChannels = try get(.conditionChannels, d.conditionChannels)
        depth = try get(.depth, d.depth)
        firstFilters = try get(.firstFilters, d.firstFilters)
        blocksPerLevel = try get(.blocksPerLevel, d.blocksPerLevel)
        kernel = try get(.kernel, d.kernel)
        groups = try get(.groups, d.groups)
        attention = try get(.attention, d.attention)
        heads = try get(.heads, d.heads)
        ema = try get(.ema, d.ema)
    }
}

extension Conv {
    /// Sets weight and bias to zero (DDPM's zero-initialized last layers).
    func zeroed() {
        weight.value = Tensor(zeros: weight.shape)
        bias?.value = Tensor(zeros: [outChannels])
    }
}

/// `SiLU(GroupNorm(x))`: the pre-activation of every diffusion U-Net convolution.
func normalizedSiLU(_ norm: GroupNorm, _ x: Variable) throws -> Variable {
    silu(try norm(x))
}

/// DDPM's residual block: `skip(x) + conv2(SiLU(GN(conv1(SiLU(GN(x))) + W·e)))`, where `e` is
/// the (activated) time embedding, projected per block to a shift of every channel.
/// Children: `norm1`, `conv1`, `emb`, `norm2`, `conv2`, and `skip` (a 1×1 convolution) when
/// the channels change. `conv2` starts at zero (weight and bias), so a fresh block is its skip path.
public final class ResidualBlock: Module {
    public let norm1: GroupNorm
    public let conv1: Conv
    public let embedding: Linear
    public let norm2: GroupNorm
    public let conv2: Conv
    public let skip: Conv?

    public init(dims: Int, inChannels: Int, outChannels: Int, embeddingWidth: Int, kernel: Int,
                groups: (Int) -> Int, rng: inout RandomGenerator) throws {
        norm1 = try GroupNorm(groups: groups(inChannels), channels: inChannels)
        conv1 = try Conv(dims: dims, inChannels: inChannels, outChannels: outChannels, kernel: kernel, padding: kernel / 2, rng: &rng)
        embedding = try Linear(inFeatures: embeddingWidth, outFeatures: outChannels, rng: &rng)
        norm2 = try GroupNorm(groups: groups(outChannels), channels: outChannels)
        conv2 = try Conv(dims: dims, inChannels: outChannels, outChannels: outChannels, kernel: kernel, padding: kernel / 2, rng: &rng)
        conv2.zeroed()
        skip = inChannels == outChannels ? nil
            : try Conv(dims: dims, inChannels: inChannels, outChannels: outChannels, kernel: 1, rng: &rng)
    }

    public var children: [(name: String, module: any Module)] {
        [("norm1", norm1), ("conv1", conv1), ("emb", embedding), ("norm2", norm2), ("conv2", conv2)]
            + (skip.map { [("skip", $0 as any Module)] } ?? [])
    }

    /// The block on `x` `[N, Cin, spatial…]` with the activated embedding `e` `[N, E]`.
    public func callAsFunction(_ x: Variable, embedding e: Variable) throws -> Variable {
        var h = try conv1(normalizedSiLU(norm1, x))
        let shift = try embedding(e)
        h = try h + shift.reshaped(shift.shape + Array(repeating: 1, count: conv1.dims))
        h = try conv2(normalizedSiLU(norm2, h))
        return try (skip?(x) ?? x) + h
    }
}

/// Multi-head self-attention over all positions of a feature map, with a residual connection:
/// `x + proj(attention(q, k, v))`, `q, k, v` from a 1×1 convolution of `GroupNorm(x)`.
/// Children: `norm`, `qkv`, `proj` (`proj` starts at zero).
public final class SelfAttention: Layer {
    public let channels: Int
    public let heads: Int
    public let norm: GroupNorm
    public let qkv: Conv
    public let proj: Conv

    public init(dims: Int, channels: Int, heads: Int, groups: Int, rng: inout RandomGenerator) throws {
        guard heads > 0, channels % heads == 0 else {
            throw TensorError.invalidArgument(op: "SelfAttention", detail: "heads \(heads) must divide channels \(channels)")
        }
        self.channels = channels
        self.heads = heads
        norm = try GroupNorm(groups: groups, channels: channels)
        qkv = try Conv(dims: dims, inChannels: channels, outChannels: 3 * channels, kernel: 1, rng: &rng)
        proj = try Conv(dims: dims, inChannels: channels, outChannels: channels, kernel: 1, rng: &rng)
        proj.zeroed()
    }

    public var children: [(name: String, module: any Module)] { [("norm", norm), ("qkv", qkv), ("proj", proj)] }

    public func callAsFunction(_ x: Variable) throws -> Variable {
        guard x.shape.count >= 3, x.shape[1] == channels else {
            throw TensorError.shapeMismatch(op: "SelfAttention", detail: "expected input [N, \(channels), spatial…], got \(x.shape)")
        }
        let n = x.shape[0], length = x.shape.dropFirst(2).reduce(1, *), d = channels / heads
        let qkv = try self.qkv(norm(x)).reshaped([n, 3, heads, d, length])
        func part(_ k: Int) throws -> Variable {
            try qkv.slice(axis: 1, range: k..<(k + 1)).reshaped([n, heads, d, length]).permuted([0, 1, 3, 2])
        }
        let attended = try scaledDotProductAttention(query: part(0), key: part(1), value: part(2))
        let merged = try attended.permuted([0, 1, 3, 2]).reshaped(x.shape)
        return try x + proj(merged)
    }
}

/// A DDPM-style U-Net for diffusion models, 2-D or 3-D, that takes `x_t` (concatenated with a
/// condition image) and a noise-level input `t` per sample.
///
/// `t` (conventionally `1000·step/T`) is embedded sinusoidally and passed through an MLP
/// (`embed.0`, SiLU, `embed.2`); every residual block adds its projection of the activated
/// embedding. Levels `i` have `f·2ⁱ` channels; each goes down by 2× average pooling and up by
/// nearest upsampling with the level's skip concatenated. Children: `embed`, `conv_in`,
/// `down.i.j`, `mid.0`, [`mid_attn`], `mid.1`, `up.i.j`, `norm_out`, `conv_out`, [`ema`].
/// ```swift
/// var rng = RandomGenerator(seed: 0)
/// let net = try DiffusionUNet(DiffusionUNetConfig(), rng: &rng)
/// let y = try net(Variable(xt), condition: Variable(t))   // xt [N, C, H, W], t [N]
/// ```
public final class DiffusionUNet: ImageModel, ConditionalLayer {
    public let config: DiffusionUNetConfig
    public let embed: Sequential
    public let convIn: Conv
    public let down: ModuleList<ModuleList<ResidualBlock>>
    public let middle: ModuleList<ResidualBlock>
    public let attention: SelfAttention?
    /// Per level `i` (in level order; applied from the lowest up).
    public let up: ModuleList<ModuleList<ResidualBlock>>
    public let normOut: GroupNorm
    public let convOut: Conv
    /// The average weights sampling uses (`config.ema`).
    public private(set) var ema: ExponentialMovingAverage?

    public init(_ config: DiffusionUNetConfig, rng: inout RandomGenerator) throws {
        try config.validate()
        self.config = config
        let c = config, f = c.firstFilters, e = c.embeddingWidth
        func block(_ cin: Int, _ cout: Int, _ rng: inout RandomGenerator) throws -> ResidualBlock {
            try ResidualBlock(dims: c.dims, inChannels: cin, outChannels: cout, embeddingWidth: e, kernel: c.kernel,
                              groups: c.groups(for:), rng: &rng)
        }
        embed = Sequential([try Linear(inFeatures: f, outFeatures: e, rng: &rng), ActivationLayer(.silu),
                            try Linear(inFeatures: e, outFeatures: e, rng: &rng)])
        convIn = try Conv(dims: c.dims, inChannels: c.inChannels, outChannels: f, kernel: c.kernel, padding: c.kernel / 2, rng: &rng)
        var downs: [ModuleList<ResidualBlock>] = []
        for i in 0..<c.depth {
            downs.append(ModuleList(try (0..<c.blocksPerLevel).map { j in
                try block(j == 0 ? (i == 0 ? f : f << (i - 1)) : f << i, f << i, &rng)
            }))
        }
        down = ModuleList(downs)
        let bottom = f << c.depth
        middle = ModuleList([try block(f << (c.depth - 1), bottom, &rng), try block(bottom, bottom, &rng)])
        attention = c.attention ? try SelfAttention(dims: c.dims, channels: bottom, heads: c.heads,
                                                    groups: c.groups(for: bottom), rng: &rng) : nil
        var ups: [ModuleList<ResidualBlock>] = []
        for i in 0..<c.depth {
            ups.append(ModuleList(try (0..<c.blocksPerLevel).map { j in
                try block(j == 0 ? (f << (i + 1)) + (f << i) : f << i, f << i, &rng)
            }))
        }
        up = ModuleList(ups)
        normOut = try GroupNorm(groups: c.groups(for: f), channels: f)
        convOut = try Conv(dims: c.dims, inChannels: f, outChannels: c.channels, kernel: c.kernel, padding: c.kernel / 2, rng: &rng)
        convOut.zeroed()
        if c.ema { ema = ExponentialMovingAverage(of: namedParameters) }
    }

    public var children: [(name: String, module: any Module)] {
        var out: [(name: String, module: any Module)] = [("embed", embed), ("conv_in", convIn), ("down", down), ("mid", middle)]
        if let attention { out.append(("mid_attn", attention)) }
        out += [("up", up), ("norm_out", normOut), ("conv_out", convOut)]
        if let ema { out.append(("ema", ema)) }
        return out
    }

    public var architecture: any ModelConfig { config }

    /// Spatial extents must be divisible by this (2^depth).
    public var sizeMultiple: Int { config.sizeMultiple }

    /// A diffusion network needs its noise level: call `callAsFunction(_:condition:)`.
    public func callAsFunction(_ x: Variable) throws -> Variable {
        throw TensorError.invalidArgument(op: "DiffusionUNet", detail: "a diffusion network needs the noise level of its input (call it with condition: t)")
    }

    /// The network on `x` `[N, channels + conditionChannels, spatial…]` at noise-level inputs `t` (`[N]`).
    public func callAsFunction(_ x: Variable, condition t: Variable) throws -> Variable {
        let c = config
        try checkInput(x, dims: c.dims, channels: c.inChannels, op: "DiffusionUNet")
        guard x.shape.dropFirst(2).allSatisfy({ $0 % sizeMultiple == 0 }) else {
            throw TensorError.shapeMismatch(op: "DiffusionUNet", detail: "spatial extents of input \(x.shape) must be divisible by \(sizeMultiple) (depth \(c.depth))")
        }
        guard t.value.count == x.shape[0] else {
            throw TensorError.shapeMismatch(op: "DiffusionUNet", detail: "\(t.value.count) noise levels \(t.shape) for a batch of \(x.shape[0])")
        }
        let e = silu(try embed(Variable(sinusoidalEmbedding(t.value, dim: c.firstFilters))))
        var h = try convIn(x)
        var skips: [Variable] = []
        for level in down.modules {
            for b in level.modules { h = try b(h, embedding: e) }
            skips.append(h)
            h = try avgPool(h, kernel: [2])
        }
        h = try middle.modules[0](h, embedding: e)
        if let attention { h = try attention(h) }
        h = try middle.modules[1](h, embedding: e)
        for i in stride(from: c.depth - 1, through: 0, by: -1) {
            h = try concat([upsample(h, scale: [2], mode: .nearest), skips[i]], axis: 1)
            for b in up.modules[i].modules { h = try b(h, embedding: e) }
        }
        return try convOut(normalizedSiLU(normOut, h))
    }

    /// Moves the moving average towards the current weights (after an optimizer step).
    public func updateAverage(decay: Double) throws {
        try ema?.update(from: namedParameters, decay: decay)
    }

    /// A network to sample with: a copy carrying the moving average of the weights (the
    /// weights themselves without one), so this network, perhaps still training, keeps its own.
    public func averaged() throws -> DiffusionUNet {
        var rng = RandomGenerator(seed: 0)
        let copy = try DiffusionUNet(config, rng: &rng)
        try copy.loadStateDict(stateDict())
        try copy.ema?.copy(into: copy.namedParameters)
        return copy
    }
}
