import Foundation
import LucidImaging
import LucidOptics
import Yams

/// The `data:` section.
public struct DataRecipe: Equatable, Sendable {
    /// Which files hold the training images.
    public var source = DataSource.noisy(train: "")
    /// Axis order of every image (`YX`, `ZYX`, `CYX`, `CZYX`).
    public var axes = DataAxes.yx
    /// Spatial patch extent, one entry per spatial axis of `axes` (Z, Y, X order).
    public var patch: [Int] = []
    /// Fraction of patches held out for validation, in 0 ..< 1.
    public var validation = 0.1
    /// Intensity normalization of the inputs (and of the targets, unless they have their own);
    /// not yet fitted.
    public var normalize = Normalization.percentile()
    /// Random flips and 90° rotations of training patches.
    public var augment = true
    /// Normalization of the targets (`data.target_normalize`; signal → target methods only).
    public var targetNormalize: Normalization?
    /// Pixel size in µm (Y and X) the model works at (`data.pixel_size`, signal → target
    /// methods): images are resampled linearly to it, and predictions back to their input's grid.
    public var pixelSize: Double?
    /// Pixel size in µm of images whose metadata has none (`data.source_pixel_size`).
    public var sourcePixelSize: Double?
    /// The images the method reads (which keys apply).
    public var needs = DataNeeds.noisy
    /// Variance stabilization of noisy stacks before normalization (`data.vst`).
    public var vst = VarianceStabilization.none

    /// `data.vst`: self-supervised methods may train on generalized-Anscombe-transformed data.
    public enum VarianceStabilization: String, CaseIterable, Sendable {
        case none
        /// The generalized Anscombe transform with gain and offset fitted to the data
        /// (`GeneralizedAnscombe`); prediction applies it and its unbiased inverse.
        case anscombe
    }

    public init() {}

