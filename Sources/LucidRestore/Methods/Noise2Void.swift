import LucidAutograd
import LucidCore
import LucidNN
import Yams

/// `method: noise2void` — blind-spot training (Krull et al. 2019; N2V2, Höck et al. 2022): a
/// few random pixels of every patch are replaced by neighbours and the loss is taken there.
public struct Noise2Void: RestorationMethod, Equatable {
    public static let name = "noise2void"
    public static let summary = "self-supervised denoising of noisy stacks with random blind spots (N2V, N2V2)"
    public static let data = DataNeeds.noisy

    /// Blind-spot fraction, neighbourhood and replacement.
    public var masker = BlindSpotMasker()
    /// N2V2: blur-pool downsampling, median replacement, no top skip connection.
    public var n2v2 = false

    public init() {}

    /// Adam at 1e-3 decaying to 0 on a cosine: the last steps average out the noise of
    /// self-supervised gradients (a constant rate leaves the final weights, and with them the
    /// prediction's offset, wherever the last noisy step put them).
    public static var defaults: MethodDefaults {
        var d = MethodDefaults()
        d.learningRate = 1e-3
        d.schedule = .cosine
        return d
    }

    public init(masker: BlindSpotMasker, n2v2: Bool = false) {
        self.masker = masker
        self.n2v2 = n2v2
    }

    public static let keys: [RecipeKey<Noise2Void>] = [
        .double("pixel_fraction", \.masker.pixelFraction, allowed: "a number > 0 and ≤ 0.5",
                "fraction of pixels masked per patch") { $0 > 0 && $0 <= 0.5 },
        .int("neighborhood", \.masker.neighborhood, in: 3...31, odd: true, "extent of the window replacement values come from"),
        RecipeKey("n2v2", allowed: "true or false", default: "false",
                  "N2V2: max-blur pooling, median replacement, no top skip connection",
                  read: { s, r, _ in
                      s.n2v2 = try r.bool("n2v2", default: s.n2v2)
                      if s.n2v2 { s.masker.replacement = .median }
                  },
                  write: { .bool($0.n2v2) }),
        .choice("replacement", \.masker.replacement, default: "uniform (n2v2: median)",
                "a random neighbour (N2V) or the neighbourhood median without the centre (N2V2)"),
        RecipeKey("struct_mask", allowed: Noise2Void.structMaskAllowed, default: "none",
                  "structN2V: pixels hidden around every blind spot, against noise correlated along rows or columns",
                  read: { s, r, _ in
                      if let node = r.value("struct_mask") {
                          s.masker.structMask = try Noise2Void.readStructMask(node, path: r.path + ["struct_mask"], context: r.context)
                      }
                  },
                  write: { Noise2Void.write($0.masker.structMask) }),
    ]

    static let structMaskAllowed = "none, horizontal, vertical, depth (5-pixel lines), an odd length ≥ 3 (a horizontal line), {axis, length}, or a 2-D/3-D list of 0/1 with odd extents"

    /// `struct_mask` as written in a recipe.
    static func readStructMask(_ node: Node, path: [String], context: RecipeContext) throws -> StructMask? {
        func bad() -> RecipeError { context.notAllowed(path, node, structMaskAllowed) }
        func length(_ n: Node) throws -> Int {
            guard let v = RecipeContext.int(n), v >= 3, v % 2 == 1, v <= 63 else { throw bad() }
            return v
        }
        switch node {
        case .scalar(let s):
            if s.string == "none" { return nil }
            if let axis = StructMask.Axis(rawValue: s.string) { return .line(axis, length: StructMask.defaultLength) }
            return .line(.horizontal, length: try length(node))
        case .mapping:
            let m = try MapReader(node, path: path, allowed: ["axis", "length"], what: structMaskAllowed, context: context)
            let axis: StructMask.Axis = try m.choice("axis", default: .horizontal)!
            return .line(axis, length: try m.value("length").map(length) ?? StructMask.defaultLength)
        case .sequence(let rows):
            // Nested lists: [[0,1,0], …] (Y, X) or [[[…]]] (Z, Y, X).
            func flatten(_ n: Node, depth: Int) throws -> (shape: [Int], values: [Bool]) {
                switch n {
                case .scalar:
                    guard depth == 0, let v = RecipeContext.int(n), v == 0 || v == 1 else { throw bad() }
                    return ([], [v == 1])
                case .sequence(let items):
                    guard !items.isEmpty else { throw bad() }
                    let inner = try items.map { try flatten($0, depth: depth - 1) }
                    guard inner.allSatisfy({ $0.shape == inner[0].shape }) else { throw bad() }
                    return ([items.count] + inner[0].shape, inner.flatMap(\.values))
                default: throw bad()
                }
            }
            let nesting: Int
            if case .sequence(let first)? = rows.first, case .sequence? = first.first { nesting = 3 } else { nesting = 2 }
            let (shape, values) = try flatten(node, depth: nesting)
            guard shape.allSatisfy({ $0 % 2 == 1 && $0 <= 63 }) else { throw bad() }
            return .explicit(shape: shape, values: values)
        default:
            throw bad()
        }
    }

