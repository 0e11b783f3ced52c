import LucidAutograd
import LucidCore

/// The configuration of a `UNet`. Missing keys decode to the defaults below (a 2-D CARE net).
public struct UNetConfig: ModelConfig, Equatable {
    /// Normalization after each convolution (`instance` with learned per-channel affine parameters).
    public enum Norm: String, CaseIterable, Codable, Sendable { case none, batch, group, instance }
    /// How each level is downsampled by 2 (recipe `model.pooling`).
    public enum Pooling: String, CaseIterable, Codable, Sendable {
        /// 2× max pooling.
        case max
        /// A learned stride-2 convolution with kernel 2 (+ norm + activation), as pytorch_fnet.
        case strideConv = "conv"
        /// N2V2's max-blur pooling (max pool stride 1, then a binomial blur with stride 2).
        case maxBlur = "maxblur"

        /// Also reads the names checkpoints of Lucid 0.1 wrote (`stride_conv`, `max_blur`).
        public init(from decoder: Decoder) throws {
            let name = try decoder.singleValueContainer().decode(String.self)
            guard let value = Pooling(rawValue: name) ?? ["stride_conv": .strideConv, "max_blur": .maxBlur][name] else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown pooling '\(name)'"))
            }
            self = value
        }
    }
    /// How each level is upsampled by 2 (recipe `model.upsampling`).
    public enum Upsampling: String, CaseIterable, Codable, Sendable {
        /// Nearest neighbour (CSBDeep); the previous convolution halves the channels.
        case nearest
        /// Bi/trilinear (align_corners=false); the previous convolution halves the channels.
        case linear
        /// A transposed convolution with kernel 2, stride 2 that halves the channels (+ norm + activation).
        case transposed = "transpose"

        /// Also reads the name checkpoints of Lucid 0.1 wrote (`transposed`).
        public init(from decoder: Decoder) throws {
            let name = try decoder.singleValueContainer().decode(String.self)
            guard let value = Upsampling(rawValue: name) ?? (name == "transposed" ? .transposed : nil) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown upsampling '\(name)'"))
            }
            self = value
        }
    }

    /// Spatial dimensions: 2 or 3.
    public var dims = 2
    public var inChannels = 1
    public var outChannels = 1
    /// Number of downsamplings.
    public var depth = 2
    /// Filters of the top level; each level below doubles them.
    public var firstFilters = 32
    /// Convolutions per level (in the down, middle and up blocks).
    public var convsPerLevel = 2
    /// Kernel size of the level convolutions (odd; padded to keep the size).
    public var kernel = 3
    public var norm: Norm = .none
    /// Groups of `.group` normalization.
    public var groups = 8
    public var activation: Activation = .relu
    /// Whether the level convolutions have a bias (PyTorch nets usually drop it before BatchNorm).
    public var convBias = true
    /// Adds the input to the (mean) output: the net learns a correction (CARE).
    public var residual = false
    public var pooling: Pooling = .max
    public var upsampling: Upsampling = .nearest
    /// False drops the skip connection of the top level (N2V2).
    public var skipTop = true
    /// Kernel of the output convolution (1 in CSBDeep, 3 in pytorch_fnet).
    public var outputKernel = 1
    /// Doubles the output channels: per output channel a mean and a log-scale (Laplace head).
    public var probabilistic = false
    /// Dropout probability after the activation of every level convolution (CSBDeep's
    /// `dropout`); 0 disables it. Active in training mode only.
    public var dropout: Double = 0

    public init() {}

    public static let kind = "unet"
    public var spatialRank: Int { dims }
    /// Means, then (probabilistic) the Laplace log-scales.
    public var outputChannels: Int { outChannels * (probabilistic ? 2 : 1) }
    public func makeModel(rng: inout RandomGenerator) throws -> any ImageModel { try UNet(self, rng: &rng) }

    /// CSBDeep's CARE defaults: 2-D, depth 2, 32 filters doubling, 2×(3×3 conv + ReLU) a level,
    /// 2×2 max pooling, nearest upsampling + concatenation, 1×1 output, residual.
    public static var care2D: UNetConfig {
        var c = UNetConfig()
        c.residual = true
        return c
    }

    /// The 3-D benchmark net: as CARE with 16 filters, Conv3d (no bias) + BatchNorm3d + ReLU, no residual.
    public static var unet3D: UNetConfig {
        var c = UNetConfig()
        c.dims = 3
        c.firstFilters = 16
        c.norm = .batch
        c.convBias = false
        return c
    }

    /// pytorch_fnet's 3-D net: depth 4, 32 filters doubling, 2×(conv + BatchNorm + ReLU) a level,
    /// stride-2 convolutions down, transposed convolutions up, 3×3×3 output convolution.
    public static var fnet3D: UNetConfig {
        var c = UNetConfig()
        c.dims = 3
        c.depth = 4
        c.norm = .batch
        c.pooling = .strideConv
        c.upsampling = .transposed
        c.outputKernel = 3
        return c
    }

    enum CodingKeys: String, CodingKey {
        case dims, inChannels, outChannels, depth, firstFilters, convsPerLevel, kernel, norm, groups,
             activation, convBias, residual, pooling, upsampling, skipTop, outputKernel, probabilistic, dropout
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func get<T: Decodable>(_ k: CodingKeys, _ d: T) throws -> T { try c.decodeIfPresent(T.self, forKey: k) ?? d }
        let d = UNetConfig()
        dims = try get(.dims, d.dims)
        inChannels = try get(.inChannels, d.inChannels)
        outChannels = try get(.outChannels, d.outChannels)
        depth = try get(.depth, d.depth)
        firstFilters = try get(.firstFilters, d.firstFilters)
        convsPerLevel = try get(.convsPerLevel, d.convsPerLevel)
        kernel = try get(.kernel, d.kernel)
        norm = try get(.norm, d.norm)
        groups = try get(.groups, d.groups)
        activation = try get(.activation, d.activation)
        convBias = try get(.convBias, d.convBias)
        residual = try get(.residual, d.residual)
        pooling = try get(.pooling, d.pooling)
        upsampling = try get(.upsampling, d.upsampling)
        skipTop = try get(.skipTop, d.skipTop)
        outputKernel = try get(.outputKernel, d.outputKernel)
        probabilistic = try get(.probabilistic, d.probabilistic)
        dropout = try get(.dropout, d.dropout)
    }

    /// Spatial extents must be divisible by this (2^depth).
    public var sizeMultiple: Int { 1 << depth }

    /// Pooling and upsampling are counted at their worst alignment.
    public var receptiveRadius: Int {
        let k = kernel / 2
        var radius = 0, scale = 1
        for _ in 0..<depth {
            radius += convsPerLevel * k * scale
            switch pooling {
            case .max, .strideConv: radius += scale
            case .maxBlur: radius += 2 * scale + scale
            }
            scale *= 2
        }
        radius += convsPerLevel * k * scale
        for _ in 0..<depth {
            radius += scale    // upsampling (nearest, linear or transposed) reaches one coarse pixel
            scale /= 2
            radius += convsPerLevel * k * scale
        }
        return radius + outputKernel / 2
    }

    /// Throws a one-line error naming the first invalid field.
    public func validate() throws {
        func bad(_ s: String) -> TensorError { TensorError.invalidArgument(op: "UNetConfig", detail: s) }
        guard dims == 2 || dims == 3 else { throw bad("dims \(dims) must be 2 or 3") }
        guard inChannels > 0, outChannels > 0 else { throw bad("channels (\(inChannels), \(outChannels)) must be positive") }
        guard depth >= 0, depth <= 8 else { throw bad("depth \(depth) must be 0…8") }
        guard firstFilters > 0, convsPerLevel > 0 else { throw bad("firstFilters \(firstFilters) and convsPerLevel \(convsPerLevel) must be positive") }
        guard kernel > 0, kernel % 2 == 1, outputKernel > 0, outputKernel % 2 == 1 else {
            throw bad("kernel \(kernel) and outputKernel \(outputKernel) must be odd and positive")
        }
        guard norm != .group || (groups > 0 && firstFilters % groups == 0) else {
            throw bad("group norm needs firstFilters \(firstFilters) divisible by groups \(groups)")
        }
        guard (0..<1).contains(dropout) else { throw bad("dropout \(dropout) must lie in [0, 1)") }
        guard !residual || inChannels == outChannels else {
            throw bad("residual needs inChannels == outChannels (got \(inChannels), \(outChannels))")
        }
        // Sizes from a checkpoint's lucid.json are untrusted: a lower bound on the weights must be
        // countable and fit before any is allocated. Encoder level i has convsPerLevel − 1
        // convolutions from and to 2^i·firstFilters channels, the middle convsPerLevel of at least
        // 2^(depth−1)·firstFilters, the first one inChannels·firstFilters.
        var kernels = [SystemMemory.product([inChannels, firstFilters])]
        for level in 0..<depth {
            let count = level == depth - 1 ? SystemMemory.sum([convsPerLevel - 1, convsPerLevel]) : convsPerLevel - 1
            kernels.append(count.flatMap { SystemMemory.product([$0, firstFilters << level, firstFilters << level]) })
        }
        let taps = SystemMemory.product(Array(repeating: kernel, count: dims))
        let bytes = SystemMemory.sum(kernels).flatMap { total in taps.flatMap { SystemMemory.product([4, $0, total]) } }
        let tooWide = firstFilters > Int.max >> 9  // `firstFilters << level` would lose bits
        if let short = SystemMemory.shortfall(tooWide ? nil : bytes) {
            throw bad("its convolution weights (kernel \(kernel), \(dims)-D, \(firstFilters) filters doubling over \(depth) levels, "
                      + "\(convsPerLevel) convolutions per level) \(short)")
        }
    }
}

