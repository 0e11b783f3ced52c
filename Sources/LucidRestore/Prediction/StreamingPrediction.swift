import Foundation
import LucidCore
import LucidImaging

/// Restores an OME-Zarr image that need not fit in memory into an OME-Zarr output, one slab at
/// a time: a slab is a run of whole output chunks along the slab axis (Z when the image has
/// one, else Y) of one time point, read with the halo the network needs around it.
///
/// - A 2-D network on a stack gets whole planes: slabs need no halo and equal in-memory prediction.
/// - Along an axis the network convolves (Z for a 3-D network, Y for a 2-D one on a single
///   plane) each slab is read `receptiveRadius` pixels further on both sides, rounded out to
///   the network's size multiple on the grid of the whole image's padded frame (reflected at
///   its borders as `TileAxis` does). The kept core therefore equals whole-image prediction.
/// - Percentile and per-image normalizations are fitted once, to the whole image when it has
///   at most `sampleBudget` values, else to evenly spaced planes holding about that many.
/// - Output chunks of a slab are written as soon as it is predicted; the output appears at its
///   path (replacing an earlier OME-Zarr) only when every slab is done.
///
/// Memory is bounded by a few copies of one slab with its halo, whatever the image's size.
public struct StreamingPrediction {
    /// The restorer (its network, normalization, tiles).
    public var restorer: ImagePredictor
    /// Values read to fit a percentile or per-image normalization (default 2²⁴).
    public var sampleBudget: Int = 1 << 24
    /// Largest slab (input values with the halo) aimed for; a slab is never less than one
    /// chunk row and its halo (default 2²⁴ values, 64 MB of float32).
    public var slabBudget: Int = 1 << 24
    /// Called with (slab done, slabs in all, first and last plane of the slab's core).
    public var progress: ((Int, Int, Int, Int) -> Void)?

    public init(restorer: ImagePredictor) {
        self.restorer = restorer
    }

    /// What a run did.
    public struct Summary: Sendable {
        /// Slabs predicted (over all time points).
        public var slabs: Int
        /// The normalization applied to every slab.
        public var normalization: LucidImaging.Normalization
        /// Values the normalization was fitted to (0 when it needs no fit).
        public var sampledValues: Int
        /// Axes and shape of the output.
        public var axes: String
        public var shape: [Int]
    }

    /// Restores the full-resolution level of the OME-Zarr image `input` into a new OME-Zarr
    /// image at `output` (pixel type `type`).
    @discardableResult
    public func run(input: String, output: String, as type: PixelType = .float32) throws -> Summary {
        let source = try OMEZarr.open(input)
        let array = try source.array()
        let axes = source.lucidAxes
        let letters = Array(axes)
        let shape = array.shape
        guard shape.allSatisfy({ $0 > 0 }) else {
            throw PredictionError(path: input, reason: "the image is empty (shape \(shape))")
        }
        let slabAxis = letters.firstIndex(of: "Z") ?? letters.firstIndex(of: "Y")!
        let convolved = restorer.config.spatialRank == 3 || letters[slabAxis] == "Y"
        if letters[slabAxis] == "Y" && restorer.pixelSize != nil {
            throw PredictionError(path: input, reason: "a model trained at data.pixel_size resamples Y and X, so it cannot stream a single plane; convert it to TIFF first")
        }
        let times = letters.firstIndex(of: "T").map { shape[$0] } ?? 1
        let extent = shape[slabAxis]
        let chunk = array.chunks[slabAxis]

        // The frame of the whole image along the slab axis, as tiled prediction lays it out.
        let multiple = convolved ? restorer.predictor.sizeMultiple : 1
        let frame = try TileAxis(extent: extent, tile: extent + multiple, overlap: 0, multiple: multiple, margin: 0)
        let halo = convolved ? restorer.config.receptiveRadius : 0
        let rowValues = shape.enumerated().filter { $0.offset != slabAxis && letters[$0.offset] != "T" }.map(\.element).reduce(1, *)
        let wanted = max(chunk, (slabBudget / max(1, rowValues) - 2 * halo) / chunk * chunk)
        let core = min(max(chunk, wanted, (2 * halo + chunk - 1) / chunk * chunk), (extent + chunk - 1) / chunk * chunk)
        let coresPerTime = (extent + core - 1) / core
        // Every slab has the same length (shifted inwards at the frame's ends), so each slab's
        // buffers have the sizes of the one before and are reused rather than allocated anew.
        // A window of core + 2·halo + multiple − 1 rows, on the grid, holds the core with its halo
        // wherever the grid puts its start.
        let window = convolved ? min(frame.frame, (core + 2 * halo + 2 * multiple - 2) / multiple * multiple) : core

        var restorer = self.restorer
        let (fitted, sampled) = try normalization(array, letters: letters, slabAxis: slabAxis, times: times)
        restorer.fittedNormalization = fitted

        var writer: OMEZarrWriter?
        var outputAxes = "", outputShape: [Int] = []
        defer { if let writer { writer.discard() } }
        var done = 0
        for t in 0..<times {
            for k in 0..<coresPerTime {
                let c0 = k * core, c1 = min(extent, c0 + core)
                // The slab in frame coordinates: `window` rows on the size-multiple grid starting
                // at least `halo` before the core (or at the frame's start), ending at least `halo`
                // after it (or at the frame's end). Without a halo it is the core itself.
                let lo = convolved ? min(max(0, (c0 + frame.padBefore - halo) / multiple * multiple), frame.frame - window) : c0
                let hi = convolved ? lo + window : c1
                let rows = (lo..<hi).map { frame.source($0) }
                let slab = try read(array, letters: letters, t: t, slabAxis: slabAxis, rows: rows)
                let image = Image(data: slab, axes: axes, pixelSize: source.pixelSize, zSpacing: source.zSpacing,
                                  sourceType: array.dataType.pixelType)
                let predicted: Image
                do { predicted = try restorer.predict(image) } catch {
                    throw PredictionError(path: input, reason: "\(error)")
                }
                let outLetters = Array(predicted.axes)
                let outSlab = outLetters.firstIndex(of: letters[slabAxis])!
                let keep = (c0 + frame.padBefore - lo)..<(c1 + frame.padBefore - lo)
                let kept = try predicted.data.slice(axis: outSlab, range: keep)
                if writer == nil {
                    outputAxes = predicted.axes
                    outputShape = predicted.data.shape
                    outputShape[outSlab] = extent
                    if let ti = outLetters.firstIndex(of: "T") { outputShape[ti] = times }
                    let chunks = outLetters.enumerated().map { i, a -> Int in
                        if let j = letters.firstIndex(of: a), a != "C" { return array.chunks[j] }
                        return 1
                    }
                    writer = try OMEZarrWriter(path: output, axes: outputAxes, shape: outputShape, pixelSize: source.pixelSize,
                                               zSpacing: source.zSpacing, type: type, chunks: chunks, compressor: array.compressor == .none ? .none : .defaultBlosc,
                                               name: source.name)
                }
                var origin = [Int](repeating: 0, count: outputShape.count)
                origin[outSlab] = c0
                if let ti = outLetters.firstIndex(of: "T") { origin[ti] = t }
                try writer!.arrays[0].write(origin: origin, kept)
                done += 1
                progress?(done, times * coresPerTime, c0, c1 - 1)
            }
        }
        try writer!.commit()
        writer = nil
        return Summary(slabs: done, normalization: fitted, sampledValues: sampled, axes: outputAxes, shape: outputShape)
    }

