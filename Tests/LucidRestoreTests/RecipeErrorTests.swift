import XCTest
@testable import LucidRestore

/// Every kind of recipe mistake gives a one-line message naming the file, key path, value and what is allowed.
final class RecipeErrorTests: XCTestCase {
    private let base = "method: noise2void\ndata:\n  train: a.tif\n  patch: [64, 64]\nmodel:\n  depth: 2\n"

    private func assertError(_ yaml: String, _ expected: String, overrides: [String] = [], file: String = "recipe.yaml",
                             line: UInt = #line) {
        XCTAssertThrowsError(try Recipe.parse(yaml: yaml, file: file, overrides: overrides), line: line) { error in
            guard let e = error as? RecipeError else { return XCTFail("not a RecipeError: \(error)", line: line) }
            XCTAssertEqual(e.description, expected, line: line)
        }
    }

    func testUnknownKeys() {
        assertError("methd: care\n", "recipe.yaml: methd: unknown key (allowed: method, data, model, training, output, "
                    + "noise2self, noise2void, noise2noise, care, labelfree, zeroshot, diffusion) [line 1]")
        assertError("method: noise2void\ndata:\n  train: a.tif\n  patchsize: [64, 64]\n",
                    "recipe.yaml: data.patchsize: unknown key (allowed: train, input, target, manifest, simulate, axes, "
                    + "patch, validation, normalize, augment, vst, target_normalize, pixel_size, source_pixel_size) [line 4]")
        assertError("method: noise2void\ndata: {train: a.tif}\ntraining: {schedule: {kind: step, gamma: 0.1}}\n",
                    "recipe.yaml: training.schedule.gamma: unknown key (allowed: kind, factor, every, patience, warmup) [line 3]")
        assertError("method: noise2void\ndata: {train: a.tif}\nnoise2void: {grid: 4}\n",
                    "recipe.yaml: noise2void.grid: unknown key (allowed: pixel_fraction, neighborhood, n2v2, replacement, struct_mask) [line 3]")
        assertError("method: noise2void\ndata: {train: a.tif}\ncare: {loss: mse}\n",
                    "recipe.yaml: care: settings for method care, but the recipe's method is noise2void [line 3]")
        assertError(base + "  train: b.tif\n", "recipe.yaml: model.train: unknown key (allowed: kind, depth, filters, kernel, "
                    + "residual, norm, pooling, upsampling, convs_per_level, probabilistic, dropout) [line 7]")
        assertError("method: noise2void\ndata:\n  train: a.tif\n  train: b.tif\n",
                    "recipe.yaml: data.train: duplicate key (first given at line 3) [line 4]")
    }

    func testWrongTypes() {
        assertError(base + "  filters: two\n", "recipe.yaml: model.filters: two is not allowed (an integer from 1 to 1024) [line 7]")
        assertError(base + "  filters: \"32\"\n", "recipe.yaml: model.filters: \"32\" is not allowed (an integer from 1 to 1024) [line 7]")
        assertError(base + "  residual: maybe\n", "recipe.yaml: model.residual: maybe is not allowed (true or false) [line 7]")
        assertError("method: noise2void\ndata: {train: [a.tif]}\n",
                    "recipe.yaml: data.train: [a.tif] is not allowed (a file name or pattern) [line 2]")
        assertError("method: noise2void\nmodel: [1, 2]\ndata: {train: a.tif}\n",
                    "recipe.yaml: model: [1, 2] is not allowed (a mapping of model settings) [line 2]")
        assertError("method: noise2void\ndata: {train: a.tif, patch: [64, x]}\n",
                    "recipe.yaml: data.patch: [64, x] is not allowed (a list of positive patch sizes such as [64, 64]) [line 2]")
        assertError("- a\n- b\n", "recipe.yaml: [a, b] is not allowed (a mapping with keys method, data, model, training, output) [line 1]")
        assertError("", "recipe.yaml: the recipe is empty (a mapping with keys method, data, model, training, output)")
    }