/// Convolution (or transposed convolution), optional normalization, activation, optional
/// dropout: one stage of a U-Net level. Children: `conv`, `bn` (BatchNorm) or `norm`
/// (group/instance), `dropout` (no parameters, so PyTorch's names are unaffected).
public final class ConvBlock: Layer {
    public let conv: any Layer
    public let norm: (any Layer)?
    public let normName: String
    public let activation: Activation
    public let dropout: Dropout?

    public init(conv: any Layer, norm: (any Layer)?, normName: String, activation: Activation, dropout: Dropout? = nil) {
        self.conv = conv
        self.norm = norm
        self.normName = normName
        self.activation = activation
        self.dropout = dropout
    }

    public var children: [(name: String, module: any Module)] {
        [("conv", conv as any Module)] + (norm.map { [(normName, $0 as any Module)] } ?? [])
            + (dropout.map { [("dropout", $0 as any Module)] } ?? [])
    }

    public func callAsFunction(_ x: Variable) throws -> Variable {
        var h: Variable
        if norm == nil, let c = conv as? Conv, activation == .relu || activation == .leakyReLU {
            try checkInput(x, dims: c.dims, channels: c.inChannels, op: "Conv\(c.dims)d")
            h = try convLeakyReLU(x, weight: c.weight, bias: c.bias, stride: c.stride, padding: c.padding,
                                  dilation: c.dilation, slope: activation == .relu ? 0 : 0.01)
        } else {
            h = try conv(x)
            if let norm { h = try norm(h) }
            h = try activation(h)
        }
        if let dropout { h = try dropout(h) }
        return h
    }
}

