import LucidImaging
import LucidNN
import XCTest
@testable import LucidRestore

/// The Recipes/ folder of the repository.
let recipesFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Recipes")

final class RecipeTests: XCTestCase {
    func testMinimalRecipeGetsDefaults() throws {
        let r = try Recipe.parse(yaml: "method: noise2void\ndata: {train: stacks/*.tif}\n")
        XCTAssertEqual(r.methodName, "noise2void")
        XCTAssertEqual(r.data.source, .noisy(train: "stacks/*.tif"))
        XCTAssertEqual(r.data.axes, .yx)
        XCTAssertEqual(r.data.patch, [64, 64])
        XCTAssertEqual(r.data.validation, 0.1)
        XCTAssertEqual(r.data.normalize, .percentile(low: 1, high: 99.8, clip: false))
        XCTAssertTrue(r.data.augment)
        XCTAssertEqual(r.method as? Noise2Void, Noise2Void(masker: BlindSpotMasker(pixelFraction: 0.002, neighborhood: 5,
                                                                                   replacement: .uniform), n2v2: false))
        XCTAssertEqual(r.model.kind, .unet)
        let u = r.model.unet
        XCTAssertEqual([u.depth, u.firstFilters, u.kernel, u.convsPerLevel], [2, 32, 3, 2])
        XCTAssertEqual(u.residual, false)
        XCTAssertEqual(u.norm, .none)
        XCTAssertEqual(u.pooling, .max)
        XCTAssertEqual(u.upsampling, .nearest)
        XCTAssertEqual(u.probabilistic, false)
        XCTAssertEqual(u.dropout, 0)
        XCTAssertEqual(r.training.steps, 4000)
        XCTAssertEqual(r.training.batch, 16)
        XCTAssertEqual(r.training.lr, 1e-3, "noise2void: Adam 1e-3 with cosine decay")
        XCTAssertEqual(r.training.seed, 0)
        XCTAssertEqual(r.training.optimizer, .adam)
        XCTAssertEqual(r.training.weightDecay, 0)
        XCTAssertEqual(r.training.schedule, LearningRateSchedule(kind: .cosine, factor: 0.5, every: 1000, patience: 10, warmup: 0))
        XCTAssertEqual(r.training.validateEvery, 200)
        XCTAssertEqual(r.training.earlyStopping.patience, 0)
        XCTAssertEqual(r.training.clipNorm, 0)
        XCTAssertEqual(r.output, "Checkpoints/noise2void")
    }

    func testMethodDependentDefaults() throws {
        let n2s = try Recipe.parse(yaml: "method: noise2self\ndata: {train: a.tif, axes: ZYX}\n")
        XCTAssertEqual(n2s.method as? Noise2Self, Noise2Self(masker: GridMasker(grid: 4, replacement: .interpolate)))
        XCTAssertEqual(n2s.data.patch, [16, 64, 64])
        let n2v2 = try Recipe.parse(yaml: "method: noise2void\ndata: {train: a.tif}\nnoise2void: {n2v2: true}\n")
        XCTAssertEqual(n2v2.model.unet.pooling, .maxBlur)
        XCTAssertEqual(n2v2.method as? Noise2Void, Noise2Void(masker: BlindSpotMasker(replacement: .median), n2v2: true))
        let care = try Recipe.parse(yaml: "method: care\ndata: {input: a/*.tif, target: b/*.tif}\ncare: {loss: laplace}\n")
        XCTAssertEqual(care.method as? CARE, CARE(loss: .laplace, probabilistic: true))
        XCTAssertTrue(care.model.unet.probabilistic)
        XCTAssertEqual(care.data.source, .paired(input: "a/*.tif", target: "b/*.tif"))
        let adamw = try Recipe.parse(yaml: "method: noise2noise\ndata: {input: a, target: b}\ntraining: {optimizer: adamw}\n")
        XCTAssertEqual(adamw.training.weightDecay, 0.01)
        XCTAssertEqual(adamw.method as? Noise2Noise, Noise2Noise(loss: .mse))
    }

