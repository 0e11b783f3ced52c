import Foundation
import LucidCore
import LucidImaging
import LucidNN
@testable import LucidRestore
import XCTest

/// `lucid predict` / `lucid evaluate` behaviour at the library level: outputs, JSON, bad input.
final class PredictionRunTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "lucid-predict-tests-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    func path(_ name: String) -> String { folder + "/" + name }

    func files() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted() }

    func restorer() throws -> ImagePredictor {
        ImagePredictor(net: try PredictionTests.tinyNet(dims: 2), normalization: .percentile(), tile: 32, overlap: 16)
    }

    func testPredictsSeveralFilesIntoAFolderKeepingMetadata() throws {
        let a = Image(data: PredictionTests.random([20, 30], seed: 1), axes: "YX", pixelSize: 0.2, sourceType: .uint16)
        try a.write(to: path("a.tif"))
        try Image(data: PredictionTests.random([3, 17, 40], seed: 2), axes: "ZYX", pixelSize: 0.3, zSpacing: 1.5).write(to: path("b.tif"))
        var lines: [String] = []
        let written = try PredictionRun.run(restorer: restorer(), inputs: [path("*.tif")], output: path("out"), as: .float32) { lines.append($0) }
        XCTAssertEqual(written, [path("out/a.tif"), path("out/b.tif")])
        let b = try Image.read(path("out/b.tif"))
        XCTAssertEqual(b.axes, "ZYX")
        XCTAssertEqual(b.data.shape, [3, 17, 40])
        XCTAssertEqual(b.zSpacing ?? 0, 1.5, accuracy: 1e-6)
        XCTAssertEqual(b.pixelSize ?? 0, 0.3, accuracy: 1e-6)
        XCTAssertEqual(b.sourceType, .float32)
        XCTAssertTrue(lines.contains { $0.contains("[2/2] b.tif") })
        // uint16 output, one input, -o a file; default output goes next to the input.
        _ = try PredictionRun.run(restorer: restorer(), inputs: [path("a.tif")], output: path("a16.tif"), as: .uint16)
        XCTAssertEqual(try Image.read(path("a16.tif")).sourceType, .uint16)
        XCTAssertEqual(try PredictionRun.run(restorer: restorer(), inputs: [path("a.tif")], output: nil), [path("a.restored.tif")])
    }

    func testNeverOverwritesAnInput() throws {
        try Image(data: Tensor(zeros: [8, 8]), axes: "YX").write(to: path("a.tif"))
        XCTAssertThrowsError(try PredictionRun.run(restorer: restorer(), inputs: [path("a.tif")], output: path("a.tif"))) { e in
            XCTAssertEqual("\(e)", "'\(path("a.tif"))': is an input; refusing to overwrite it (choose another -o)")
        }
        XCTAssertThrowsError(try PredictionRun.run(restorer: restorer(), inputs: [path("a.tif")], output: folder)) { e in
            XCTAssertTrue("\(e)".contains("is an input"), "\(e)")
        }
        XCTAssertEqual(files(), ["a.tif"])
    }

    func testCorruptTIFFNamesTheFileAndWritesNothing() throws {
        try Data("II*\0garbage that is not a TIFF".utf8).write(to: URL(fileURLWithPath: path("bad.tif")))
        XCTAssertThrowsError(try PredictionRun.run(restorer: restorer(), inputs: [path("bad.tif")], output: path("out.tif"))) { e in
            let message = "\(e)"
            XCTAssertEqual(message.split(separator: "\n").count, 1)
            XCTAssertTrue(message.contains(path("bad.tif")), message)
        }
        XCTAssertEqual(files(), ["bad.tif"])
    }

    func testUnwritableOutputFolderFailsBeforeAnyWork() throws {
        try Image(data: Tensor(zeros: [8, 8]), axes: "YX").write(to: path("a.tif"))
        try Image(data: Tensor(zeros: [8, 8]), axes: "YX").write(to: path("b.tif"))
        try Data("x".utf8).write(to: URL(fileURLWithPath: path("file")))
        XCTAssertThrowsError(try PredictionRun.run(restorer: restorer(), inputs: [path("a.tif"), path("b.tif")], output: path("file"))) { e in
            XCTAssertEqual("\(e)", "'\(path("file"))': is a file, not a folder")
        }
        XCTAssertThrowsError(try PredictionRun.run(restorer: restorer(), inputs: [path("a.tif")], output: path("file/sub/out.tif"))) { e in
            XCTAssertTrue("\(e)".hasPrefix("'\(path("file/sub"))': cannot create the output folder"), "\(e)")
        }
        XCTAssertEqual(files(), ["a.tif", "b.tif", "file"])
    }

    func testMissingCheckpointNamesTheFolder() throws {
        XCTAssertThrowsError(try ImagePredictor(checkpoint: Checkpoint.load(directory: path("nothing")))) { e in
            XCTAssertEqual("\(e)".split(separator: "\n").count, 1)
            XCTAssertTrue("\(e)".contains(path("nothing")), "\(e)")
        }
        try FileManager.default.createDirectory(atPath: path("empty"), withIntermediateDirectories: true)
        XCTAssertThrowsError(try Checkpoint.load(directory: path("empty"))) { e in
            XCTAssertTrue("\(e)".contains("lucid.json"), "\(e)")
        }
    }

    func testCheckpointRestorerMatchesItsNetworkAndNormalization() throws {
        let net = try PredictionTests.tinyNet(dims: 2, seed: 11)
        let norm = LucidImaging.Normalization(method: .meanStd, offset: 100, scale: 20)
        let metadata = CheckpointMetadata(
            method: "noise2self", recipe: try Recipe.parse(yaml: "method: noise2self\ndata: {train: a.tif}\n").json(), model: net.config, normalization: norm, targetNormalization: nil,
            axes: "YX", spatialRank: 2, step: 1, bestValidationLoss: nil, bestStep: nil, dataFiles: [],
            training: TrainingState(seed: 0, learningRate: 1e-3, plateau: nil, validationsWithoutImprovement: 0, elapsedSeconds: 0))
        try Checkpoint.save(to: path("ckpt"), metadata: metadata, last: net.stateDict(), best: nil,
                            optimizer: OptimizerState(step: 1, tensors: [:]))
        let image = Image(data: LucidImaging.Normalization(method: .meanStd, offset: 90, scale: 30)
            .invert(PredictionTests.random([3, 26, 35], seed: 12)), axes: "ZYX")
        let fromCheckpoint = try ImagePredictor(checkpoint: Checkpoint.load(directory: path("ckpt")), weights: .last)
        let direct = ImagePredictor(net: net, normalization: norm)
        XCTAssertLessThan(PredictionTests.maxDifference(try fromCheckpoint.predict(image).data, try direct.predict(image).data), 1e-5)
        // With test-time augmentation the result stays close (the net is not equivariant).
        let tta = try ImagePredictor(checkpoint: Checkpoint.load(directory: path("ckpt")), testTimeAugmentation: true)
        let d = PredictionTests.maxDifference(try tta.predict(image).data, try direct.predict(image).data)
        XCTAssertTrue(d.isFinite && d > 0, "\(d)")
    }
}
