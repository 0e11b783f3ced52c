import Foundation
import LucidAutograd
import LucidCore
import LucidNN

/// Applies a fully convolutional network to images of any size through overlapping tiles,
/// blended smoothly (see `TileAxis`), optionally with test-time augmentation.
///
/// The model maps a batch `[B, C, spatial…]` to `[B, C′, spatial…]` with the same spatial
/// extents (multiples of `sizeMultiple`). Tiles of several samples are batched together.
/// ```swift
/// let predictor = TiledPredictor(model: TiledPredictor.model(net), spatialRank: 2,
///                                sizeMultiple: net.sizeMultiple, receptiveRadius: net.architecture.receptiveRadius)
/// let y = try predictor.predict(x)      // x [N, C, H, W] of any H, W → [N, C′, H, W]
/// ```
public struct TiledPredictor {
    /// A network on a batch `[B, C, spatial…]`.
    public typealias Model = (Tensor) throws -> Tensor

    public var model: Model
    /// Spatial axes of the model: 2 or 3.
    public var spatialRank: Int
    /// Tile extents and overlaps are rounded up to multiples of this.
    public var sizeMultiple: Int
    /// The model's receptive-field radius (`ModelConfig.receptiveRadius`): each tile ignores up
    /// to this many pixels at borders shared with another tile.
    public var receptiveRadius: Int
    /// Largest tile extent per spatial axis (one value applies to every axis).
    public var tile: [Int]
    /// Smallest overlap of neighbouring tiles per spatial axis (one value applies to every axis);
    /// nil: `defaultOverlap`, but at most half the tile.
    public var overlap: [Int]?
    /// Tiles per model call; nil picks about 2¹⁸ pixels per call (at most 32 tiles).
    public var batchSize: Int?
    /// Averages the 8 flips/rotations in XY (only the 4 flips when tiles are not square).
    public var testTimeAugmentation: Bool
    /// Called before the first model call with (0, tiles in all), then after each with (tiles
    /// done, tiles in all).
    public var progress: ((Int, Int) -> Void)?
    /// Processes that share the tiles of each image (nil: this process predicts them all):
    /// batch `k` of tiles runs on process `k % size`, and the blended tiles are summed onto
    /// process 0, whose result alone is the prediction.
    public var group: (any ProcessGroup)?

    /// A predictor with tiles of at most `tile` pixels (default 1024 in 2D; 64 in Z and 256 in
    /// YX in 3D) and an overlap that defaults to twice the receptive radius plus a 16-pixel
    /// blending ramp (at most half the tile).
    public init(model: @escaping Model, spatialRank: Int, sizeMultiple: Int, receptiveRadius: Int,
                tile: [Int]? = nil, overlap: [Int]? = nil, batchSize: Int? = nil,
                testTimeAugmentation: Bool = false) {
        self.model = model
        self.spatialRank = spatialRank
        self.sizeMultiple = sizeMultiple
        self.receptiveRadius = receptiveRadius
        self.tile = tile ?? (spatialRank == 2 ? [1024] : [64, 256, 256])
        self.overlap = overlap
        self.batchSize = batchSize
        self.testTimeAugmentation = testTimeAugmentation
    }

    /// Overlap giving exact tiles: the receptive radius on both sides plus a 16-pixel ramp.
    public static func defaultOverlap(receptiveRadius: Int) -> Int { 2 * receptiveRadius + 16 }

    /// Pixels each tile ignores at a border shared with another tile: the receptive radius when
    /// the overlap holds it on both sides (tiles are then exact, and the rest of the overlap
    /// blends them), else a quarter of the overlap (the outer quarters are dropped and the middle
    /// half blends smoothly).
    public static func margin(overlap: Int, receptiveRadius: Int) -> Int {
        overlap >= 2 * receptiveRadius + 2 ? receptiveRadius : overlap / 4
    }

    /// `net` as a model: evaluation mode, no gradient recording.
    public static func model(_ net: any ImageModel) -> Model {
        net.setTraining(false)
        return { x in try noGrad { try net(Variable(x)).value } }
    }

