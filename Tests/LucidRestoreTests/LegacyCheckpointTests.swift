import Foundation
import LucidImaging
import XCTest
@testable import LucidRestore

/// Checkpoints written by Lucid 0.1 (before the LucidRestore redesign) still load and predict
/// exactly what they predicted then. The fixtures are a 6-step N2V2 model (max-blur pooling, no
/// top skip) and a 6-step probabilistic CARE model (BatchNorm, Laplace head, target normalization),
/// with the predictions `lucid predict` wrote for `input.tif` at the time.
final class LegacyCheckpointTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/v0.1").path

    private func check(_ name: String, channels: Int) throws {
        let checkpoint = try Checkpoint.load(directory: Self.fixtures + "/" + name)
        let restorer = try ImagePredictor(checkpoint: checkpoint)
        let restored = try restorer.predict(try Image.read(Self.fixtures + "/input.tif"))
        let expected = try Image.read(Self.fixtures + "/\(name)-expected.tif")
        XCTAssertEqual(restored.data.shape, expected.data.shape, name)
        XCTAssertEqual(restored.size("C"), channels, name)
        let worst = zip(restored.data.scalars, expected.data.scalars).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 1
        XCTAssertLessThan(worst, 1e-5, "\(name): largest relative difference \(worst)")
    }

    func testNoise2Void2CheckpointPredictsAsBefore() throws { try check("n2v2", channels: 1) }

    func testProbabilisticCARECheckpointPredictsAsBefore() throws { try check("care", channels: 2) }

    func testLegacyCheckpointsResolveToTheirRecipes() throws {
        for name in ["n2v2", "care"] {
            let checkpoint = try Checkpoint.load(directory: Self.fixtures + "/" + name)
            let recipe = try Recipe.parse(yaml: checkpoint.metadata.recipe, file: name)
            XCTAssertEqual(recipe.json(), try Recipe.parse(yaml: recipe.yaml()).json(), name)
            XCTAssertEqual(checkpoint.metadata.step, 6, name)
        }
    }
}

/// Every recipe in `Fixtures/v0.1/recipes` (the shipped recipes as of Lucid 0.1 and variants that
/// exercise other defaults) resolves to exactly what `lucid recipe` printed for it then, apart
/// from the keys added since, at their defaults (which leave training as it was).
final class LegacyRecipeTests: XCTestCase {
    /// Keys added after Lucid 0.1 and their lines at the default.
    static let addedSince01 = ["  vst: none", "  struct_mask: none"]
    /// Defaults changed on purpose since (issue 14: Noise2Self and Noise2Void train with Adam
    /// 1e-3 and a cosine decay): the key a recipe leaves out, its resolved line then → now.
    static let changedSince01 = ["noise2self": [("lr:", "  lr: 0.0004", "  lr: 0.001"), ("schedule", "    kind: plateau", "    kind: cosine")],
                                 "noise2void": [("lr:", "  lr: 0.0004", "  lr: 0.001"), ("schedule", "    kind: plateau", "    kind: cosine")]]

    func testRecipesResolveAsBefore() throws {
        let folder = LegacyCheckpointTests.fixtures
        let names = try FileManager.default.contentsOfDirectory(atPath: folder + "/recipes").filter { $0.hasSuffix(".yaml") }
        XCTAssertGreaterThanOrEqual(names.count, 13)
        for name in names {
            let recipe = try Recipe.load(path: folder + "/recipes/" + name)
            var before = try String(contentsOfFile: folder + "/resolved/" + name, encoding: .utf8)
            let text = try String(contentsOfFile: folder + "/recipes/" + name, encoding: .utf8)
            for (key, then, now) in Self.changedSince01[recipe.methodName] ?? [] where !text.contains(key) {
                before = before.split(separator: "\n", omittingEmptySubsequences: false)
                    .map { $0 == then ? now : String($0) }.joined(separator: "\n")
            }
            let now = recipe.yaml().split(separator: "\n", omittingEmptySubsequences: false)
                .filter { !Self.addedSince01.contains(String($0)) }.joined(separator: "\n")
            XCTAssertEqual(now, before, name)
        }
    }
}
