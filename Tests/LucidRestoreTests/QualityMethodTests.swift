import Foundation
import LucidAutograd
import LucidCore
import LucidImaging
import LucidNN
import LucidTestSupport
import XCTest
@testable import LucidRestore

/// Zero-shot training, checkpoint ensembles and the variance-stabilizing transform, end to end
/// on small TIFFs.
final class QualityMethodTests: XCTestCase {
    /// A Poisson-like noisy specimen (`gain · photons + offset`) written as float32 TIFF; returns the clean image.
    @discardableResult
    private func writeNoisy(_ path: String, shape: [Int] = [64, 64], seed: UInt64, gain: Float = 1, offset: Float = 0) throws -> Tensor {
        let clean = try SyntheticSpecimen(shape: shape, seed: seed).render()
        var rng = RandomGenerator(seed: seed &+ 100)
        let noisy = clean.map { c in
            let photons = 20 * c + 1
            return offset + gain * (photons + photons.squareRoot() * rng.normal())
        }
        try Image(data: noisy, axes: "YX").write(to: path)
        return clean
    }

    private func train(_ yaml: String) throws -> TrainingSummary {
        let trainer = Trainer(recipe: try Recipe.parse(yaml: yaml, file: "test.yaml"))
        trainer.showProgress = false
        return try trainer.run()
    }

    func testZeroShotHalvesAndTraining() throws {
        // The two halves are the means of each 2×2 block's diagonals.
        let x = try Tensor(shape: [1, 1, 2, 4], scalars: [1, 2, 3, 4, 5, 6, 7, 8])
        let (a, b) = try ZeroShot.halves(Variable(x))
        XCTAssertEqual(a.value.shape, [1, 1, 1, 2])
        XCTAssertEqual(a.value.scalars, [(1 + 6) / 2, (3 + 8) / 2])
        XCTAssertEqual(b.value.scalars, [(2 + 5) / 2, (4 + 7) / 2])
        let z = try ZeroShot.halves(Variable(Tensor(zeros: [2, 3, 4, 6, 8])))
        XCTAssertEqual(z.0.value.shape, [2, 3, 4, 3, 4])

        let dir = try temporaryFolder(self).path
        let clean = try writeNoisy(dir + "/one.tif", seed: 1)
        let recipe = try Recipe.parse(yaml: "method: zeroshot\ndata: {train: \(dir)/one.tif}\n")
        XCTAssertEqual(recipe.training.steps, 1000)
        XCTAssertEqual(recipe.training.batch, 4)
        XCTAssertEqual(recipe.training.schedule.kind, .cosine)
        XCTAssertEqual(recipe.model.unet.depth, 1)
        XCTAssertTrue(recipe.model.unet.residual)
        XCTAssertThrowsError(try Recipe.parse(yaml: "method: zeroshot\ndata: {train: a.tif, patch: [34, 34]}\n")) {
            XCTAssertTrue("\($0)".contains("data.patch"), "\($0)")
        }
        let summary = try train("""
            method: zeroshot
            data: {train: \(dir)/one.tif, patch: [32, 32]}
            model: {filters: 8}
            training: {steps: 60, validate_every: 30}
            output: \(dir)/zs
            """)
        XCTAssertEqual(summary.step, 60)
        XCTAssertLessThan(summary.losses.suffix(10).reduce(0, +), summary.losses.prefix(10).reduce(0, +))
        let restorer = try ImagePredictor(checkpoint: Checkpoint.load(directory: dir + "/zs"))
        let restored = try restorer.predict(try Image.read(dir + "/one.tif")).data
        XCTAssertEqual(restored.shape, [64, 64])
        // Closer to the clean specimen (20 photons a unit, offset 1) than the noisy image is.
        let noisy = try Image.read(dir + "/one.tif").data
        func error(_ t: Tensor) -> Float { zip(t.scalars, clean.scalars).map { ($0 - (20 * $1 + 1)) * ($0 - (20 * $1 + 1)) }.reduce(0, +) }
        XCTAssertLessThan(error(restored), error(noisy))
    }