    /// The tile layout of each spatial axis for an image of spatial `shape`.
    public func layout(spatialShape shape: [Int]) throws -> [TileAxis] {
        func perAxis(_ v: [Int], _ name: String) throws -> [Int] {
            if v.count == 1 { return Array(repeating: v[0], count: spatialRank) }
            guard v.count == spatialRank else {
                throw TensorError.invalidArgument(op: "TiledPredictor", detail: "\(name) \(v) needs 1 or \(spatialRank) values")
            }
            return v
        }
        let tiles = try perAxis(tile, "tile")
        let overlaps = try overlap.map { try perAxis($0, "overlap") }
            ?? tiles.map { min(TiledPredictor.defaultOverlap(receptiveRadius: receptiveRadius), $0 / 2) }
        return try (0..<spatialRank).map { a in
            try TileAxis(extent: shape[a], tile: tiles[a], overlap: overlaps[a], multiple: sizeMultiple,
                         margin: TiledPredictor.margin(overlap: overlaps[a], receptiveRadius: receptiveRadius))
        }
    }

    /// Predicts every sample of `x` `[N, C, spatial…]` (any spatial extents); returns `[N, C′, spatial…]`.
    public func predict(_ x: Tensor) throws -> Tensor {
        guard spatialRank == 2 || spatialRank == 3, x.rank == spatialRank + 2, x.count > 0 else {
            throw TensorError.invalidArgument(op: "TiledPredictor.predict",
                detail: "input \(x.shape) must be [N, C, \(spatialRank == 3 ? "Z, " : "")Y, X] with positive extents")
        }
        let (n, c) = (x.shape[0], x.shape[1])
        let spatial = Array(x.shape.dropFirst(2))
        let axes = try layout(spatialShape: spatial)
        let tileShape = axes.map(\.tile)
        let tilePixels = tileShape.reduce(1, *)
        let grid = axes.map { $0.starts.count }
        let tilesPerSample = grid.reduce(1, *)
        let total = n * tilesPerSample
        let batch = max(1, batchSize ?? min(32, max(1, (1 << 18) / tilePixels)))
        // Per axis and tile: source indices and (position, pixel, weight) contributions.
        let sources = axes.map { a in (0..<a.starts.count).map { a.sourceIndices(tile: $0) } }
        let contributions = axes.map { a in (0..<a.starts.count).map { a.contributions(tile: $0) } }
        let augmentations = testTimeAugmentation ? Dihedral.group(square: tileShape[spatialRank - 2] == tileShape[spatialRank - 1]) : [Dihedral.identity]

        var output: Tensor? = nil
        let samplePixels = spatial.reduce(1, *)
        var done = 0
        progress?(0, total)
        var batchIndex = -1
        while done < total {
            let items = Array(done..<min(total, done + batch))
            batchIndex += 1
            if let group, batchIndex % group.size != group.rank {
                done += items.count
                continue
            }
            // Gather the tiles of this batch.
            var input = Tensor(uninitialized: [items.count, c] + tileShape)
            let dst = input.storage.base
            let src = x.storage.base
            let tileIndex = items.map { TiledPredictor.unflatten($0 % tilesPerSample, grid) }
            Threads.parallelFor(items.count * c) { job in
                let b = job / c, ch = job % c, item = items[b]
                let sample = item / tilesPerSample
                let k = tileIndex[b]
                let from = src + (sample * c + ch) * samplePixels
                let to = dst + (b * c + ch) * tilePixels
                TiledPredictor.gather(from: from, spatial: spatial, into: to, tileShape: tileShape,
                                      indices: (0..<spatialRank).map { sources[$0][k[$0]] })
            }
            input.makeUnique()
            var y = try augmented(input, augmentations)
            guard y.rank == input.rank, y.shape[0] == items.count, Array(y.shape.dropFirst(2)) == tileShape else {
                throw TensorError.shapeMismatch(op: "TiledPredictor.predict",
                    detail: "model maps tiles \(input.shape) to \(y.shape); it must keep the batch and spatial extents")
            }
            let cOut = y.shape[1]
            if output == nil { output = Tensor(zeros: [n, cOut] + spatial) }
            guard output!.shape[1] == cOut else {
                throw TensorError.shapeMismatch(op: "TiledPredictor.predict", detail: "model output channels changed to \(cOut) from \(output!.shape[1])")
            }
            y.makeUnique()
            let out = output!.storage.base, ys = y.storage.base
            // Scatter: tiles of one batch may overlap, so rows of the output are split per tile.
            for (b, item) in items.enumerated() {
                let sample = item / tilesPerSample, k = tileIndex[b]
                let parts = (0..<spatialRank).map { contributions[$0][k[$0]] }
                let rows = TiledPredictor.rows(parts, tileShape: tileShape, spatial: spatial)
                guard let xs = parts[spatialRank - 1].first else { continue }
                let x0 = xs.position, p0 = xs.pixel, width = parts[spatialRank - 1].count
                let wx = parts[spatialRank - 1].map(\.weight)
                let tw = tileShape[spatialRank - 1], w = spatial[spatialRank - 1]
                wx.withUnsafeBufferPointer { wxp in
                    Threads.parallelChunks(cOut * rows.count, minChunk: 8) { range in
                        for job in range {
                            let ch = job / rows.count, (tr, or, wr) = rows[job % rows.count]
                            let s = ys + (b * cOut + ch) * tilePixels + tr * tw + x0
                            let d = out + (sample * cOut + ch) * samplePixels + or * w + p0
                            for i in 0..<width { d[i] += wr * wxp[i] * s[i] }
                        }
                    }
                }
            }
            done += items.count
            progress?(done, total)
        }
        if let group {
            // Process 0 always has batch 0, so it knows the output's channels.
            let channels = Int(try group.broadcast([Double(output?.shape[1] ?? 0)], from: 0)[0])
            var sum = output ?? Tensor(zeros: [n, channels] + spatial)
            try group.sumTensor(&sum, onto: 0)
            return sum
        }
        return output!
    }