    func testOutOfRange() {
        assertError("method: noise2void\ndata: {train: a.tif}\nmodel:\n  depth: 0\n",
                    "recipe.yaml: model.depth: 0 is not allowed (an integer from 1 to 6) [line 4]")
        assertError("method: noise2void\ndata: {train: a.tif}\ntraining: {lr: -1}\n",
                    "recipe.yaml: training.lr: -1 is not allowed (a number > 0 and ≤ 1) [line 3]")
        assertError("method: noise2void\ndata: {train: a.tif}\nmodel: {kernel: 4}\n",
                    "recipe.yaml: model.kernel: 4 is not allowed (an odd integer from 1 to 15) [line 3]")
        assertError("method: noise2void\ndata: {train: a.tif, validation: 1}\n",
                    "recipe.yaml: data.validation: 1 is not allowed (a number ≥ 0 and < 1) [line 2]")
        assertError("method: noise2void\ndata: {train: a.tif, normalize: {low: 99, high: 1}}\n",
                    "recipe.yaml: data.normalize.high: 1 is not allowed (a percentile above data.normalize.low, 99.0) [line 2]")
        assertError("method: care\ndata: {target: t.tif, simulate: {psf: {model: born-wolf, na: -1.2}}}\n",
                    "recipe.yaml: data.simulate.psf.na: -1.2 is not allowed (a positive number) [line 2]")
        assertError("method: care\ndata: {target: t.tif, simulate: {psf: {model: gaussian, nxy: 7.5}}}\n",
                    "recipe.yaml: data.simulate.psf.nxy: 7.5 is not allowed (a whole number 1 … 65535) [line 2]")
        assertError("method: care\ndata: {target: t.tif, simulate: {psf: {model: gaussian, nz: 1.0e30}}}\n",
                    "recipe.yaml: data.simulate.psf.nz: 1.0e30 is not allowed (a whole number 1 … 65535) [line 2]")
        assertError("method: care\ndata: {target: t.tif, simulate: {psf: {model: gaussian, width: 2}}}\n",
                    "recipe.yaml: data.simulate.psf.width: unknown PSF parameter (allowed: \(PSFSpec.parameterNames.joined(separator: ", "))) [line 2]")
        assertError("method: noise2void\ndata: {train: a.tif}\nmodel: {dropout: 1}\n",
                    "recipe.yaml: model.dropout: 1 is not allowed (a number ≥ 0 and < 1) [line 3]")
    }

    func testBadEnumValuesListTheChoices() {
        assertError("method: unet\n", "recipe.yaml: method: unet is not allowed (one of noise2self, noise2void, noise2noise, "
                    + "care, labelfree, zeroshot, diffusion) [line 1]")
        assertError("method: noise2void\ndata: {train: a.tif, axes: XY}\n",
                    "recipe.yaml: data.axes: XY is not allowed (one of YX, ZYX, CYX, CZYX) [line 2]")
        assertError("method: noise2void\ndata: {train: a.tif}\ntraining: {optimizer: rmsprop}\n",
                    "recipe.yaml: training.optimizer: rmsprop is not allowed (one of adam, adamw, sgd) [line 3]")
        assertError("method: noise2void\ndata: {train: a.tif}\ntraining: {schedule: linear}\n",
                    "recipe.yaml: training.schedule: linear is not allowed (one of none, cosine, step, plateau) [line 3]")
        assertError("method: noise2noise\ndata: {input: a, target: b}\nnoise2noise: {loss: laplace}\n",
                    "recipe.yaml: noise2noise.loss: laplace is not allowed (one of mse, mae) [line 3]")
        assertError("method: care\ndata: {target: t.tif, simulate: {psf: {model: widefield, na: 1.2}}}\n",
                    "recipe.yaml: data.simulate.psf.model: widefield is not allowed (one of gaussian, airy, born-wolf, "
                    + "gibson-lanni, confocal) [line 2]")
        assertError("method: noise2void\ndata: {train: a.tif}\nmodel: {pooling: average}\n",
                    "recipe.yaml: model.pooling: average is not allowed (one of max, conv, maxblur) [line 3]")
    }

    func testMissingRequiredKeysPerMethod() {
        assertError("data: {train: a.tif}\n",
                    "recipe.yaml: method: missing (one of noise2self, noise2void, noise2noise, care, labelfree, zeroshot, diffusion) [line 1]")
        assertError("method: noise2self\ndata: {input: a.tif, target: b.tif}\n",
                    "recipe.yaml: data.train: missing (method noise2self trains on noisy stacks: a file pattern such as "
                    + "stacks/*.tif) [line 2]")
        assertError("method: care\ndata: {input: a.tif}\n",
                    "recipe.yaml: data.target: missing (method care needs data.target with data.input or data.simulate) [line 2]")
        assertError("method: care\ndata: {target: a.tif}\n",
                    "recipe.yaml: data.input: missing (method care needs degraded inputs in data.input, or data.simulate "
                    + "to make them) [line 2]")
        assertError("method: noise2noise\ndata: {target: a.tif}\n",
                    "recipe.yaml: data.input: missing (method noise2noise needs data.input and data.target file patterns) [line 2]")
        assertError("method: labelfree\ndata: {axes: YX}\n",
                    "recipe.yaml: data.manifest: missing (method labelfree reads signal/target pairs from a CSV file, or from "
                    + "data.input and data.target file patterns matched by name) [line 2]")
        assertError("method: care\ndata: {target: t.tif, simulate: {photons: 3}}\n",
                    "recipe.yaml: data.simulate.psf: missing (a PSF model such as {model: born-wolf, na: 1.2, "
                    + "wavelength: 0.52}, or a PSF file) [line 2]")
    }