    func testEnsembleAveragesItsMembers() throws {
        let dir = try temporaryFolder(self).path
        try writeNoisy(dir + "/a.tif", seed: 2)
        for seed in [1, 2] {
            _ = try train("""
                method: noise2self
                data: {train: \(dir)/a.tif, patch: [32, 32]}
                model: {depth: 1, filters: 4}
                training: {steps: 4, batch: 2, seed: \(seed)}
                output: \(dir)/s\(seed)
                """)
        }
        let members = try [1, 2].map { try ImagePredictor(checkpoint: Checkpoint.load(directory: "\(dir)/s\($0)")) }
        let image = try Image.read(dir + "/a.tif")
        let (p1, p2) = (try members[0].predict(image).data, try members[1].predict(image).data)
        XCTAssertGreaterThan(PredictionTests.maxDifference(p1, p2), 1e-3, "two seeds restore differently")
        let mean = try EnsemblePredictor(members).predict(image)
        XCTAssertEqual(mean.axes, "YX")
        XCTAssertLessThan(PredictionTests.maxDifference(mean.data, (try p1 + p2).map { $0 / 2 }), 1e-4)
        // The CLI path: PredictionRun with --ensemble writes the mean.
        let written = try PredictionRun.run(restorer: members[0], ensemble: [members[1]], inputs: [dir + "/a.tif"], output: dir + "/mean.tif")
        XCTAssertLessThan(PredictionTests.maxDifference(try Image.read(written[0]).data, mean.data), 1e-5)
        // Members must restore alike: a 3-D model does not join a 2-D one.
        var config = try XCTUnwrap(members[0].config as? UNetConfig)
        config.dims = 3
        var rng = RandomGenerator(seed: 1)
        let other = ImagePredictor(net: try config.makeModel(rng: &rng), normalization: .percentile())
        XCTAssertThrowsError(try EnsemblePredictor([members[0], other])) { XCTAssertTrue("\($0)".contains("3-D"), "\($0)") }
        XCTAssertThrowsError(try EnsemblePredictor([]))
    }

    /// `data.vst: anscombe`: the camera's gain and offset are fitted and recorded, the network
    /// trains on stabilized data, and prediction returns to the input's intensities.
    func testVarianceStabilizedTrainingAndPrediction() throws {
        let dir = try temporaryFolder(self).path
        try writeNoisy(dir + "/cam.tif", shape: [96, 96], seed: 3, gain: 4, offset: 100)
        let summary = try train("""
            method: noise2self
            data: {train: \(dir)/cam.tif, patch: [32, 32], vst: anscombe}
            model: {depth: 1, filters: 4}
            training: {steps: 4, batch: 2}
            output: \(dir)/vst
            """)
        let model = try XCTUnwrap(summary.noiseModel)
        XCTAssertEqual(model.gain, 4, accuracy: 1.2)
        let ckpt = try Checkpoint.load(directory: dir + "/vst")
        XCTAssertEqual(ckpt.metadata.noiseModel, model)
        // The network sees stabilized data: noise of about unit variance before normalization.
        let data = try TrainingData.load(try Recipe.parse(yaml: "method: noise2self\ndata: {train: \(dir)/cam.tif, vst: anscombe, normalize: none}\n"), seed: 0)
        XCTAssertEqual(data.noiseModel, model)
        // Prediction applies the transform and its unbiased inverse: with a network that returns
        // its input, the restoration is the image again (on average; each pixel up to the
        // inverse's bias for one sample).
        var identity = ImagePredictor(model: { $0 }, config: ckpt.metadata.model, normalization: ckpt.metadata.normalization)
        identity.noiseModel = model
        let image = try Image.read(dir + "/cam.tif")
        let restored = try identity.predict(image).data
        let mean = { (t: Tensor) in Double(t.scalars.reduce(0, +)) / Double(t.count) }
        XCTAssertEqual(mean(restored), mean(image.data), accuracy: 0.02 * mean(image.data))
        identity.noiseModel = nil
        XCTAssertLessThan(PredictionTests.maxDifference(try identity.predict(image).data, image.data), 1e-2)
        XCTAssertThrowsError(try Recipe.parse(yaml: "method: care\ndata: {input: a, target: b, vst: anscombe}\n")) {
            XCTAssertTrue("\($0)".contains("data.vst"), "\($0)")
        }
    }
}