    /// The contract example: one template listing every data key validates as written.
    func testContractExampleValidates() throws {
        let text = """
        method: noise2self          # noise2self | noise2void | noise2noise | care
        data:
          train: stacks/*.tif       # self-supervised methods: the noisy stacks
          input: low/*.tif          # paired methods: degraded inputs
          target: high/*.tif        # paired methods: targets, matched to inputs by file name
          axes: YX                  # YX, ZYX, CYX, CZYX
          patch: [64, 64]
          validation: 0.1
          normalize: {mode: percentile, low: 1, high: 99.8}
        model: {kind: unet, depth: 2, filters: 32, kernel: 3, residual: false}
        training: {steps: 4000, batch: 16, lr: 4.0e-4, seed: 0}
        output: Checkpoints/my-run
        """
        let r = try Recipe.parse(yaml: text)
        XCTAssertEqual(r.data.source, .noisy(train: "stacks/*.tif"))
        XCTAssertEqual(r.output, "Checkpoints/my-run")
        XCTAssertEqual(r.training.lr, 4e-4)
        let care = try Recipe.parse(yaml: text, overrides: ["method=care"])
        XCTAssertEqual(care.data.source, .paired(input: "low/*.tif", target: "high/*.tif"))

        let labelfree = try Recipe.parse(yaml: """
        method: labelfree
        data: {manifest: pairs.csv, axes: YX, patch: [64, 64], validation: 0.1}
        model: {kind: unet, depth: 2, filters: 32, kernel: 3, residual: false}
        training: {steps: 4000, batch: 16, lr: 4.0e-4, seed: 0}
        """)
        XCTAssertEqual(labelfree.data.source, .manifest("pairs.csv"))
        XCTAssertEqual(labelfree.method as? LabelFree, LabelFree(loss: .mse))
    }

    func testSimulatedCARE() throws {
        let r = try Recipe.parse(yaml: """
        method: care
        data:
          target: high/*.tif
          simulate: {psf: {model: gibson-lanni, na: 1.4, wavelength: 0.6}, photons: 50}
        """)
        XCTAssertEqual(r.data.source, .simulated(target: "high/*.tif", simulation: Simulation(
            psf: .model(.gibsonLanni, parameters: ["na": 1.4, "wavelength": 0.6]), photons: 50, readNoise: 2,
            background: 0)))
        let file = try Recipe.parse(yaml: "method: care\ndata: {target: t.tif, simulate: {psf: measured.tif}}\n")
        XCTAssertEqual(file.data.source, .simulated(target: "t.tif", simulation: Simulation(psf: .file("measured.tif"))))
    }

    func testEveryShippedRecipeValidates() throws {
        let names = ["noise2self", "noise2void", "noise2noise", "care", "care-simulated", "labelfree-2d",
                     "labelfree-3d", "demo", "zeroshot", "diffusion-conditional", "diffusion-selfsupervised"]
        let files = try FileManager.default.contentsOfDirectory(atPath: recipesFolder.path).filter { $0.hasSuffix(".yaml") }
        XCTAssertEqual(Set(files), Set(names.map { $0 + ".yaml" }))
        for file in files {
            let recipe = try Recipe.load(path: recipesFolder.appendingPathComponent(file).path)
            let expected = file.hasPrefix("labelfree") ? "labelfree"
                : file == "demo.yaml" ? "noise2self"
                : file.hasPrefix("diffusion") ? "diffusion"
                : String(file.dropLast(5)).replacingOccurrences(of: "-simulated", with: "")
            XCTAssertNotNil(Methods.named(expected), file)
            XCTAssertEqual(recipe.methodName, expected, file)
            XCTAssertEqual(recipe.data.patch.count, recipe.data.axes.spatialRank, file)
        }
        let simulated = try Recipe.load(path: recipesFolder.appendingPathComponent("care-simulated.yaml").path)
        guard case .simulated(_, let sim) = simulated.data.source else { return XCTFail("care-simulated: \(simulated.data.source)") }
        XCTAssertEqual(sim.psf, .model(.bornWolf, parameters: ["na": 1.2, "wavelength": 0.52, "ni": 1.33, "pixel_size": 0.1]))
    }

    func testOverridesAreApplied() throws {
        let base = "method: noise2void\ndata: {train: a.tif, axes: YX}\ntraining: {steps: 4000}\n"
        let r = try Recipe.parse(yaml: base, overrides: [
            "training.steps=100", "data.axes=ZYX", "data.patch=[32,64,64]", "noise2void.n2v2=true",
            "training.schedule={kind: step, every: 50}", "output=runs/x", "data.normalize=none",
        ])
        XCTAssertEqual(r.training.steps, 100)
        XCTAssertEqual(r.data.axes, .zyx)
        XCTAssertEqual(r.data.patch, [32, 64, 64])
        XCTAssertEqual(r.model.unet.pooling, .maxBlur)
        XCTAssertEqual(r.training.schedule, LearningRateSchedule(kind: .step, every: 50))
        XCTAssertEqual(r.output, "runs/x")
        XCTAssertEqual(r.data.normalize.method, Normalization.Method.none)
        // Later overrides win; a glob that is not valid YAML is taken as a string; an empty value restores the default.
        let s = try Recipe.parse(yaml: base, overrides: ["training.steps=5", "training.steps=6", "data.train=*.tif",
                                                         "output="])
        XCTAssertEqual(s.training.steps, 6)
        XCTAssertEqual(s.data.source, .noisy(train: "*.tif"))
        XCTAssertEqual(s.output, "Checkpoints/noise2void")
        // Overrides alone can make a recipe.
        let t = try Recipe.parse(yaml: "", overrides: ["method=noise2self", "data.train=x.tif"])
        XCTAssertEqual(t.methodName, "noise2self")
    }