    /// `struct_mask` in the resolved recipe.
    static func write(_ mask: StructMask?) -> RecipeValue {
        switch mask {
        case nil: return .string("none")
        case let .line(axis, length)? where length == StructMask.defaultLength: return .string(axis.rawValue)
        case let .line(axis, length)?: return .map([("axis", .string(axis.rawValue)), ("length", .int(length))])
        case let .explicit(shape, values)?:
            func nest(_ dims: ArraySlice<Int>, _ vals: ArraySlice<Bool>) -> RecipeValue {
                guard let n = dims.first else { return .int(vals.first! ? 1 : 0) }
                let step = vals.count / n
                return .list((0..<n).map { i in
                    nest(dims.dropFirst(), vals[(vals.startIndex + i * step)..<(vals.startIndex + (i + 1) * step)])
                })
            }
            return nest(shape[...], values[...])
        }
    }

    public func modelDefaults(_ model: inout ModelRecipe) {
        if n2v2 { model.unet.pooling = .maxBlur }
    }

    public func check(_ recipe: Recipe, _ top: MapReader) throws {
        let smallest = recipe.data.patch.min() ?? 0
        if masker.neighborhood > smallest {
            let s = try top.section(Self.name, allowed: nil, what: "")
            throw s.error("neighborhood", "\(masker.neighborhood) is not allowed (at most the smallest patch size, \(smallest))")
        }
        if let mask = masker.structMask {
            let s = try top.section(Self.name, allowed: nil, what: "")
            do { _ = try mask.offsets(spatialRank: recipe.data.axes.spatialRank) } catch {
                throw s.error("struct_mask", "\(Noise2Void.write(mask).flowText()) is not allowed for data.axes \(recipe.data.axes.rawValue) (\(error))")
            }
        }
    }

    /// N2V2 (Höck et al. 2022) also drops the top skip connection and pools with max-blur.
    public func modelConfig(_ recipe: Recipe, spatialRank: Int, inChannels: Int, outChannels: Int) throws -> any ModelConfig {
        var c = try recipe.model.unetConfig(spatialRank: spatialRank, inChannels: inChannels, outChannels: outChannels)
        if n2v2 {
            c.pooling = .maxBlur
            c.skipTop = false
        }
        return c
    }

    /// Masked MSE on the blind-spot pixels, drawn from `rng`.
    public func loss(_ model: any ImageModel, input: Tensor, target: Tensor?, step: Int,
                     rng: inout RandomGenerator) throws -> Variable {
        try loss(model, input: input, target: target, step: step, firstSample: 0, rng: &rng)
    }

    /// Each patch's blind spots come from its own stream (see `BlindSpotMasker.apply`).
    public func loss(_ model: any ImageModel, input: Tensor, target: Tensor?, step: Int, firstSample: Int,
                     rng: inout RandomGenerator) throws -> Variable {
        let masked = try masker.apply(input, firstSample: firstSample, rng: &rng)
        return try maskedMSELoss(try model(Variable(masked.input)), Variable(input), mask: masked.mask)
    }
}
