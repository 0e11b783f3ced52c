import Foundation
import LucidCore
import LucidImaging
@testable import LucidRestore
import LucidTestSupport
import XCTest

/// Label-free prediction on the synthetic brightfield generator: a short training learns the
/// nuclei, and `lucid demo labelfree` writes its files.
final class LabelFreeDemoTests: XCTestCase {
    /// 150 steps of a small U-Net (about a second and a half of CPU) on four 128 × 128 generator
    /// pairs predict the held-out fifth pair's nuclei with r ≈ 0.75, where the brightfield image
    /// itself (the nuclei absorb a little) has r ≈ 0.33. The bounds (r ≥ 0.6 and 0.3 above the
    /// brightfield's |r|) leave room for other float summation orders yet fail for a net that
    /// learned only the brightfield's contrast, or nothing (r ≈ 0).
    func testShortTrainingPredictsHeldOutNucleiFromBrightfield() throws {
        let dir = try temporaryFolder(self).path
        let split = try SyntheticBrightfield(shape: [128, 128], seed: 7).writeDataset(to: dir, count: 5)
        XCTAssertEqual(split.test, 1)
        let recipe = try Recipe.parse(yaml: """
            method: labelfree
            data: {manifest: "\(dir)/pairs.csv", axes: YX, patch: [32, 32], validation: 0}
            model: {kind: unet, depth: 2, filters: 8, kernel: 3}
            training: {steps: 150, batch: 8, lr: 3.0e-3, seed: 0}
            output: "\(dir)/run"
            """)
        let trainer = Trainer(recipe: recipe)
        trainer.showProgress = false
        _ = try trainer.run()

        let predictor = try ImagePredictor(checkpoint: Checkpoint.load(directory: "\(dir)/run"), weights: .last)
        let row = try XCTUnwrap(try LabelFreeManifest.read("\(dir)/pairs.csv").rows(.test).first)
        let signal = try Image.read(row.signal.path), truth = try Image.read(row.targets[0].path)
        let r = try Metrics.pearson(predictor.predict(signal).data, reference: truth.data)
        let brightfield = abs(try Metrics.pearson(signal.data, reference: truth.data))
        XCTAssertGreaterThan(r, 0.6, "held-out Pearson r (brightfield itself: \(brightfield))")
        XCTAssertGreaterThan(r, brightfield + 0.3, "held-out Pearson r vs the brightfield's \(brightfield)")
    }

    /// The demo with a tiny budget: the dataset, the checkpoint, the three stacks (two held-out
    /// pairs along T), the figure (two rows of three panels) and metrics.json agreeing with the result.
    func testDemoWritesItsFiles() throws {
        let dir = try temporaryFolder(self).path
        var demo = LabelFreeDemo()
        demo.output = "\(dir)/out"
        demo.shape = [64, 64]
        demo.pairs = 8
        demo.seconds = 0.1
        demo.probeSteps = 3
        var lines: [String] = []
        let result = try demo.run { lines.append($0) }
        XCTAssertEqual(result.trainingPairs, 6)
        XCTAssertEqual(result.heldOut.map { ($0.signal as NSString).lastPathComponent }, ["006.tif", "007.tif"])
        XCTAssertEqual(result.steps, 3, "the speed probe's steps when the budget is spent")
        XCTAssertTrue(result.heldOut.allSatisfy { abs($0.pearson) <= 1 && abs($0.brightfieldPearson) <= 1 })
        XCTAssertEqual(result.meanPearson, (result.heldOut[0].pearson + result.heldOut[1].pearson) / 2, accuracy: 1e-12)
        XCTAssertTrue(lines.first?.hasPrefix("simulated 8 brightfield/fluorescence pairs 64×64") == true, "\(lines)")

        for name in ["data/pairs.csv", "data/signal/007.tif", "checkpoint/lucid.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/out/\(name)"), name)
        }
        let predicted = try Image.read("\(dir)/out/predicted.tif")
        XCTAssertEqual(predicted.axes, "TYX")
        XCTAssertEqual(predicted.data.shape, [2, 64, 64])
        let truth = try Image.read("\(dir)/out/truth.tif"), brightfield = try Image.read("\(dir)/out/brightfield.tif")
        XCTAssertEqual(truth.data.shape, [2, 64, 64])
        XCTAssertEqual(try Image.read("\(dir)/out/data/signal/007.tif").data.scalars,
                       try brightfield.data.slice(axis: 0, range: 1..<2).scalars)
        XCTAssertEqual(try Metrics.pearson(predicted.data.slice(axis: 0, range: 1..<2), reference: truth.data.slice(axis: 0, range: 1..<2)),
                       result.heldOut[1].pearson, accuracy: 1e-9)

        let png = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/out/comparison.png"))
        func bigEndian(_ at: Int) -> Int { png[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
        XCTAssertEqual([bigEndian(16), bigEndian(20)], [3 * 64 + 2 * 4, 2 * 64 + 4], "width and height in the PNG header")

        let metrics = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/out/metrics.json"))) as? [String: Any])
        let heldOut = try XCTUnwrap(metrics["held_out"] as? [[String: Any]])
        XCTAssertEqual(heldOut.compactMap { $0["signal"] as? String }, result.heldOut.map(\.signal))
        for (entry, h) in zip(heldOut, result.heldOut) {
            XCTAssertEqual(try XCTUnwrap(entry["pearson"] as? Double), h.pearson, accuracy: 1e-12)
            XCTAssertEqual(try XCTUnwrap(entry["brightfield_pearson"] as? Double), h.brightfieldPearson, accuracy: 1e-12)
        }
        XCTAssertEqual(try XCTUnwrap(metrics["mean_pearson"] as? Double), result.meanPearson, accuracy: 1e-12)
        XCTAssertEqual(metrics["steps"] as? Int, 3)
        let checkpoint = try Checkpoint.load(directory: "\(dir)/out/checkpoint")
        XCTAssertEqual(checkpoint.metadata.step, 3)
        XCTAssertEqual(try checkpoint.metadata.unet().firstFilters, 16)
        XCTAssertEqual(try checkpoint.metadata.unet().depth, 2)
        XCTAssertEqual(metrics["shape"] as? [Int], [64, 64])
    }

    func testDemoRefusesShapesThePatchesDoNotFit() {
        var demo = LabelFreeDemo()
        demo.shape = [16, 48, 128]
        XCTAssertThrowsError(try demo.validate()) {
            XCTAssertEqual("\($0)", "demo labelfree: invalid argument: shape [16, 48, 128] is smaller than the training patch [16, 64, 64]")
        }
        demo.shape = [64, 64]
        demo.filters = 0
        XCTAssertThrowsError(try demo.validate()) {
            XCTAssertEqual("\($0)", "demo labelfree: invalid argument: filters 0 must be from 1 to 1024")
        }
        demo.filters = 32
        demo.pairs = 1
        XCTAssertThrowsError(try demo.validate()) {
            XCTAssertEqual("\($0)", "demo labelfree: invalid argument: pairs 1 must be at least 2 (one to train on, one held out)")
        }
    }
}