    func testCrossFieldChecks() {
        assertError("method: noise2void\ndata: {train: a.tif, axes: ZYX, patch: [64, 64]}\n",
                    "recipe.yaml: data.patch: [64, 64] is not allowed (3 sizes for the Z, Y, X axes of data.axes ZYX) [line 2]")
        assertError("method: noise2void\ndata: {train: a.tif, axes: CYX, patch: [8, 64, 64]}\n",
                    "recipe.yaml: data.patch: [8, 64, 64] is not allowed (2 sizes for the Y, X axes of data.axes CYX) [line 2]")
        assertError("method: noise2void\ndata: {train: a.tif, patch: [64, 30]}\n",
                    "recipe.yaml: data.patch: [64, 30] is not allowed (sizes divisible by 4 = 2^model.depth) [line 2]")
        assertError("method: noise2void\ndata: {train: a.tif, patch: [8, 8]}\nnoise2void: {neighborhood: 9}\n",
                    "recipe.yaml: noise2void.neighborhood: 9 is not allowed (at most the smallest patch size, 8) [line 3]")
        assertError("method: care\ndata: {target: t.tif, input: i.tif, simulate: {psf: p.tif}}\n",
                    "recipe.yaml: data.simulate: not allowed together with data.input (simulated inputs replace data.input) [line 2]")
        assertError("method: noise2void\ndata: {train: a.tif, manifest: p.csv}\n",
                    "recipe.yaml: data.manifest: not used by method noise2void (it trains on the noisy stacks in data.train) [line 2]")
        assertError("method: care\ndata: {input: i.tif, target: t.tif}\ncare: {loss: laplace, probabilistic: false}\n",
                    "recipe.yaml: care.loss: laplace is not allowed (one of mae, mse; laplace needs care.probabilistic: true) [line 3]")
        assertError("method: care\ndata: {input: i.tif, target: t.tif}\ncare: {loss: mse, probabilistic: true}\n",
                    "recipe.yaml: care.loss: mse is not allowed (a probabilistic model trains with laplace) [line 3]")
        assertError("method: noise2void\ndata: {train: a.tif}\nmodel: {probabilistic: true}\n",
                    "recipe.yaml: model.probabilistic: true is not allowed (only method care trains probabilistic models) [line 3]")
    }

    func testMalformedYAMLReportsTheLine() {
        assertError("method: noise2void\ndata:\n  train: a.tif\n  patch: [64, 64\nmodel: {}\n",
                    "runs/r.yaml: malformed YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 4) "
                    + "[line 5, column 6]", file: "runs/r.yaml")
        assertError("method: noise2void\ndata:\n  train: a.tif\n patch: 3\n",
                    "recipe.yaml: malformed YAML: did not find expected key (while parsing a block mapping at line 1) "
                    + "[line 4, column 2]")
        assertError("method: noise2void\ndata:\n  train: *.tif\n",
                    "recipe.yaml: malformed YAML: did not find expected alphabetic or numeric character (while scanning "
                    + "an alias at line 3); quote values that start with *, e.g. '*.tif' [line 3, column 11]")
        assertError("method: noise2void\n---\nmethod: care\n",
                    "recipe.yaml: malformed YAML: a recipe is one YAML document, but a second one starts here [line 2, column 1]")
    }

    func testBadOverrides() {
        assertError(base, "recipe.yaml: --set model..depth=3: 'model..depth' is not a key path (names joined by dots, "
                    + "e.g. model.depth)", overrides: ["model..depth=3"])
        assertError(base, "recipe.yaml: --set model.depth: expected key.path=value", overrides: ["model.depth"])
        assertError(base, "recipe.yaml: --set data.patch=[32,64: the value is not valid YAML: did not find expected ',' "
                    + "or ']' (while parsing a flow sequence at line 1)", overrides: ["data.patch=[32,64"])
        assertError(base, "recipe.yaml: method: holds a value, not a section, so --set method.kind=x cannot set a key "
                    + "inside it", overrides: ["method.kind=x"])
        assertError("- a\n", "recipe.yaml: the recipe is not a mapping, so --set model.depth=3 cannot set a key in it",
                    overrides: ["model.depth=3"])
        assertError(base, "recipe.yaml: data.patchsize: unknown key (allowed: train, input, target, manifest, simulate, "
                    + "axes, patch, validation, normalize, augment, vst, target_normalize, pixel_size, source_pixel_size) "
                    + "[--set data.patchsize=3]", overrides: ["data.patchsize=3"])
        assertError(base, "recipe.yaml: model.depth: 0 is not allowed (an integer from 1 to 6) [--set model.depth=0]",
                    overrides: ["model.depth=0"])
        assertError(base, "recipe.yaml: data.patch: [3] is not allowed (2 sizes for the Y, X axes of data.axes YX) "
                    + "[--set data={train: a.tif, patch: [3]}]", overrides: ["data={train: a.tif, patch: [3]}"])
    }

    func testUnreadableFile() {
        XCTAssertThrowsError(try Recipe.load(path: "/nonexistent/recipe.yaml")) { e in
            XCTAssertEqual("\(e)", "/nonexistent/recipe.yaml: cannot read the recipe file")
        }
    }
}
