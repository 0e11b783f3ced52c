import Foundation

extension Recipe {
    /// The resolved recipe (every default filled) as an ordered value tree, in the recipe's own keys.
    public var resolved: RecipeValue {
        var top: [(String, RecipeValue)] = [("method", .string(method.rawValue)), ("data", data.value(labelFree: method.isLabelFree))]
        top.append((method.rawValue, settings.value))
        top += [("model", model.value), ("training", training.value), ("output", .string(output))]
        return .map(top)
    }

    /// The resolved recipe as YAML; `Recipe.parse(yaml:)` reads it back to an equal recipe.
    public func yaml() -> String {
        "# Resolved Lucid recipe: every setting, defaults included.\n" + resolved.yaml()
    }

    /// The resolved recipe as JSON (also valid YAML, so `Recipe.parse(yaml:)` reads it back).
    public func json() -> String { resolved.json() }

    /// Writes `recipe.yaml` and `recipe.json` into `directory` (created when missing).
    public func save(in directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let base = URL(fileURLWithPath: directory)
        try Data(yaml().utf8).write(to: base.appendingPathComponent("recipe.yaml"), options: .atomic)
        try Data(json().utf8).write(to: base.appendingPathComponent("recipe.json"), options: .atomic)
    }
}

extension NormalizationRecipe {
    /// The `normalize` mapping; `per_image` only where the method allows it.
    func value(perImageKey: Bool) -> RecipeValue {
        .map([("mode", .string(mode.rawValue)), ("low", .double(low)), ("high", .double(high)), ("clip", .bool(clip))]
             + (perImageKey ? [("per_image", .bool(perImage))] : []))
    }
}

extension DataRecipe {
    func value(labelFree: Bool) -> RecipeValue {
        var pairs: [(String, RecipeValue)] = []
        switch source {
        case .noisy(let train): pairs.append(("train", .string(train)))
        case let .paired(input, target): pairs += [("input", .string(input)), ("target", .string(target))]
        case let .simulated(target, simulation): pairs += [("target", .string(target)), ("simulate", simulation.value)]
        case .manifest(let manifest): pairs.append(("manifest", .string(manifest)))
        }
        pairs += [
            ("axes", .string(axes.rawValue)),
            ("patch", .list(patch.map { .int($0) })),
            ("validation", .double(validation)),
            ("normalize", normalize.value(perImageKey: labelFree)),
            ("augment", .bool(augment)),
        ]
        if labelFree {
            if let targetNormalize { pairs.append(("target_normalize", targetNormalize.value(perImageKey: true))) }
            if let pixelSize { pairs.append(("pixel_size", .double(pixelSize))) }
            if let sourcePixelSize { pairs.append(("source_pixel_size", .double(sourcePixelSize))) }
        }
        return .map(pairs)
    }
}

extension Simulation {
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

extension MethodSettings {
    var value: RecipeValue {
        switch self {
        case .noise2self(let s):
            return .map([("grid", .int(s.grid)), ("replacement", .string(s.replacement.rawValue))])
        case .noise2void(let s):
            return .map([("pixel_fraction", .double(s.pixelFraction)), ("neighborhood", .int(s.neighborhood)),
                         ("n2v2", .bool(s.n2v2)), ("replacement", .string(s.replacement.rawValue))])
        case .noise2noise(let s): return .map([("loss", .string(s.loss.rawValue))])
        case .care(let s):
            return .map([("loss", .string(s.loss.rawValue)), ("probabilistic", .bool(s.probabilistic))])
        case .labelfree(let s): return .map([("loss", .string(s.loss.rawValue))])
        }
    }
}

extension ModelRecipe {
    var value: RecipeValue {
        .map([("kind", .string(kind.rawValue)), ("depth", .int(depth)), ("filters", .int(filters)),
              ("kernel", .int(kernel)), ("residual", .bool(residual)), ("norm", .string(norm.rawValue)),
              ("pooling", .string(pooling.rawValue)), ("upsampling", .string(upsampling.rawValue)),
              ("convs_per_level", .int(convsPerLevel)), ("probabilistic", .bool(probabilistic)),
              ("dropout", .double(dropout))])
    }
}

extension TrainingRecipe {
    var value: RecipeValue {
        .map([("steps", .int(steps)), ("batch", .int(batch)), ("lr", .double(lr)), ("seed", .int(seed)),
              ("optimizer", .string(optimizer.rawValue)), ("weight_decay", .double(weightDecay)),
              ("momentum", .double(momentum)),
              ("schedule", .map([("kind", .string(schedule.kind.rawValue)), ("factor", .double(schedule.factor)),
                                 ("every", .int(schedule.every)), ("patience", .int(schedule.patience)),
                                 ("warmup", .int(schedule.warmup))])),
              ("validate_every", .int(validateEvery)),
              ("early_stopping", .map([("patience", .int(patience)), ("min_delta", .double(minDelta))])),
              ("clip_norm", .double(clipNorm))])
    }
}

extension Recipe {
    /// The recipe with relative data paths (patterns, manifest, PSF file) joined to `directory`,
    /// usually the recipe file's folder. Absolute paths and `output` are left as they are.
    public func resolvingDataPaths(relativeTo directory: String) -> Recipe {
        func resolve(_ path: String) -> String {
            path.hasPrefix("/") || directory.isEmpty ? path
                : (directory.hasSuffix("/") ? directory : directory + "/") + path
        }
        var copy = self
        switch data.source {
        case .noisy(let train): copy.data.source = .noisy(train: resolve(train))
        case let .paired(input, target): copy.data.source = .paired(input: resolve(input), target: resolve(target))
        case .manifest(let manifest): copy.data.source = .manifest(resolve(manifest))
        case .simulated(let target, var simulation):
            if case .file(let psf) = simulation.psf { simulation.psf = .file(resolve(psf)) }
            copy.data.source = .simulated(target: resolve(target), simulation: simulation)
        }
        return copy
    }
}
