import Foundation
import Yams

extension Recipe {
    /// Top-level keys of a recipe.
    public static let topLevelKeys = ["method", "data", "model", "training", "output"]
        + RestorationMethod.allCases.map(\.rawValue)

    /// Reads, overrides (`key.path=value`, as with `--set`) and validates the recipe at `path`.
    public static func load(path: String, overrides: [String] = []) throws -> Recipe {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RecipeError(file: path, path: "", message: "cannot read the recipe file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw RecipeError(file: path, path: "", message: "the recipe file is not UTF-8 text")
        }
        return try parse(yaml: text, file: path, overrides: overrides)
    }

    /// Parses and validates recipe text; `file` names it in error messages.
    public static func parse(yaml text: String, file: String = "recipe.yaml", overrides: [String] = []) throws -> Recipe {
        var context = RecipeContext(file: file)
        let composed: Node?
        do {
            composed = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw RecipeOverrides.syntaxError(error, file: file, what: "malformed YAML")
        }
        let root = try RecipeOverrides.apply(overrides, to: composed, context: &context)
        return try RecipeValidator(context: context).recipe(root)
    }
}

/// Turns a composed YAML tree into a `Recipe`, checking every key and value.
struct RecipeValidator {
    let context: RecipeContext

    func recipe(_ root: Node?) throws -> Recipe {
        guard let root, !RecipeContext.isNull(root) else {
            throw context.error([], "the recipe is empty (a mapping with keys \(Recipe.topLevelKeys.prefix(5).joined(separator: ", ")))")
        }
        let top = try MapReader(root, path: [], allowed: Recipe.topLevelKeys,
                                what: "a mapping with keys method, data, model, training, output", context: context)
        let allMethods = RestorationMethod.allCases.map(\.rawValue).joined(separator: ", ")
        guard let method = try top.choice("method", default: nil as RestorationMethod?) else {
            throw top.missing("method", "one of \(allMethods)")
        }
        for other in RestorationMethod.allCases where other != method && top.has(other.rawValue) {
            throw top.error(other.rawValue, "settings for method \(other.rawValue), but the recipe's method is \(method.rawValue)")
        }
        let settings = try methodSettings(method, try top.section(method.rawValue, allowed: Self.sectionKeys(method),
                                                                  what: "a mapping of \(method.rawValue) settings"))
        let data = try dataRecipe(method, try top.section("data", allowed: Self.dataKeys, what: "a mapping of data settings"))
        let model = try modelRecipe(settings, try top.section("model", allowed: Self.modelKeys,
                                                               what: "a mapping of model settings"))
        let training = try trainingRecipe(method, try top.section("training", allowed: Self.trainingKeys,
                                                                  what: "a mapping of training settings"))
        let output = try top.string("output", describe: "a folder name") ?? "Checkpoints/\(method.rawValue)"
        let recipe = Recipe(data: data, model: model, training: training, settings: settings, output: output)
        try crossCheck(recipe, top)
        return recipe
    }

    static let dataKeys = ["train", "input", "target", "manifest", "simulate", "axes", "patch", "validation",
                           "normalize", "augment", "target_normalize", "pixel_size", "source_pixel_size"]
    /// Data keys only method labelfree reads.
    static let labelFreeDataKeys = ["target_normalize", "pixel_size", "source_pixel_size"]
    static let modelKeys = ["kind", "depth", "filters", "kernel", "residual", "norm", "pooling", "upsampling",
                            "convs_per_level", "probabilistic", "dropout"]
    static let trainingKeys = ["steps", "batch", "lr", "seed", "optimizer", "weight_decay", "momentum", "schedule",
                               "validate_every", "early_stopping", "clip_norm"]
    static func sectionKeys(_ method: RestorationMethod) -> [String] {
        switch method {
        case .noise2self: return ["grid", "replacement"]
        case .noise2void: return ["pixel_fraction", "neighborhood", "n2v2", "replacement"]
        case .noise2noise, .labelfree: return ["loss"]
        case .care: return ["loss", "probabilistic"]
        }
    }