    /// The keys, in the order recipes list them.
    static let keys = SectionReader<DataRecipe>(keys: [
        pattern("train", "noisy stacks to train on (noise2self, noise2void, diffusion selfsupervised), or clean images (diffusion unconditional)"),
        pattern("input", "degraded inputs (paired methods), or signal images (labelfree), matched to data.target by file name"),
        pattern("target", "clean targets (paired methods, care with data.simulate), or target images (labelfree)"),
        pattern("manifest", "labelfree: a CSV of signal/target pairs (pytorch_fnet's columns)", describe: "a CSV file name"),
        RecipeKey("simulate", allowed: "a mapping with psf, photons, read_noise, background", default: "",
                  "care, diffusion: degrade data.target with a PSF ({model: born-wolf, na: …} or a PSF file), photons, read_noise, background",
                  read: { _, r, _ in if r.has("simulate") { _ = try simulation(r) } },
                  write: { d in
                      guard case .simulated(_, let s) = d.source else { return nil }
                      return s.value
                  }),
        .choice("axes", \.axes, "axis order of every image"),
        RecipeKey("patch", allowed: "a list of positive patch sizes such as [64, 64]", default: "[64, 64] (3-D: [16, 64, 64]; labelfree [32, 64, 64])",
                  "patch extent per spatial axis (Z, Y, X), each divisible by 2^model.depth",
                  read: { d, r, context in
                      d.patch = try r.intList("patch", in: 1...65536, describe: "a list of positive patch sizes such as [64, 64]")
                          ?? (d.axes.spatialRank == 2 ? type(of: context.method).defaults.patch2D : type(of: context.method).defaults.patch3D)
                  },
                  write: { .list($0.patch.map { .int($0) }) }),
        .double("validation", \.validation, allowed: "a number ≥ 0 and < 1", "fraction of patches held out for validation") {
            $0 >= 0 && $0 < 1
        },
        normalization("normalize", \.normalize, default: "percentile 1–99.8 (labelfree: meanstd per image)",
                      "intensity normalization: a mode, or a mapping with mode, low, high, clip (and per_image)"),
        .bool("augment", \.augment, "random flips and 90° rotations of training patches"),
        RecipeKey("vst", allowed: "one of none, anscombe", default: "none",
                  "self-supervised methods: generalized Anscombe transform for Poisson–Gaussian noise, gain and offset fitted to the data (mean–variance) and reported; prediction inverts it",
                  read: { d, r, context in
                      d.vst = try r.choice("vst", default: d.vst)!
                      if d.vst != .none && type(of: context.method).data != .noisy {
                          throw r.error("vst", "\(d.vst.rawValue) is not allowed (only methods trained on noisy stacks alone stabilize their variance)")
                      }
                  },
                  write: { .string($0.vst.rawValue) }),
        RecipeKey("target_normalize", allowed: "a mode name or a mapping with mode, low, high, clip, per_image",
                  default: "meanstd per image", "labelfree: normalization of the targets, keys as data.normalize",
                  read: { d, r, context in
                      guard try d.signalToTargetOnly("target_normalize", r, context) else { return }
                      var n = Normalization.meanStd
                      n.perImage = true
                      d.targetNormalize = try readNormalization(r, "target_normalize", initial: n, perImageKey: true)
                  },
                  write: { d in d.targetNormalize.map { value($0, perImageKey: true) } }),
        RecipeKey("pixel_size", allowed: "a pixel size in µm, > 0", default: "(images as they are)",
                  "labelfree: the pixel size (µm, YX) the model works at; images are resampled to it",
                  read: { d, r, context in
                      guard try d.signalToTargetOnly("pixel_size", r, context), r.has("pixel_size") else { return }
                      d.pixelSize = try r.double("pixel_size", default: 0, describe: "a pixel size in µm, > 0") { $0 > 0 }
                  },
                  write: { $0.pixelSize.map { .double($0) } }),
        RecipeKey("source_pixel_size", allowed: "a pixel size in µm, > 0", default: "(from the TIFF)",
                  "labelfree: the pixel size of images whose metadata has none",
                  read: { d, r, context in
                      guard try d.signalToTargetOnly("source_pixel_size", r, context), r.has("source_pixel_size") else { return }
                      d.sourcePixelSize = try r.double("source_pixel_size", default: 0, describe: "a pixel size in µm, > 0") { $0 > 0 }
                  },
                  write: { $0.sourcePixelSize.map { .double($0) } }),
    ])

    /// A file pattern key: checked here; the method's needs decide whether it is used (`pickSource`).
    private static func pattern(_ name: String, _ summary: String, describe: String = "a file name or pattern") -> RecipeKey<DataRecipe> {
        RecipeKey(name, allowed: describe, default: "", summary,
                  read: { _, r, _ in _ = try r.string(name, describe: describe) },
                  write: { d in
                      switch (name, d.source) {
                      case ("train", .noisy(let train)): return .string(train)
                      case ("input", .paired(let input, _)): return .string(input)
                      case ("target", .paired(_, let target)), ("target", .simulated(let target, _)): return .string(target)
                      case ("manifest", .manifest(let manifest)): return .string(manifest)
                      default: return nil
                      }
                  })
    }

    /// Reads the section for the recipe's method.
    static func read(_ d: MapReader, _ context: RecipeParseContext) throws -> DataRecipe {
        let method = type(of: context.method)
        var initial = DataRecipe()
        initial.needs = context.method.dataNeeds
        initial.normalize = method.defaults.normalize
        var data = try keys.read(initial, d, context)
        try data.pickSource(d, method: method.name)
        if data.sourcePixelSize != nil && data.pixelSize == nil {
            throw d.error("source_pixel_size", "needs data.pixel_size (the pixel size to resample to)")
        }
        return data
    }