/// A 2-D or 3-D U-Net built from a `UNetConfig`.
///
/// Levels `i = 0..<depth` have `f·2ⁱ` channels. Children, in order: `d0`, [`down0`], `d1`, …,
/// `mid`, [`up{depth−1}`], `u{depth−1}`, …, [`up0`], `u0`, `out`. With parameter-free upsampling
/// the last convolution of `mid` and of each `uᵢ` halves the channels (CSBDeep's plan: for depth
/// 2 the middle block goes 2f→4f→2f, the up blocks 4f→2f→f and 2f→f→f), so `.care2D` has the same
/// parameter names and counts as the PyTorch `CareUNet` of the benchmarks. With transposed
/// convolutions `upᵢ` halves them instead (pytorch_fnet's plan).
/// ```swift
/// var rng = RandomGenerator(seed: 0)
/// let net = try UNet(.care2D, rng: &rng)
/// let y = try net(Variable(x))      // x: [N, 1, H, W], H and W divisible by 2^depth
/// ```
public final class UNet: ImageModel {
    public let config: UNetConfig
    public let downBlocks: [Sequential]
    public let downsamplers: [ConvBlock]
    public let middle: Sequential
    public let upsamplers: [ConvBlock]
    public let upBlocks: [Sequential]
    public let output: Conv