    // MARK: method sections

    private func methodSettings(_ method: RestorationMethod, _ s: MapReader) throws -> MethodSettings {
        switch method {
        case .noise2self:
            return .noise2self(Noise2SelfSettings(
                grid: try s.int("grid", default: 4, in: 2...16),
                replacement: try s.choice("replacement", default: .interpolate)!))
        case .noise2void:
            let n2v2 = try s.bool("n2v2", default: false)
            return .noise2void(Noise2VoidSettings(
                pixelFraction: try s.double("pixel_fraction", default: 0.002, describe: "a number > 0 and ≤ 0.5") {
                    $0 > 0 && $0 <= 0.5
                },
                neighborhood: try s.int("neighborhood", default: 5, in: 3...31, odd: true),
                n2v2: n2v2,
                replacement: try s.choice("replacement", default: n2v2 ? .median : .uniform)!))
        case .noise2noise:
            return .noise2noise(Noise2NoiseSettings(loss: try s.choice("loss", default: .mse, among: [.mse, .mae])!))
        case .labelfree:
            return .labelfree(LabelFreeSettings(loss: try s.choice("loss", default: .mse, among: [.mse, .mae])!))
        case .care:
            let givenProbabilistic = s.has("probabilistic") ? try s.bool("probabilistic", default: false) : nil
            let givenLoss: PixelLoss? = try s.choice("loss", default: nil)
            if givenProbabilistic == true, let loss = givenLoss, loss != .laplace {
                throw s.error("loss", "\(loss.rawValue) is not allowed (a probabilistic model trains with laplace)")
            }
            if givenProbabilistic == false, givenLoss == .laplace {
                throw s.error("loss", "laplace is not allowed (one of mae, mse; laplace needs care.probabilistic: true)")
            }
            let probabilistic = givenProbabilistic ?? (givenLoss == .laplace)
            return .care(CARESettings(loss: givenLoss ?? (probabilistic ? .laplace : .mae), probabilistic: probabilistic))
        }
    }

    // MARK: data