    /// Chooses the source from the given keys as the method's needs say. `train`, `input` and
    /// `target` may all be present (one template for every method, as evaluation scripts write
    /// it); each method reads the ones it uses. `manifest` and `simulate` are strict.
    private mutating func pickSource(_ d: MapReader, method name: String) throws {
        let given = ["train", "input", "target", "manifest"].reduce(into: [String: String]()) { $0[$1] = try? d.string($1) }
        let simulation = d.has("simulate") ? try DataRecipe.simulation(d) : nil
        func forbid(_ keys: [String], _ reason: String) throws {
            for key in keys where d.has(key) { throw d.error(key, "not used by method \(name) (\(reason))") }
        }
        switch needs {
        case .noisy:
            try forbid(["manifest", "simulate"], "it trains on the noisy stacks in data.train")
            guard let train = given["train"] else {
                throw d.missing("train", "method \(name) trains on noisy stacks: a file pattern such as stacks/*.tif")
            }
            source = .noisy(train: train)
        case .pairs(let simulated):
            try forbid(["manifest"], "paired methods read data.input and data.target")
            let simulators = Methods.all.filter { $0.data == .pairs(simulated: true) }.map { $0.name }
            if !simulated { try forbid(["simulate"], "only method \(simulators.joined(separator: ", ")) simulates inputs") }
            let needsText = simulated ? "method \(name) needs data.target with data.input or data.simulate"
                : "method \(name) needs data.input and data.target file patterns"
            if given["input"] != nil && simulation != nil {
                throw d.error("simulate", "not allowed together with data.input (simulated inputs replace data.input)")
            }
            guard let target = given["target"] else { throw d.missing("target", needsText) }
            if let input = given["input"] {
                source = .paired(input: input, target: target)
            } else if let simulation {
                source = .simulated(target: target, simulation: simulation)
            } else {
                throw d.missing("input", simulated ? "method \(name) needs degraded inputs in data.input, or data.simulate to make them"
                                                   : needsText)
            }
        case .signalToTarget:
            try forbid(["simulate"], "it reads signal/target pairs from data.manifest, or data.input and data.target")
            if let manifest = given["manifest"] {
                source = .manifest(manifest)
            } else if let input = given["input"], let target = given["target"] {
                source = .paired(input: input, target: target)
            } else {
                throw d.missing("manifest", "method \(name) reads signal/target pairs from a CSV file, or from data.input and data.target file patterns matched by name")
            }
        }
    }

    /// True when signal → target keys apply; throws when `key` is given for another method.
    private func signalToTargetOnly(_ key: String, _ r: MapReader, _ context: RecipeParseContext) throws -> Bool {
        if needs == .signalToTarget { return true }
        if r.has(key) {
            let readers = Methods.all.filter { $0.data == .signalToTarget }.map { $0.name }
            throw r.error(key, "not used by method \(type(of: context.method).name) (only method \(readers.joined(separator: ", ")) reads it)")
        }
        return false
    }

    // MARK: normalization

    /// `data.normalize`: a mode name (shorthand for `{mode: …}`) or a mapping.
    private static func normalization(_ name: String, _ path: WritableKeyPath<DataRecipe, Normalization>, default shown: String,
                                      _ summary: String) -> RecipeKey<DataRecipe> {
        RecipeKey(name, allowed: "a mode name or a mapping with mode, low, high, clip (labelfree: per_image)", default: shown, summary,
                  nestedRows: { prefix, _ in
                      [KeyRow(key: prefix + name + ".mode", allowed: "one of " + Normalization.Method.allCases.map(\.rawValue).joined(separator: ", "),
                              defaultText: "percentile (labelfree: meanstd)", summary: "percentile: the low/high percentiles → 0/1 (CSBDeep); meanstd: z-score (`normalize: none` is short for `{mode: none}`)"),
                       KeyRow(key: prefix + name + ".low", allowed: "a percentile ≥ 0 and < 100", defaultText: "1.0", summary: "percentile mapped to 0"),
                       KeyRow(key: prefix + name + ".high", allowed: "a percentile > low and ≤ 100", defaultText: "99.8", summary: "percentile mapped to 1"),
                       KeyRow(key: prefix + name + ".clip", allowed: "true or false", defaultText: "false", summary: "clip normalized values to [0, 1]"),
                       KeyRow(key: prefix + name + ".per_image", allowed: "true or false", defaultText: "true",
                              summary: "labelfree: normalize every image by its own statistics, at training and at prediction")]
                  },
                  read: { d, r, _ in
                      d[keyPath: path] = try readNormalization(r, name, initial: d[keyPath: path], perImageKey: d.needs == .signalToTarget)
                  },
                  write: { d in value(d[keyPath: path], perImageKey: d.needs == .signalToTarget) })
    }

