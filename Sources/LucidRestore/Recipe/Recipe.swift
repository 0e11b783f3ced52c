import Foundation
import LucidCore
import Yams

/// A validated training recipe with every default filled in.
///
/// Load one with ``Recipe/load(path:overrides:)`` or ``Recipe/parse(yaml:file:overrides:)``;
/// save the resolved form next to the weights with ``Recipe/yaml()`` / ``Recipe/json()``.
/// ```swift
/// let recipe = try Recipe.load(path: "Recipes/noise2void.yaml", overrides: ["training.steps=100"])
/// if let n2v = recipe.method as? Noise2Void { print(n2v.pixelFraction) }
/// ```
public struct Recipe: Equatable, Sendable {
    /// Where the training images come from, and how patches are cut.
    public var data: DataRecipe
    /// The network.
    public var model: ModelRecipe
    /// The optimisation loop.
    public var training: TrainingRecipe
    /// The method with its own settings (the `noise2void:`, `care:` … section).
    public var method: any RestorationMethod
    /// Folder for checkpoints, the resolved recipe and logs.
    public var output: String

    /// The `method:` name.
    public var methodName: String { type(of: method).name }

    public init(data: DataRecipe, model: ModelRecipe, training: TrainingRecipe, method: any RestorationMethod,
                output: String) {
        self.data = data
        self.model = model
        self.training = training
        self.method = method
        self.output = output
    }

    /// Two recipes are equal when they resolve to the same settings.
    public static func == (a: Recipe, b: Recipe) -> Bool { a.resolved == b.resolved }

    /// Top-level keys of a recipe.
    public static var topLevelKeys: [String] { ["method", "data", "model", "training", "output"] + Methods.names }

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
        return try read(root, context: context)
    }

    /// The recipe of a composed YAML tree: the method section first (other sections' defaults
    /// depend on it), then data, model and training, then the method's checks across sections.
    private static func read(_ root: Node?, context: RecipeContext) throws -> Recipe {
        guard let root, !RecipeContext.isNull(root) else {
            throw context.error([], "the recipe is empty (a mapping with keys \(topLevelKeys.prefix(5).joined(separator: ", ")))")
        }
        let top = try MapReader(root, path: [], allowed: topLevelKeys,
                                what: "a mapping with keys method, data, model, training, output", context: context)
        let choices = "one of " + Methods.names.joined(separator: ", ")
        guard let node = top.value("method") else { throw top.missing("method", choices) }
        guard case .scalar(let scalar) = node, let type = Methods.named(scalar.string) else {
            throw context.notAllowed(["method"], node, choices)
        }
        for other in Methods.names where other != type.name && top.has(other) {
            throw top.error(other, "settings for method \(other), but the recipe's method is \(type.name)")
        }
        let method = try type.read(try top.section(type.name, allowed: type.keyNames,
                                                   what: "a mapping of \(type.name) settings"))
        let parse = RecipeParseContext(method: method)
        let data = try DataRecipe.read(try top.section("data", allowed: DataRecipe.keys.names, what: "a mapping of data settings"),
                                       parse)
        let model = try ModelRecipe.read(try top.section("model", allowed: ModelRecipe.keys.names,
                                                         what: "a mapping of model settings"), parse)
        let training = try TrainingRecipe.read(try top.section("training", allowed: TrainingRecipe.keys.names,
                                                               what: "a mapping of training settings"), parse)
        let output = try top.string("output", describe: "a folder name") ?? "Checkpoints/\(type.name)"
        let recipe = Recipe(data: data, model: model, training: training, method: method, output: output)
        try recipe.checkPatch(top)
        try method.check(recipe, top)
        return recipe
    }

    /// `data.patch` has one size per spatial axis, each divisible by 2^depth, and fits in memory.
    private func checkPatch(_ top: MapReader) throws {
        let section = try top.section("data", allowed: nil, what: "")
        let shown = "[" + data.patch.map(String.init).joined(separator: ", ") + "]"
        let axes = data.axes
        if data.patch.count != axes.spatialRank {
            let names = axes.spatialRank == 2 ? "Y, X" : "Z, Y, X"
            throw section.error("patch", "\(shown) is not allowed (\(axes.spatialRank) sizes for the \(names) axes of data.axes \(axes.rawValue))")
        }
        let factor = 1 << model.unet.depth
        if data.patch.contains(where: { $0 % factor != 0 }) {
            throw section.error("patch", "\(shown) is not allowed (sizes divisible by \(factor) = 2^model.depth)")
        }
        if let short = TrainingMemory.shortfall(self) { throw section.error("patch", "\(shown) \(short)") }
    }

    // MARK: - the resolved recipe

    /// The resolved recipe (every default filled) as an ordered value tree, in the recipe's own keys.
    public var resolved: RecipeValue {
        .map([("method", .string(methodName)), ("data", DataRecipe.keys.value(data)), (methodName, method.sectionValue),
              ("model", ModelRecipe.keys.value(model)), ("training", TrainingRecipe.keys.value(training)),
              ("output", .string(output))])
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
        try AtomicFile.write(Data(yaml().utf8), to: joinPath(directory, "recipe.yaml"))
        try AtomicFile.write(Data(json().utf8), to: joinPath(directory, "recipe.json"))
    }

    /// The recipe with relative data paths (patterns, manifest, PSF file) joined to `directory`,
    /// usually the recipe file's folder. Absolute paths and `output` are left as they are.
    public func resolvingDataPaths(relativeTo directory: String) -> Recipe {
        func resolve(_ path: String) -> String {
            path.hasPrefix("/") || directory.isEmpty ? path : joinPath(directory, path)
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

    // MARK: - the key table

    /// Every recipe key, section by section, for `lucid recipe --keys` and `Recipes/README.md`.
    public static var keyTable: [KeyRow] {
        var rows = [KeyRow(key: "method", allowed: "one of " + Methods.names.joined(separator: ", "), defaultText: "(required)",
                           summary: "the training method; its settings go in the section of the same name")]
        rows += DataRecipe.keys.keys.flatMap { $0.rows(prefix: "data.", defaults: DataRecipe()) }
        for type in Methods.all { rows += type.keyRows }
        rows += ModelRecipe.keys.keys.flatMap { $0.rows(prefix: "model.", defaults: ModelRecipe()) }
        rows += TrainingRecipe.keys.keys.flatMap { $0.rows(prefix: "training.", defaults: TrainingRecipe()) }
        rows.append(KeyRow(key: "output", allowed: "a folder name", defaultText: "Checkpoints/METHOD",
                           summary: "checkpoint folder (lucid.json, weights, metrics.csv, recipe.yaml)"))
        return rows
    }

    /// The key table as Markdown (the generated part of `Recipes/README.md`).
    public static var keyTableMarkdown: String {
        func cell(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|") }
        var out = "| key | allowed | default | meaning |\n|---|---|---|---|\n"
        for row in keyTable {
            out += "| `\(row.key)` | \(cell(row.allowed)) | \(row.defaultText.isEmpty ? "" : "`" + cell(row.defaultText) + "`") | \(cell(row.summary)) |\n"
        }
        return out
    }
}
