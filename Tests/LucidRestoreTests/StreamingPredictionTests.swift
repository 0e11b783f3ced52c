import Foundation
import LucidCore
import LucidImaging
import LucidNN
@testable import LucidRestore
import XCTest

/// OME-Zarr prediction slab by slab equals prediction of the whole image in memory.
final class StreamingPredictionTests: XCTestCase {
    private var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "lucid-stream-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// A depth-2 net (size multiple 4, receptive radius 19) in evaluation mode.
    private func net(dims: Int, channels: Int = 1, outChannels: Int = 1, seed: UInt64 = 5) throws -> UNet {
        var c = UNetConfig()
        c.dims = dims
        c.depth = 2
        c.firstFilters = 4
        c.convsPerLevel = 1
        c.inChannels = channels
        c.outChannels = outChannels
        c.norm = .batch
        var rng = RandomGenerator(seed: seed)
        let net = try UNet(c, rng: &rng)
        net.setTraining(false)
        return net
    }

    /// A smooth random image with structure at all scales, in camera-like units.
    private func image(_ shape: [Int], axes: String, seed: UInt64) -> Image {
        let t = PredictionTests.random(shape, seed: seed).map { 100 + 900 * $0 }
        return Image(data: t, axes: axes, pixelSize: 0.2, zSpacing: axes.contains("Z") ? 0.6 : nil, sourceType: .float32)
    }

    private func stream(_ restorer: ImagePredictor, _ input: Image, chunks: [Int], slabBudget: Int = 1 << 24,
                        sampleBudget: Int = 1 << 24) throws -> (Image, StreamingPrediction.Summary, [(Int, Int)]) {
        let inPath = "\(dir!)/in-\(UUID().uuidString).ome.zarr", outPath = "\(dir!)/out-\(UUID().uuidString).ome.zarr"
        try OMEZarr.write(input, to: inPath, chunks: chunks)
        var s = StreamingPrediction(restorer: restorer)
        s.slabBudget = slabBudget
        s.sampleBudget = sampleBudget
        var cores: [(Int, Int)] = []
        s.progress = { _, _, first, last in cores.append((first, last)) }
        let summary = try s.run(input: inPath, output: outPath)
        return (try Image.read(outPath), summary, cores)
    }

    func testTwoDimensionalNetOnAStackStreamsGroupsOfPlanes() throws {
        let restorer = ImagePredictor(net: try net(dims: 2), normalization: .percentile(), tile: 32)
        let input = image([7, 40, 50], axes: "ZYX", seed: 1)
        let (out, summary, cores) = try stream(restorer, input, chunks: [2, 16, 16], slabBudget: 3 * 2000)
        let expected = try restorer.predict(input)
        XCTAssertEqual(out.axes, "ZYX")
        XCTAssertEqual(out.pixelSize, 0.2)
        XCTAssertEqual(out.zSpacing, 0.6)
        XCTAssertEqual(cores.map { $0.0 }, [0, 2, 4, 6], "one chunk row of planes per slab, no halo")
        XCTAssertEqual(summary.sampledValues, 7 * 40 * 50, "a small stack is fitted whole")
        XCTAssertLessThanOrEqual(PredictionTests.maxDifference(out.data, expected.data), 1e-4)
    }

    /// A 3-D net: slabs overlap by the receptive radius on the size-multiple grid of the whole
    /// frame, so the kept cores equal the in-memory prediction (Z = 37 is no multiple of 4: the
    /// frame is reflect-padded, and the first and last slabs reach into the padding).
    func testThreeDimensionalNetStreamsSlabsWithAHalo() throws {
        let restorer = ImagePredictor(net: try net(dims: 3), normalization: .meanStd, tile: 128)
        let input = image([2, 37, 24, 20], axes: "TZYX", seed: 2)
        let (out, summary, cores) = try stream(restorer, input, chunks: [1, 4, 12, 20], slabBudget: 1)
        let expected = try restorer.predict(input)
        XCTAssertEqual(out.axes, "TZYX")
        XCTAssertEqual(cores.count, summary.slabs)
        XCTAssertEqual(summary.slabs, 2 * 1, "cores of 40 planes (≥ 2·19 in whole chunks) cover Z = 37 at once")
        XCTAssertLessThanOrEqual(PredictionTests.maxDifference(out.data, expected.data), 1e-4)
        XCTAssertEqual(summary.sampledValues, 0, "mean/std of the training data needs no fit")
    }

    func testThreeDimensionalNetWithManySlabs() throws {
        // Tiles of 128 hold the default overlap (2·19 + 16), so in-memory prediction is exact too.
        let restorer = ImagePredictor(net: try net(dims: 3, seed: 9), normalization: .percentile(), tile: 128)
        let input = image([101, 16, 12], axes: "ZYX", seed: 3)
        let (out, summary, cores) = try stream(restorer, input, chunks: [20, 16, 12], slabBudget: 1)
        XCTAssertEqual(cores.map { $0.0 }, [0, 40, 80], "cores of two 20-plane chunks")
        XCTAssertEqual(summary.slabs, 3)
        XCTAssertLessThanOrEqual(PredictionTests.maxDifference(out.data, try restorer.predict(input).data), 1e-4)
    }