    public init(_ config: UNetConfig, rng: inout RandomGenerator) throws {
        try config.validate()
        self.config = config
        let c = config, f = c.firstFilters
        func ch(_ level: Int) -> Int { f << level }
        func block(_ cin: Int, _ cout: Int, _ rng: inout RandomGenerator) throws -> ConvBlock {
            let conv = try Conv(dims: c.dims, inChannels: cin, outChannels: cout, kernel: c.kernel,
                                padding: c.kernel / 2, bias: c.convBias, rng: &rng)
            let drop = c.dropout > 0 ? try Dropout(probability: Float(c.dropout), seed: rng.next()) : nil
            return try ConvBlock(conv: conv, norm: UNet.makeNorm(c, cout), normName: c.norm == .batch ? "bn" : "norm",
                                 activation: c.activation, dropout: drop)
        }
        func level(_ plan: [Int], _ rng: inout RandomGenerator) throws -> Sequential {
            try Sequential((0..<(plan.count - 1)).map { try block(plan[$0], plan[$0 + 1], &rng) })
        }
        let n = c.convsPerLevel
        let learnedUp = c.upsampling == .transposed
        var downs: [Sequential] = [], pools: [ConvBlock] = []
        for i in 0..<c.depth {
            downs.append(try level([i == 0 ? c.inChannels : ch(i - 1)] + Array(repeating: ch(i), count: n), &rng))
            if c.pooling == .strideConv {
                let conv = try Conv(dims: c.dims, inChannels: ch(i), outChannels: ch(i), kernel: 2, stride: 2, rng: &rng)
                pools.append(ConvBlock(conv: conv, norm: try UNet.makeNorm(c, ch(i)), normName: c.norm == .batch ? "bn" : "norm",
                                       activation: c.activation))
            }
        }
        let d = c.depth
        let midIn = d == 0 ? c.inChannels : ch(d - 1)
        var midPlan = [midIn] + Array(repeating: ch(d), count: n)
        if !learnedUp && d > 0 { midPlan[n] = ch(d - 1) }
        middle = try level(midPlan, &rng)
        var ups: [ConvBlock] = [], upBlocks: [Sequential] = []
        for i in stride(from: d - 1, through: 0, by: -1) {
            if learnedUp {
                let t = try ConvTranspose(dims: c.dims, inChannels: ch(i + 1), outChannels: ch(i), kernel: 2, stride: 2, rng: &rng)
                ups.append(ConvBlock(conv: t, norm: try UNet.makeNorm(c, ch(i)), normName: c.norm == .batch ? "bn" : "norm",
                                     activation: c.activation))
            }
            let skip = i > 0 || c.skipTop
            var plan = [skip ? 2 * ch(i) : ch(i)] + Array(repeating: ch(i), count: n)
            if !learnedUp { plan[n] = ch(max(0, i - 1)) }
            upBlocks.append(try level(plan, &rng))
        }
        downBlocks = downs
        downsamplers = pools
        upsamplers = ups
        self.upBlocks = upBlocks
        output = try Conv(dims: c.dims, inChannels: d == 0 ? midPlan[n] : ch(0),
                          outChannels: c.probabilistic ? 2 * c.outChannels : c.outChannels,
                          kernel: c.outputKernel, padding: c.outputKernel / 2, rng: &rng)
    }