    private func dataRecipe(_ method: RestorationMethod, _ d: MapReader) throws -> DataRecipe {
        let labelFree = method.isLabelFree
        let axes = try d.choice("axes", default: DataAxes.yx)!
        let patch = try d.intList("patch", in: 1...65536, describe: "a list of positive patch sizes such as [64, 64]")
            ?? (axes.spatialRank == 2 ? [64, 64] : labelFree ? [32, 64, 64] : [16, 64, 64])
        let validation = try d.double("validation", default: 0.1, describe: "a number ≥ 0 and < 1") { $0 >= 0 && $0 < 1 }
        let normalize = try normalization(d, "normalize", labelFree: labelFree)
        let augment = try d.bool("augment", default: true)

        // train / input / target may all be present (one template for every method, as evaluation
        // scripts write it); each method reads the ones it uses. manifest and simulate are strict.
        let source: DataSource
        let name = method.rawValue
        func forbid(_ keys: [String], _ reason: String) throws {
            for key in keys where d.has(key) { throw d.error(key, "not used by method \(name) (\(reason))") }
        }
        switch method {
        case .noise2self, .noise2void:
            try forbid(["manifest", "simulate"], "it trains on the noisy stacks in data.train")
            guard let train = try d.string("train") else {
                throw d.missing("train", "method \(name) trains on noisy stacks: a file pattern such as stacks/*.tif")
            }
            source = .noisy(train: train)
        case .noise2noise, .care:
            try forbid(["manifest"], "paired methods read data.input and data.target")
            if method == .noise2noise {
                try forbid(["simulate"], "only method care simulates inputs")
            }
            let input = try d.string("input")
            if input != nil && d.has("simulate") {
                throw d.error("simulate", "not allowed together with data.input (simulated inputs replace data.input)")
            }
            guard let target = try d.string("target") else {
                throw d.missing("target", method == .care
                    ? "method care needs data.target with data.input or data.simulate"
                    : "method noise2noise needs data.input and data.target file patterns")
            }
            if let input {
                source = .paired(input: input, target: target)
            } else if d.has("simulate") {
                source = .simulated(target: target, simulation: try simulation(d))
            } else {
                throw d.missing("input", method == .care
                    ? "method care needs degraded inputs in data.input, or data.simulate to make them"
                    : "method noise2noise needs data.input and data.target file patterns")
            }
        case .labelfree:
            try forbid(["simulate"], "it reads signal/target pairs from data.manifest, or data.input and data.target")
            // A manifest, else signal and target files matched by name, as the paired methods.
            if let manifest = try d.string("manifest", describe: "a CSV file name") {
                source = .manifest(manifest)
            } else if let input = try d.string("input"), let target = try d.string("target") {
                source = .paired(input: input, target: target)
            } else {
                throw d.missing("manifest", "method labelfree reads signal/target pairs from a CSV file, or from data.input and data.target file patterns matched by name")
            }
        }
        if !labelFree {
            try forbid(Self.labelFreeDataKeys, "only method labelfree reads it")
            return DataRecipe(source: source, axes: axes, patch: patch, validation: validation, normalize: normalize,
                              augment: augment)
        }
        let positive = "a pixel size in µm, > 0"
        let pixelSize = d.has("pixel_size") ? try d.double("pixel_size", default: 0, describe: positive) { $0 > 0 } : nil
        let sourcePixelSize = d.has("source_pixel_size")
            ? try d.double("source_pixel_size", default: 0, describe: positive) { $0 > 0 } : nil
        if sourcePixelSize != nil && pixelSize == nil {
            throw d.error("source_pixel_size", "needs data.pixel_size (the pixel size to resample to)")
        }
        return DataRecipe(source: source, axes: axes, patch: patch, validation: validation, normalize: normalize,
                          augment: augment, targetNormalize: try normalization(d, "target_normalize", labelFree: true),
                          pixelSize: pixelSize, sourcePixelSize: sourcePixelSize)
    }

    /// `data.normalize` or `data.target_normalize`. Label-free data defaults to a z-score of each
    /// image by itself (`{mode: meanstd, per_image: true}`, as pytorch_fnet); `per_image` is only
    /// allowed there.
    private func normalization(_ d: MapReader, _ key: String, labelFree: Bool) throws -> NormalizationRecipe {
        let defaultMode: NormalizationRecipe.Mode = labelFree ? .meanstd : .percentile
        // `normalize: none` is shorthand for `normalize: {mode: none}`.
        if let node = d.value(key), case .scalar = node {
            let mode: NormalizationRecipe.Mode = try MapReader.choice(node, path: d.path + [key],
                                                                      among: NormalizationRecipe.Mode.allCases,
                                                                      context: context)
            return NormalizationRecipe(mode: mode, perImage: labelFree && mode != .none)
        }
        let allowed = ["mode", "low", "high", "clip"] + (labelFree ? ["per_image"] : [])
        let n = try d.section(key, allowed: allowed,
                              what: "a mode name or a mapping with \(allowed.joined(separator: ", "))")
        let low = try n.double("low", default: 1, describe: "a percentile ≥ 0 and < 100") { $0 >= 0 && $0 < 100 }
        let high = try n.double("high", default: 99.8, describe: "a percentile > 0 and ≤ 100") { $0 > 0 && $0 <= 100 }
        if high <= low {
            let shown = n.value("high").map(RecipeContext.render) ?? RecipeValue.number(high)
            throw n.error("high", "\(shown) is not allowed (a percentile above data.\(key).low, \(RecipeValue.number(low)))")
        }
        let mode = try n.choice("mode", default: defaultMode)!
        return NormalizationRecipe(mode: mode, low: low, high: high, clip: try n.bool("clip", default: false),
                                   perImage: try n.bool("per_image", default: labelFree) && mode != .none)
    }