    /// A 2-D net on one large plane streams bands of rows with the halo.
    func testTwoDimensionalNetOnOnePlaneStreamsBandsOfRows() throws {
        let restorer = ImagePredictor(net: try net(dims: 2, channels: 2, outChannels: 3), normalization: .percentile(), tile: 128)
        let input = image([2, 150, 45], axes: "CYX", seed: 4)
        let (out, summary, _) = try stream(restorer, input, chunks: [1, 16, 45], slabBudget: 2 * 60 * 45)
        let expected = try restorer.predict(input)
        XCTAssertEqual(out.axes, "CYX")
        XCTAssertEqual(out.data.shape, [3, 150, 45])
        XCTAssertGreaterThan(summary.slabs, 2)
        XCTAssertLessThanOrEqual(PredictionTests.maxDifference(out.data, expected.data), 1e-4)
    }

    /// A stack above the sample budget is normalized with percentiles of evenly spaced planes:
    /// close to those of the whole stack, and the same for every slab.
    func testLargeStacksAreNormalizedFromASampleOfPlanes() throws {
        let restorer = ImagePredictor(net: try net(dims: 2), normalization: .percentile(), tile: 64)
        let input = image([40, 32, 32], axes: "ZYX", seed: 6)
        let (out, summary, _) = try stream(restorer, input, chunks: [4, 32, 32], sampleBudget: 8 * 32 * 32)
        XCTAssertEqual(summary.sampledValues, 8 * 32 * 32)
        let whole = try restorer.normalization.fitted(to: input.data)
        XCTAssertEqual(summary.normalization.offset, whole.offset, accuracy: 0.05 * whole.scale)
        XCTAssertEqual(summary.normalization.scale, whole.scale, accuracy: 0.05 * whole.scale)
        var fixed = restorer
        fixed.fittedNormalization = summary.normalization
        XCTAssertLessThanOrEqual(PredictionTests.maxDifference(out.data, try fixed.predict(input).data), 1e-4)
    }

    /// `PredictionRun` streams OME-Zarr to OME-Zarr (default name NAME.restored.ome.zarr), and
    /// converts between TIFF and OME-Zarr in memory otherwise.
    func testPredictionRunStreamsAndConverts() throws {
        let restorer = ImagePredictor(net: try net(dims: 2), normalization: .percentile(), tile: 32)
        let input = image([3, 24, 28], axes: "ZYX", seed: 7)
        try OMEZarr.write(input, to: "\(dir!)/cells.ome.zarr", chunks: [1, 24, 28])
        try input.write(to: "\(dir!)/cells.tif")
        var lines: [String] = []
        let written = try PredictionRun.run(restorer: restorer, inputs: ["\(dir!)/cells.ome.zarr"], output: nil) { lines.append($0) }
        XCTAssertEqual(written, ["\(dir!)/cells.restored.ome.zarr"])
        XCTAssertTrue(lines.contains { $0.contains("slab 1/1 (planes 0–2)") }, "\(lines)")
        let expected = try restorer.predict(input).data
        XCTAssertLessThanOrEqual(PredictionTests.maxDifference(try Image.read(written[0]).data, expected), 1e-4)
        _ = try PredictionRun.run(restorer: restorer, inputs: ["\(dir!)/cells.tif"], output: "\(dir!)/from-tiff.ome.zarr")
        XCTAssertLessThanOrEqual(PredictionTests.maxDifference(try Image.read("\(dir!)/from-tiff.ome.zarr").data, expected), 1e-4)
        _ = try PredictionRun.run(restorer: restorer, inputs: ["\(dir!)/cells.ome.zarr"], output: "\(dir!)/to.tif")
        XCTAssertLessThanOrEqual(PredictionTests.maxDifference(try Image.read("\(dir!)/to.tif").data, expected), 1e-4)
        // Into a folder: NAME.ome.zarr.
        let many = try PredictionRun.run(restorer: restorer, inputs: ["\(dir!)/cells.ome.zarr", "\(dir!)/cells.tif"],
                                         output: "\(dir!)/out/")
        XCTAssertEqual(many, ["\(dir!)/out/cells.ome.zarr", "\(dir!)/out/cells.tif"])
    }

    /// A failing run names the input and leaves neither an output nor temporary folders.
    func testFailureLeavesNoOutput() throws {
        let restorer = ImagePredictor(net: try net(dims: 2, channels: 2), normalization: .percentile())
        let input = image([3, 24, 28], axes: "ZYX", seed: 8)
        try OMEZarr.write(input, to: "\(dir!)/one-channel.ome.zarr")
        XCTAssertThrowsError(try StreamingPrediction(restorer: restorer).run(input: "\(dir!)/one-channel.ome.zarr",
                                                                            output: "\(dir!)/out.ome.zarr")) { e in
            XCTAssertTrue("\(e)".hasPrefix("'\(dir!)/one-channel.ome.zarr': "), "\(e)")
            XCTAssertTrue("\(e)".contains("the network takes 2 channels"), "\(e)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["one-channel.ome.zarr"])
    }
}