    /// The rows `rows` (image indices along the slab axis, in order, repeats allowed) of time
    /// point `t`, all other axes whole; the T axis is kept with extent 1.
    func read(_ array: ZarrArray, letters: [Character], t: Int, slabAxis: Int, rows: [Int]) throws -> Tensor {
        let (first, last) = (rows.min()!, rows.max()!)
        var origin = [Int](repeating: 0, count: letters.count), size = array.shape
        origin[slabAxis] = first
        size[slabAxis] = last - first + 1
        if let ti = letters.firstIndex(of: "T") { origin[ti] = t; size[ti] = 1 }
        let block = try array.read(origin: origin, size: size)
        if rows == Array(first...last) { return block }
        // Reflected rows at the image's borders.
        return try Tensor.concat(rows.map { try block.slice(axis: slabAxis, range: ($0 - first)..<($0 - first + 1)) }, axis: slabAxis)
    }

    /// The normalization for the whole image: fitted to all of it when it has at most
    /// `sampleBudget` values, else to evenly spaced planes along the slab axis (over all time
    /// points) holding about that many; the restorer's signal channels only. Also returns the
    /// number of values fitted to.
    func normalization(_ array: ZarrArray, letters: [Character], slabAxis: Int,
                       times: Int) throws -> (LucidImaging.Normalization, Int) {
        let n = restorer.normalization
        guard n.perImage || n.method == .percentile else { return (n, 0) }
        let extent = array.shape[slabAxis]
        let planeValues = array.shape.enumerated().filter { $0.offset != slabAxis && letters[$0.offset] != "T" }.map(\.element).reduce(1, *)
        let planes = times * extent
        let count = min(planes, max(1, sampleBudget / max(1, planeValues)))
        var parts: [Tensor] = []
        for i in 0..<count {
            let p = count == planes ? i : Int((Double(i) + 0.5) * Double(planes) / Double(count))
            var plane = try read(array, letters: letters, t: p / extent, slabAxis: slabAxis, rows: [p % extent])
            if let channels = restorer.signalChannels, let ci = letters.firstIndex(of: "C"),
               channels.allSatisfy({ $0 < plane.shape[ci] }) {   // else `predict` names the missing channel
                plane = try Tensor.concat(channels.map { try plane.slice(axis: ci, range: $0..<($0 + 1)) }, axis: ci)
            }
            parts.append(try plane.reshaped([plane.count]))
        }
        let sample = try Tensor.concat(parts, axis: 0)
        return (try n.fitted(to: sample), sample.count)
    }
}