    /// A normalization from a mode name or a mapping; `initial` holds the method's defaults.
    private static func readNormalization(_ d: MapReader, _ key: String, initial: Normalization,
                                          perImageKey: Bool) throws -> Normalization {
        guard let node = d.value(key) else { return initial }
        if case .scalar = node {
            let mode: Normalization.Method = try MapReader.choice(node, path: d.path + [key], among: Normalization.Method.allCases,
                                                                  context: d.context)
            var n = Normalization(method: mode)
            n.perImage = perImageKey && mode != .none
            return n
        }
        let allowed = ["mode", "low", "high", "clip"] + (perImageKey ? ["per_image"] : [])
        let n = try d.section(key, allowed: allowed, what: "a mode name or a mapping with \(allowed.joined(separator: ", "))")
        let low = try n.double("low", default: 1, describe: "a percentile ≥ 0 and < 100") { $0 >= 0 && $0 < 100 }
        let high = try n.double("high", default: 99.8, describe: "a percentile > 0 and ≤ 100") { $0 > 0 && $0 <= 100 }
        if high <= low {
            let shown = n.value("high").map(RecipeContext.render) ?? RecipeValue.number(high)
            throw n.error("high", "\(shown) is not allowed (a percentile above data.\(key).low, \(RecipeValue.number(low)))")
        }
        let mode = try n.choice("mode", default: initial.method)!
        let perImage = try n.bool("per_image", default: perImageKey) && mode != .none
        return Normalization(method: mode, low: low, high: high, clip: try n.bool("clip", default: false), perImage: perImage)
    }

    /// The `normalize` mapping; `per_image` only where the method allows it.
    private static func value(_ n: Normalization, perImageKey: Bool) -> RecipeValue {
        .map([("mode", .string(n.method.rawValue)), ("low", .double(n.low)), ("high", .double(n.high)), ("clip", .bool(n.clip))]
             + (perImageKey ? [("per_image", .bool(n.perImage))] : []))
    }

    // MARK: simulation

    private static func simulation(_ d: MapReader) throws -> Simulation {
        let s = try d.section("simulate", allowed: ["psf", "photons", "read_noise", "background"],
                              what: "a mapping with psf, photons, read_noise, background")
        guard let psfNode = s.value("psf") else {
            throw s.missing("psf", "a PSF model such as {model: born-wolf, na: 1.2, wavelength: 0.52}, or a PSF file")
        }
        return Simulation(
            psf: try psf(psfNode, path: s.path + ["psf"], context: d.context),
            photons: try s.double("photons", default: 20, describe: "a number > 0") { $0 > 0 },
            readNoise: try s.double("read_noise", default: 2, describe: "a number ≥ 0") { $0 >= 0 },
            background: try s.double("background", default: 0, describe: "a number ≥ 0") { $0 >= 0 })
    }

