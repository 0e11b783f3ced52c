import Foundation
import LucidCore
import LucidNN
import XCTest
@testable import LucidRestore

/// Inputs the libFuzzer harnesses (`Fuzz/`, `make fuzz`) found that broke a property; each is
/// kept here once fixed.
final class FuzzRegressionTests: XCTestCase {
    private func message(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }

    /// A quoted header field holding a line break: the message quoting the columns was two lines.
    func testManifestMessageQuotingALineBreakStaysOneLine() {
        XCTAssertEqual(message { _ = try LabelFreeManifest.parse("\n\"\n\"\n\u{10}", file: "pairs.csv", directory: "/data") },
                       "pairs.csv line 2: no signal column (columns found: \\n; a manifest needs signal and target)")
    }

    /// `\N` in a double-quoted YAML value is NEL (U+0085), which YAML reads as a line break: the
    /// resolved recipe's JSON (what checkpoints keep and --resume reads back) wrote it raw, so the
    /// value came back with a space in its place. The same for U+2028, U+2029 and C1 controls.
    func testRecipeValuesWithYAMLLineBreakCharactersReadBackFromJSONAndYAML() throws {
        let recipe = try Recipe.parse(yaml: #"method: noise2self\#ndata: {train: "a\\\NULL\Lb\Pc\x9bd e.tif"}\#n"#)
        XCTAssertEqual(recipe.data.source, .noisy(train: "a\\\u{85}ULL\u{2028}b\u{2029}c\u{9b}d e.tif"))
        XCTAssertEqual(try Recipe.parse(yaml: recipe.json(), file: "lucid.json"), recipe)
        XCTAssertEqual(try Recipe.parse(yaml: recipe.yaml(), file: "recipe.yaml"), recipe)
    }

    /// A lucid.json model of 3-D 7³ kernels, 9 convolutions per level: each convolution fits the
    /// fuzzers' 256 MiB cap but all of them (454 MB) did not, and building it took past the 20 s
    /// timeout. The whole network's weights are now bounded before any is allocated.
    func testNetworkOfManyConvolutionsIsBoundedAsAWhole() throws {
        let json = #"{"activation": "relu", "convBias": true, "convsPerLevel": 9, "dims": 3, "dropout": 0, "firstFilters": 66,"#
            + #""groups": 8, "inChannels": 1, "kernel": 7, "norm": "none", "outChannels": 1, "outputKernel": 1, "pooling": "max","#
            + #""probabilistic": false, "residual": false, "skipTop": true, "upsampling": "nearest"}"#
        let config = try JSONDecoder().decode(UNetConfig.self, from: Data(json.utf8))
        setenv("LUCID_MEMORY_LIMIT_MB", "256", 1)
        defer { unsetenv("LUCID_MEMORY_LIMIT_MB") }
        var rng = RandomGenerator(seed: 0)
        XCTAssertEqual(message { _ = try UNet(config, rng: &rng) }, "UNetConfig: invalid argument: its convolution weights (kernel 7, "
                       + "3-D, 66 filters doubling over 2 levels, 9 convolutions per level) needs 0.423 GiB, more than the 0.25 GiB of memory available")
    }
}