    private func simulation(_ d: MapReader) throws -> Simulation {
        let s = try d.section("simulate", allowed: ["psf", "photons", "read_noise", "background"],
                              what: "a mapping with psf, photons, read_noise, background")
        guard let psfNode = s.value("psf") else {
            throw s.missing("psf", "a PSF model such as {model: born-wolf, na: 1.2, wavelength: 0.52}, or a PSF file")
        }
        return Simulation(
            psf: try psf(psfNode, path: s.path + ["psf"]),
            photons: try s.double("photons", default: 20, describe: "a number > 0") { $0 > 0 },
            readNoise: try s.double("read_noise", default: 2, describe: "a number ≥ 0") { $0 >= 0 },
            background: try s.double("background", default: 0, describe: "a number ≥ 0") { $0 >= 0 })
    }

    private func psf(_ node: Node, path: [String]) throws -> PSFSpec {
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

    // MARK: model and training

    private func modelRecipe(_ settings: MethodSettings, _ m: MapReader) throws -> ModelRecipe {
        var careProbabilistic = false
        if case .care(let care) = settings { careProbabilistic = care.probabilistic }
        var n2v2 = false
        if case .noise2void(let n2v) = settings { n2v2 = n2v.n2v2 }
        let probabilistic = try m.bool("probabilistic", default: careProbabilistic)
        if probabilistic != careProbabilistic {
            let why = settings.method == .care
                ? "must match care.probabilistic: \(careProbabilistic)"
                : "only method care trains probabilistic models"
            throw m.error("probabilistic", "\(probabilistic) is not allowed (\(why))")
        }
        // kind: fnet changes the defaults of the other keys to pytorch_fnet's net.
        let kind = try m.choice("kind", default: ModelRecipe.Kind.unet)!
        let fnet = kind == .fnet
        return ModelRecipe(
            kind: kind,
            depth: try m.int("depth", default: fnet ? 4 : 2, in: 1...6),
            filters: try m.int("filters", default: 32, in: 1...1024),
            kernel: try m.int("kernel", default: 3, in: 1...15, odd: true),
            residual: try m.bool("residual", default: false),
            norm: try m.choice("norm", default: fnet ? .batch : ModelRecipe.Norm.none)!,
            pooling: try m.choice("pooling", default: fnet ? .conv : n2v2 ? .maxblur : .max)!,
            upsampling: try m.choice("upsampling", default: fnet ? .transpose : .nearest)!,
            convsPerLevel: try m.int("convs_per_level", default: 2, in: 1...4),
            probabilistic: probabilistic,
            dropout: try m.double("dropout", default: 0, describe: "a number ≥ 0 and < 1") { $0 >= 0 && $0 < 1 })
    }

    private func trainingRecipe(_ method: RestorationMethod, _ t: MapReader) throws -> TrainingRecipe {
        let optimizer = try t.choice("optimizer", default: TrainingRecipe.Optimizer.adam)!
        let early = try earlyStopping(t)
        // Label-free training defaults to pytorch_fnet's Adam at a constant 1e-3.
        let labelFree = method.isLabelFree
        return TrainingRecipe(
            steps: try t.int("steps", default: 4000, in: 1...100_000_000),
            batch: try t.int("batch", default: 16, in: 1...65536),
            lr: try t.double("lr", default: labelFree ? 1e-3 : 4e-4, describe: "a number > 0 and ≤ 1") { $0 > 0 && $0 <= 1 },
            seed: try t.int("seed", default: 0, in: 0...Int(Int32.max)),
            optimizer: optimizer,
            weightDecay: try t.double("weight_decay", default: optimizer == .adamw ? 0.01 : 0,
                                      describe: "a number ≥ 0 and < 1") { $0 >= 0 && $0 < 1 },
            momentum: try t.double("momentum", default: 0.9, describe: "a number ≥ 0 and < 1") { $0 >= 0 && $0 < 1 },
            schedule: try schedule(t, default: labelFree ? .none : .plateau),
            validateEvery: try t.int("validate_every", default: 200, in: 1...100_000_000),
            patience: early.patience, minDelta: early.minDelta,
            clipNorm: try t.double("clip_norm", default: 0, describe: "a number ≥ 0 (0 disables clipping)") { $0 >= 0 })
    }

    private func schedule(_ t: MapReader, default kind: Schedule.Kind) throws -> Schedule {
        if let node = t.value("schedule"), case .scalar = node {
            return Schedule(kind: try MapReader.choice(node, path: t.path + ["schedule"], among: Schedule.Kind.allCases,
                                                       context: context))
        }
        let s = try t.section("schedule", allowed: ["kind", "factor", "every", "patience", "warmup"],
                              what: "a schedule name or a mapping with kind, factor, every, patience, warmup")
        return Schedule(
            kind: try s.choice("kind", default: kind)!,
            factor: try s.double("factor", default: 0.5, describe: "a number > 0 and < 1") { $0 > 0 && $0 < 1 },
            every: try s.int("every", default: 1000, in: 1...100_000_000),
            patience: try s.int("patience", default: 10, in: 1...100_000),
            warmup: try s.int("warmup", default: 0, in: 0...100_000_000))
    }

    private func earlyStopping(_ t: MapReader) throws -> (patience: Int, minDelta: Double) {
        // `early_stopping: 10` is shorthand for `early_stopping: {patience: 10}`.
        if let node = t.value("early_stopping"), case .scalar = node {
            guard let v = RecipeContext.int(node), v >= 0 else {
                throw context.notAllowed(t.path + ["early_stopping"], node,
                                         "a patience ≥ 0 or a mapping with patience, min_delta")
            }
            return (v, 0)
        }
        let e = try t.section("early_stopping", allowed: ["patience", "min_delta"],
                              what: "a patience ≥ 0 or a mapping with patience, min_delta")
        return (try e.int("patience", default: 0, in: 0...100_000, describe: "an integer ≥ 0 (0 never stops early)"),
                try e.double("min_delta", default: 0, describe: "a number ≥ 0") { $0 >= 0 })
    }

    // MARK: cross-field checks

    private func crossCheck(_ recipe: Recipe, _ top: MapReader) throws {
        let data = try top.section("data", allowed: Self.dataKeys, what: "")
        let patch = recipe.data.patch
        let shown = "[" + patch.map(String.init).joined(separator: ", ") + "]"
        let axes = recipe.data.axes
        if patch.count != axes.spatialRank {
            let names = axes.spatialRank == 2 ? "Y, X" : "Z, Y, X"
            throw data.error("patch", "\(shown) is not allowed (\(axes.spatialRank) sizes for the \(names) axes of data.axes \(axes.rawValue))")
        }
        let factor = 1 << recipe.model.depth
        if patch.contains(where: { $0 % factor != 0 }) {
            throw data.error("patch", "\(shown) is not allowed (sizes divisible by \(factor) = 2^model.depth)")
        }
        if let short = TrainingMemory.shortfall(recipe) { throw data.error("patch", "\(shown) \(short)") }
        let smallest = patch.min()!
        switch recipe.settings {
        case .noise2void(let n2v) where n2v.neighborhood > smallest:
            let s = try top.section("noise2void", allowed: nil, what: "")
            throw s.error("neighborhood", "\(n2v.neighborhood) is not allowed (at most the smallest patch size, \(smallest))")
        case .noise2self(let n2s) where n2s.grid > smallest:
            let s = try top.section("noise2self", allowed: nil, what: "")
            throw s.error("grid", "\(n2s.grid) is not allowed (at most the smallest patch size, \(smallest))")
        default: break
        }
    }
}