    private static func psf(_ node: Node, path: [String], context: RecipeContext) throws -> PSFSpec {
        if case .scalar(let s) = node { return .file(s.string) }
        let p = try MapReader(node, path: path, allowed: nil,
                              what: "a PSF model mapping such as {model: gaussian, sigma: 1.5}, or a PSF file name",
                              context: context)
        if p.has("file") {
            if let other = p.entries.first(where: { $0.key != "file" }) {
                throw p.error(other.key, "not allowed together with \(path.joined(separator: ".")).file")
            }
            return .file(try p.string("file")!)
        }
        guard let model = try p.choice("model", default: nil as PSFModel?) else {
            throw p.missing("model", "one of \(PSFModel.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var parameters: [String: Double] = [:]
        for entry in p.entries where entry.key != "model" {
            guard PSFSpec.parameterNames.contains(entry.key) else {
                throw p.error(entry.key, "unknown PSF parameter (allowed: \(PSFSpec.parameterNames.joined(separator: ", ")))")
            }
            let integer = PSFSpec.integerParameterNames.contains(entry.key)
            guard let v = RecipeContext.double(entry.value), v > 0, !integer || (v == v.rounded() && v <= 65535) else {
                throw context.notAllowed(path + [entry.key], entry.value, integer ? "a whole number 1 … 65535" : "a positive number")
            }
            parameters[entry.key] = v
        }
        return .model(model, parameters: parameters)
    }
}

/// Where training images come from. File patterns are globs relative to the working directory.
public enum DataSource: Equatable, Sendable {
    /// Self-supervised methods: the noisy stacks (`data.train`).
    case noisy(train: String)
    /// Paired methods: degraded inputs and targets matched by file name (`data.input`, `data.target`).
    case paired(input: String, target: String)
    /// CARE: targets degraded on the fly by the simulator (`data.target`, `data.simulate`).
    case simulated(target: String, simulation: Simulation)
    /// Signal → target methods: a CSV of signal/target pairs (`data.manifest`; see `LabelFreeManifest`).
    case manifest(String)
}

/// Axis order of the images.
public enum DataAxes: String, CaseIterable, Sendable {
    case yx = "YX", zyx = "ZYX", cyx = "CYX", czyx = "CZYX"

    /// Number of spatial axes (the length `data.patch` must have).
    public var spatialRank: Int { self == .yx || self == .cyx ? 2 : 3 }
    /// Whether images carry a leading channel axis.
    public var hasChannels: Bool { self == .cyx || self == .czyx }
}

/// Degradation simulator settings (`data.simulate`): blur by a PSF, then Poisson and read noise.
public struct Simulation: Equatable, Sendable {
    /// The point spread function.
    public var psf: PSFSpec
    /// Expected signal photons at the brightest pixel of the blurred target.
    public var photons: Double
    /// Gaussian read noise standard deviation, in photo-electrons.
    public var readNoise: Double
    /// Constant background added before noise, in photons.
    public var background: Double

    public init(psf: PSFSpec, photons: Double = 20, readNoise: Double = 2, background: Double = 0) {
        self.psf = psf
        self.photons = photons
        self.readNoise = readNoise
        self.background = background
    }

    var value: RecipeValue {
        let psfValue: RecipeValue
        switch psf {
        case .file(let path): psfValue = .map([("file", .string(path))])
        case let .model(model, parameters):
            psfValue = .map([("model", .string(model.rawValue))]
                + parameters.sorted { $0.key < $1.key }.map { ($0.key, .double($0.value)) })
        }
        return .map([("psf", psfValue), ("photons", .double(photons)), ("read_noise", .double(readNoise)),
                     ("background", .double(background))])
    }
}

/// A PSF for the simulator: a named optical model with its parameters, or a measured PSF file.
public enum PSFSpec: Equatable, Sendable {
    /// A model (`psf: {model: born-wolf, na: 1.2, wavelength: 0.52}`); parameters are positive numbers
    /// named by ``PSFSpec/parameterNames``, LucidOptics' `PSFConfig` fields (lengths in µm).
    case model(PSFModel, parameters: [String: Double])
    /// A measured PSF stack (`psf: measured_psf.tif` or `psf: {file: measured_psf.tif}`).
    case file(String)
}