    static func makeNorm(_ c: UNetConfig, _ channels: Int) throws -> (any Layer)? {
        switch c.norm {
        case .none: return nil
        case .batch: return try BatchNorm(channels: channels)
        case .group: return try GroupNorm(groups: c.groups, channels: channels)
        case .instance: return try InstanceNorm(channels: channels, affine: true)
        }
    }

    public var children: [(name: String, module: any Module)] {
        var out: [(name: String, module: any Module)] = []
        for i in 0..<config.depth {
            out.append(("d\(i)", downBlocks[i]))
            if !downsamplers.isEmpty { out.append(("down\(i)", downsamplers[i])) }
        }
        out.append(("mid", middle))
        for (k, i) in stride(from: config.depth - 1, through: 0, by: -1).enumerated() {
            if !upsamplers.isEmpty { out.append(("up\(i)", upsamplers[k])) }
            out.append(("u\(i)", upBlocks[k]))
        }
        out.append(("out", output))
        return out
    }

    /// Spatial extents must be divisible by this (2^depth).
    public var sizeMultiple: Int { config.sizeMultiple }

    public var architecture: any ModelConfig { config }

    public func callAsFunction(_ x: Variable) throws -> Variable {
        let c = config
        try checkInput(x, dims: c.dims, channels: c.inChannels, op: "UNet")
        guard x.shape.dropFirst(2).allSatisfy({ $0 % sizeMultiple == 0 }) else {
            throw TensorError.shapeMismatch(op: "UNet", detail: "spatial extents of input \(x.shape) must be divisible by \(sizeMultiple) (depth \(c.depth))")
        }
        var skips: [Variable] = []
        var h = x
        for i in 0..<c.depth {
            h = try downBlocks[i](h)
            skips.append(h)
            switch c.pooling {
            case .max: h = try maxPool(h, kernel: [2])
            case .strideConv: h = try downsamplers[i](h)
            case .maxBlur: h = try maxBlurPool(h)
            }
        }
        h = try middle(h)
        for (k, i) in stride(from: c.depth - 1, through: 0, by: -1).enumerated() {
            switch c.upsampling {
            case .nearest: h = try upsample(h, scale: [2], mode: .nearest)
            case .linear: h = try upsample(h, scale: [2], mode: .linear)
            case .transposed: h = try upsamplers[k](h)
            }
            if i > 0 || c.skipTop { h = try concat([h, skips[i]], axis: 1) }
            skips.removeLast()
            h = try upBlocks[k](h)
        }
        var y = try output(h)
        if c.residual {
            if c.probabilistic {
                let mean = try y.slice(axis: 1, range: 0..<c.outChannels) + x
                let scale = try y.slice(axis: 1, range: c.outChannels..<(2 * c.outChannels))
                y = try concat([mean, scale], axis: 1)
            } else {
                y = try y + x
            }
        }
        return y
    }

    /// Splits this probabilistic net's output `[N, 2C, …]` into its mean and log-scale halves.
    public func splitProbabilistic(_ y: Variable) throws -> (mean: Variable, logScale: Variable) {
        guard config.probabilistic else {
            throw TensorError.invalidArgument(op: "UNet.splitProbabilistic", detail: "the net is not probabilistic")
        }
        return try splitMeanAndLogScale(y, channels: config.outChannels)
    }
}

/// Splits a probabilistic output `[N, 2C, …]` (C means, then C log-scales) into its halves.
public func splitMeanAndLogScale(_ y: Variable, channels c: Int) throws -> (mean: Variable, logScale: Variable) {
    guard y.shape.count >= 2, y.shape[1] == 2 * c else {
        throw TensorError.shapeMismatch(op: "splitMeanAndLogScale", detail: "needs a probabilistic net's output [N, \(2 * c), …], got \(y.shape)")
    }
    return (try y.slice(axis: 1, range: 0..<c), try y.slice(axis: 1, range: c..<(2 * c)))
}