    func testResolvedRecipeRoundTrips() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: recipesFolder.path).filter { $0.hasSuffix(".yaml") }
        for file in files {
            let recipe = try Recipe.load(path: recipesFolder.appendingPathComponent(file).path)
            XCTAssertEqual(try Recipe.parse(yaml: recipe.yaml(), file: "resolved.yaml"), recipe, file)
            XCTAssertEqual(try Recipe.parse(yaml: recipe.json(), file: "resolved.json"), recipe, file)
            let json = try JSONSerialization.jsonObject(with: Data(recipe.json().utf8)) as? [String: Any]
            XCTAssertEqual(json?["method"] as? String, recipe.methodName, file)
        }
        // Strings that look like other YAML types are quoted so they stay strings.
        var odd = try Recipe.parse(yaml: "method: noise2self\ndata: {train: 'yes'}\noutput: '123'\n")
        odd.data.source = .noisy(train: "a: b, [c]")
        let back = try Recipe.parse(yaml: odd.yaml())
        XCTAssertEqual(back, odd)
        XCTAssertEqual(back.output, "123")
        XCTAssertTrue(odd.yaml().contains("  patch: [64, 64]\n"), odd.yaml())
    }

    func testSaveWritesBothFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lucid-recipe-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let recipe = try Recipe.parse(yaml: "method: noise2self\ndata: {train: a.tif}\n")
        try recipe.save(in: dir.path)
        XCTAssertEqual(try Recipe.load(path: dir.appendingPathComponent("recipe.yaml").path), recipe)
        XCTAssertEqual(try Recipe.load(path: dir.appendingPathComponent("recipe.json").path), recipe)
    }

    func testDataPathsResolveAgainstTheRecipeFolder() throws {
        let paired = try Recipe.parse(yaml: "method: care\ndata: {input: low/*.tif, target: /abs/high/*.tif}\n")
        XCTAssertEqual(paired.resolvingDataPaths(relativeTo: "/runs/exp").data.source,
                       .paired(input: "/runs/exp/low/*.tif", target: "/abs/high/*.tif"))
        let simulated = try Recipe.parse(yaml: "method: care\ndata: {target: t/*.tif, simulate: {psf: psf.tif}}\n")
        XCTAssertEqual(simulated.resolvingDataPaths(relativeTo: "base/").data.source,
                       .simulated(target: "base/t/*.tif", simulation: Simulation(psf: .file("base/psf.tif"))))
        let labelfree = try Recipe.parse(yaml: "method: labelfree\ndata: {manifest: pairs.csv}\noutput: out\n")
        let moved = labelfree.resolvingDataPaths(relativeTo: "d")
        XCTAssertEqual(moved.data.source, .manifest("d/pairs.csv"))
        XCTAssertEqual(moved.output, "out")
        XCTAssertEqual(labelfree.resolvingDataPaths(relativeTo: ""), labelfree)
    }
}

/// The key table of Recipes/README.md is the one the code generates.
final class RecipeKeyTableTests: XCTestCase {
    func testReadmeTableMatchesTheCode() throws {
        let readme = try String(contentsOf: recipesFolder.appendingPathComponent("README.md"), encoding: .utf8)
        let begin = try XCTUnwrap(readme.range(of: "<!-- keys:begin -->\n")), end = try XCTUnwrap(readme.range(of: "<!-- keys:end -->"))
        XCTAssertEqual(String(readme[begin.upperBound..<end.lowerBound]), Recipe.keyTableMarkdown,
                       "Recipes/README.md's key table is stale: replace it with the output of `lucid recipe --keys`")
    }

    func testEveryKeyAParserAllowsIsInTheTable() throws {
        let keys = Set(Recipe.keyTable.map(\.key))
        for key in ["data.normalize.per_image", "noise2void.n2v2", "care.probabilistic", "model.convs_per_level",
                    "training.schedule.warmup", "training.early_stopping.min_delta", "output"] {
            XCTAssertTrue(keys.contains(key), key)
        }
        // Every method's section and every shared section's keys appear, once.
        XCTAssertEqual(keys.count, Recipe.keyTable.count)
        for type in Methods.all {
            for name in type.keyNames { XCTAssertTrue(keys.contains(type.name + "." + name), "\(type.name).\(name)") }
        }
        for name in ModelRecipe.keys.names { XCTAssertTrue(keys.contains("model." + name), name) }
        for name in TrainingRecipe.keys.names where name != "schedule" && name != "early_stopping" {
            XCTAssertTrue(keys.contains("training." + name), name)
        }
    }
}