    /// Mean of `g⁻¹(model(g(x)))` over `augmentations`.
    func augmented(_ x: Tensor, _ augmentations: [Dihedral]) throws -> Tensor {
        if augmentations.count == 1 && augmentations[0] == .identity { return try model(x) }
        var sum: Tensor? = nil
        for g in augmentations {
            let y = try g.inverse(model(g.apply(x)))
            if sum == nil { sum = y.copy(); continue }
            guard y.shape == sum!.shape else {
                throw TensorError.shapeMismatch(op: "TiledPredictor.predict", detail: "augmented outputs \(y.shape) vs \(sum!.shape)")
            }
            let s = sum!.storage.base, v = y.storage.base
            Threads.parallelChunks(y.count, minChunk: 1 << 15) { r in for i in r { s[i] += v[i] } }
        }
        let s = sum!.storage.base, scale = 1 / Float(augmentations.count)
        Threads.parallelChunks(sum!.count, minChunk: 1 << 15) { r in for i in r { s[i] *= scale } }
        return sum!
    }

    /// Multi-index of tile `flat` in a grid (last axis fastest).
    static func unflatten(_ flat: Int, _ grid: [Int]) -> [Int] {
        var rem = flat
        var out = [Int](repeating: 0, count: grid.count)
        for a in stride(from: grid.count - 1, through: 0, by: -1) { out[a] = rem % grid[a]; rem /= grid[a] }
        return out
    }

    /// Copies one channel of a tile: `to[t…] = from[indices[0][t0], indices[1][t1], …]`.
    static func gather(from: UnsafeMutablePointer<Float>, spatial: [Int], into to: UnsafeMutablePointer<Float>,
                       tileShape: [Int], indices: [[Int]]) {
        let w = spatial[spatial.count - 1], tw = tileShape[tileShape.count - 1]
        let ix = indices[indices.count - 1]
        let contiguous = zip(ix, ix.dropFirst()).allSatisfy { $1 == $0 + 1 }
        let outer: [(Int, Int)]    // (tile row, source row) pairs
        if spatial.count == 2 {
            outer = indices[0].enumerated().map { ($0.offset, $0.element) }
        } else {
            let h = spatial[1], th = tileShape[1]
            outer = indices[0].enumerated().flatMap { z in
                indices[1].enumerated().map { y in (z.offset * th + y.offset, z.element * h + y.element) }
            }
        }
        ix.withUnsafeBufferPointer { ixp in
            for (tr, sr) in outer {
                let s = from + sr * w, d = to + tr * tw
                if contiguous {
                    d.update(from: s + ixp[0], count: tw)
                } else {
                    for t in 0..<tw { d[t] = s[ixp[t]] }
                }
            }
        }
    }

    /// The (tile row, output row, row weight) of every row of a tile that contributes.
    static func rows(_ parts: [[(position: Int, pixel: Int, weight: Float)]], tileShape: [Int],
                     spatial: [Int]) -> [(Int, Int, Float)] {
        if spatial.count == 2 { return parts[0].map { ($0.position, $0.pixel, $0.weight) } }
        let h = spatial[1], th = tileShape[1]
        return parts[0].flatMap { z in
            parts[1].map { y in (z.position * th + y.position, z.pixel * h + y.pixel, z.weight * y.weight) }
        }
    }
}
