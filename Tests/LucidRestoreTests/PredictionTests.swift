import Foundation
import LucidAutograd
import LucidCore
import LucidImaging
import LucidNN
@testable import LucidRestore
import XCTest

/// Tiled prediction, test-time augmentation and image-level restoration.
final class PredictionTests: XCTestCase {
    /// A tiny U-Net with a small receptive field (depth 1, one 3×3 convolution a level: radius 7).
    static func tinyNet(dims: Int, seed: UInt64 = 3, channels: Int = 1, probabilistic: Bool = false) throws -> UNet {
        var c = UNetConfig()
        c.dims = dims
        c.depth = 1
        c.firstFilters = 4
        c.convsPerLevel = 1
        c.inChannels = channels
        c.outChannels = channels
        c.probabilistic = probabilistic
        var rng = RandomGenerator(seed: seed)
        return try UNet(c, rng: &rng)
    }

    static func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        var t = Tensor(uninitialized: shape)
        t.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] = rng.uniform() } }
        return t
    }

    static func maxDifference(_ a: Tensor, _ b: Tensor) -> Float {
        XCTAssertEqual(a.shape, b.shape)
        guard a.shape == b.shape else { return .infinity }
        return a.withUnsafeBufferPointer { p in b.withUnsafeBufferPointer { q in
            zip(p, q).reduce(0) { max($0, abs($1.0 - $1.1)) }
        } }
    }

    /// The network on the whole image: reflect-padded to a multiple of its size as `TileAxis`
    /// centres it, one pass, cropped back.
    static func whole(_ net: UNet, _ x: Tensor) throws -> Tensor {
        let m = net.sizeMultiple
        let spatial = Array(x.shape.dropFirst(2))
        let pads = spatial.map { n -> (Int, Int) in
            let p = (n + m - 1) / m * m - n
            return (p / 2, p - p / 2)
        }
        var y = try noGrad { try net(Variable(x.padded(pads, mode: .reflect))).value }
        for (k, pad) in pads.enumerated() {
            y = try y.slice(axis: 2 + k, range: pad.0..<(pad.0 + spatial[k]))
        }
        return y
    }

    func testReceptiveRadiusOfTinyAndCAREConfigs() throws {
        XCTAssertEqual(try Self.tinyNet(dims: 2).config.receptiveRadius, 7)
        XCTAssertEqual(UNetConfig.care2D.receptiveRadius, 29)
    }

    func testTileLayoutCoversTheFrameWithWeightsSummingToOne() throws {
        for (extent, tile, overlap, margin) in [(45, 24, 16, 7), (70, 32, 16, 4), (7, 32, 8, 2), (130, 40, 0, 0), (1, 8, 4, 1)] {
            let a = try TileAxis(extent: extent, tile: tile, overlap: overlap, multiple: 4, margin: margin)
            XCTAssertEqual(a.frame % 4, 0)
            XCTAssertGreaterThanOrEqual(a.frame, extent)
            XCTAssertLessThanOrEqual(a.tile, (tile + 3) / 4 * 4)
            XCTAssertTrue(a.starts.allSatisfy { $0 % 4 == 0 && $0 + a.tile <= a.frame })
            var sum = [Float](repeating: 0, count: a.frame)
            for (k, s) in a.starts.enumerated() { for t in 0..<a.tile { sum[s + t] += a.weights[k][t] } }
            XCTAssertLessThan(sum.map { abs($0 - 1) }.max()!, 1e-6, "extent \(extent) tile \(tile)")
            // Neighbours overlap by at least the (rounded) overlap.
            for (s0, s1) in zip(a.starts, a.starts.dropFirst()) { XCTAssertGreaterThanOrEqual(s0 + a.tile - s1, overlap) }
            // Reflection never repeats the edge and stays inside the image.
            XCTAssertTrue((-20..<(a.frame + 20)).allSatisfy { (0..<extent).contains(a.source($0)) })
        }
        // Default 3-D layout of a deep net: overlaps shrink to half a tile instead of failing.
        let deep = TiledPredictor(model: { $0 }, spatialRank: 3, sizeMultiple: 4, receptiveRadius: UNetConfig.unet3D.receptiveRadius)
        let axes = try deep.layout(spatialShape: [100, 300, 301])
        XCTAssertEqual(axes.map { $0.starts.count }, [3, 2, 2])
        let a = try TileAxis(extent: 5, tile: 8, overlap: 0, multiple: 8, margin: 0)
        XCTAssertEqual((0..<8).map { a.source($0) }, [1, 0, 1, 2, 3, 4, 3, 2])
        XCTAssertThrowsError(try TileAxis(extent: 100, tile: 16, overlap: 16, multiple: 4, margin: 0)) { e in
            XCTAssertTrue("\(e)".contains("overlap 16 must be smaller than the tile 16"), "\(e)")
        }
    }

    func testTiledEqualsWholeImagePrediction2D() throws {
        let net = try Self.tinyNet(dims: 2)
        let model = TiledPredictor.model(net)
        for (shape, tile, overlap, batch) in [([45, 70], 24, 16, nil), ([50, 33], 32, 20, 1), ([64, 64], 20, 18, 3),
                                              ([9, 130], 40, 30, nil), ([3, 5], 16, 16, nil)] as [([Int], Int, Int, Int?)] {
            let x = Self.random([2, 1] + shape, seed: UInt64(shape[0]))
            let p = TiledPredictor(model: model, spatialRank: 2, sizeMultiple: net.sizeMultiple,
                                   receptiveRadius: net.config.receptiveRadius, tile: [tile], overlap: [overlap], batchSize: batch)
            let tiles = try p.layout(spatialShape: shape).map { $0.starts.count }.reduce(1, *)
            let d = Self.maxDifference(try p.predict(x), try Self.whole(net, x))
            XCTAssertLessThan(d, 1e-4, "shape \(shape) tile \(tile) overlap \(overlap): \(tiles) tiles")
        }
    }

    func testTiledEqualsWholeImagePredictionWithTheDefaultOverlapOfADeeperNet() throws {
        // CARE's plan (depth 2, two convolutions a level; receptive radius 29) with few filters.
        var c = UNetConfig.care2D
        c.firstFilters = 4
        var rng = RandomGenerator(seed: 2)
        let net = try UNet(c, rng: &rng)
        let x = Self.random([1, 1, 150, 170], seed: 3)
        var p = TiledPredictor(model: TiledPredictor.model(net), spatialRank: 2, sizeMultiple: net.sizeMultiple,
                               receptiveRadius: c.receptiveRadius, tile: [128])
        XCTAssertEqual(try p.layout(spatialShape: [150, 170]).map { $0.starts.count }, [2, 2])
        let whole = try Self.whole(net, x)
        XCTAssertLessThan(Self.maxDifference(try p.predict(x), whole), 1e-4)
        // The check is sensitive: an overlap far below the receptive field is not exact.
        p.overlap = [8]
        XCTAssertGreaterThan(Self.maxDifference(try p.predict(x), whole), 1e-4)
    }

    func testTiledEqualsWholeImagePrediction3D() throws {
        let net = try Self.tinyNet(dims: 3)
        let x = Self.random([1, 1, 11, 37, 30], seed: 5)
        let p = TiledPredictor(model: TiledPredictor.model(net), spatialRank: 3, sizeMultiple: net.sizeMultiple,
                               receptiveRadius: net.config.receptiveRadius, tile: [20], overlap: [16])
        XCTAssertGreaterThan(try p.layout(spatialShape: [11, 37, 30]).map { $0.starts.count }.reduce(1, *), 4)
        XCTAssertLessThan(Self.maxDifference(try p.predict(x), try Self.whole(net, x)), 1e-4)
    }

    func testSmallOverlapStillBlendsEverywhere() throws {
        // Overlap below twice the receptive radius: not exact, but close, finite and complete.
        let net = try Self.tinyNet(dims: 2)
        let x = Self.random([1, 1, 60, 60], seed: 9)
        let p = TiledPredictor(model: TiledPredictor.model(net), spatialRank: 2, sizeMultiple: 2,
                               receptiveRadius: net.config.receptiveRadius, tile: [24], overlap: [8])
        let d = Self.maxDifference(try p.predict(x), try Self.whole(net, x))
        XCTAssertTrue(d.isFinite)
        XCTAssertLessThan(d, 0.5)
    }

    func testDihedralTransformsAreDistinctAndInvertible() {
        let x = Self.random([2, 3, 4, 5], seed: 1)
        let square = Self.random([1, 1, 6, 6], seed: 2)
        XCTAssertEqual(Dihedral.group(square: false).count, 4)
        let group = Dihedral.group(square: true)
        XCTAssertEqual(group.count, 8)
        var seen: [[Float]] = []
        for g in group {
            XCTAssertEqual(g.inverse(g.apply(x)).scalars, x.scalars)
            let s = g.apply(square).scalars
            XCTAssertFalse(seen.contains(s), "\(g) repeats another transform")
            seen.append(s)
        }
        // Transpose swaps the last two extents; rot90 of [[0, 1], [2, 3]] as transpose + flipY.
        XCTAssertEqual(Dihedral(transpose: true, flipY: false, flipX: false).apply(x).shape, [2, 3, 5, 4])
        let t = try! Tensor(shape: [2, 2], scalars: [0, 1, 2, 3])
        XCTAssertEqual(Dihedral(transpose: true, flipY: true, flipX: false).apply(t).scalars, [1, 3, 0, 2])
    }

    func testTestTimeAugmentationOfAnEquivariantFunctionIsTheFunction() throws {
        // A symmetric 3×3 blur with zero padding commutes with every flip and rotation.
        let kernel = try Tensor(shape: [1, 1, 3, 3], scalars: [1, 2, 1, 2, 4, 2, 1, 2, 1].map { $0 / 16 })
        let blur: TiledPredictor.Model = { x in try conv(x, weight: kernel, padding: [1]) }
        let x = Self.random([1, 1, 36, 36], seed: 4)
        var p = TiledPredictor(model: blur, spatialRank: 2, sizeMultiple: 4, receptiveRadius: 1, tile: [64], overlap: [8])
        let plain = try p.predict(x)
        p.testTimeAugmentation = true
        XCTAssertLessThan(Self.maxDifference(try p.predict(x), plain), 1e-6)
        // A function that is not equivariant (multiplies by the column index) changes under TTA:
        // the average of its 8 conjugates multiplies by the mean of row and column weights.
        let ramp: TiledPredictor.Model = { x in
            var y = x.copy()
            let w = x.shape[3], h = x.shape[2]
            y.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] *= Float(i % w) } }
            _ = h
            return y
        }
        p.model = ramp
        let ones = Tensor(ones: [1, 1, 8, 8])
        let averaged = try p.predict(ones)
        // Conjugates weight pixel (i, j) by j, 7 − j, i or 7 − i, twice each: the mean is 3.5.
        XCTAssertLessThan(averaged.scalars.map { abs($0 - 3.5) }.max()!, 1e-5)
    }

    func testTwoDimensionalModelOnAStackEqualsPerPlane() throws {
        let net = try Self.tinyNet(dims: 2)
        let norm = LucidImaging.Normalization(method: .meanStd, offset: 0.4, scale: 0.25)
        let restorer = ImagePredictor(net: net, normalization: norm, tile: 24, overlap: 16)
        let stack = Image(data: Self.random([3, 30, 41], seed: 8), axes: "ZYX", pixelSize: 0.1, zSpacing: 0.5)
        let out = try restorer.predict(stack)
        XCTAssertEqual(out.axes, "ZYX")
        XCTAssertEqual(out.data.shape, [3, 30, 41])
        XCTAssertEqual(out.pixelSize, 0.1)
        XCTAssertEqual(out.zSpacing, 0.5)
        for z in 0..<3 {
            let plane = Image(data: try stack.data.slice(axis: 0, range: z..<(z + 1)).reshaped([30, 41]), axes: "YX")
            let single = try restorer.predict(plane)
            let expected = norm.invert(try Self.whole(net, norm.apply(plane.data).reshaped([1, 1, 30, 41])).reshaped([30, 41]))
            XCTAssertLessThan(Self.maxDifference(try out.data.slice(axis: 0, range: z..<(z + 1)).reshaped([30, 41]), single.data), 1e-6)
            XCTAssertLessThan(Self.maxDifference(single.data, expected), 1e-4)
        }
    }

    func testPercentileNormalizationIsRefittedAndInverted() throws {
        // An identity network returns the input in its own intensity scale.
        let identity = ImagePredictor(model: { $0 }, config: try Self.tinyNet(dims: 2).config,
                                      normalization: .percentile(), tile: 16, overlap: 8)
        var data = Self.random([2, 20, 24], seed: 6)
        data.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] = 500 + 3000 * p[i] } }
        let image = Image(data: data, axes: "CYX", sourceType: .uint16)
        let out = try identity.predict(image)
        XCTAssertEqual(out.axes, "CYX")
        XCTAssertEqual(out.sourceType, .float32)
        XCTAssertLessThan(Self.maxDifference(out.data, data), 1e-3)
    }

    func testProbabilisticOutputAddsAScaleChannel() throws {
        var config = try Self.tinyNet(dims: 2).config
        config.probabilistic = true
        // Mean = input, log-scale = 0: the scale is 1 in normalized units, i.e. the norm's scale.
        let model: TiledPredictor.Model = { x in try Tensor.concat([x, Tensor(zeros: x.shape)], axis: 1) }
        let norm = LucidImaging.Normalization(method: .meanStd, offset: 10, scale: 4)
        let head = CARE(loss: .laplace, probabilistic: true).predictionHead(config)
        XCTAssertEqual(head.intensityChannels, 1)
        let restorer = ImagePredictor(model: model, config: config, head: head, normalization: norm)
        let data = Self.random([2, 12, 10], seed: 2)
        let out = try restorer.predict(Image(data: data, axes: "ZYX"))
        XCTAssertEqual(out.axes, "CZYX")
        XCTAssertEqual(out.data.shape, [2, 2, 12, 10])
        XCTAssertLessThan(Self.maxDifference(try out.data.slice(axis: 0, range: 0..<1).reshaped([2, 12, 10]), data), 1e-5)
        XCTAssertEqual(Set(try out.data.slice(axis: 0, range: 1..<2).scalars), [4])
    }

    func testBadImagesGiveOneLineErrors() throws {
        let restorer = ImagePredictor(net: try Self.tinyNet(dims: 3), normalization: .none)
        XCTAssertThrowsError(try restorer.predict(Image(data: Tensor(zeros: [8, 8]), axes: "YX"))) { e in
            XCTAssertEqual("\(e)".split(separator: "\n").count, 1)
            XCTAssertTrue("\(e)".contains("a 3-D network needs an image with axes ZYX, got 'YX'"), "\(e)")
        }
        var data = Tensor(zeros: [4, 8, 8])
        data.withUnsafeMutableBufferPointer { $0[17] = .nan }
        XCTAssertThrowsError(try restorer.predict(Image(data: data, axes: "ZYX"))) { e in
            XCTAssertTrue("\(e)".contains("pixel 17 (flat index) is nan"), "\(e)")
        }
        let twoChannel = ImagePredictor(net: try Self.tinyNet(dims: 2, channels: 2), normalization: .none)
        XCTAssertThrowsError(try twoChannel.predict(Image(data: Tensor(zeros: [3, 8, 8]), axes: "CYX"))) { e in
            XCTAssertTrue("\(e)".contains("the network takes 2 channels but the image (axes 'CYX', shape [3, 8, 8]) has 3"), "\(e)")
        }
    }
}
