import Foundation
import LucidCore
import LucidImaging
import LucidNN

/// Restores whole microscopy images with a trained network: axes handling, intensity
/// normalization, tiled prediction and the way back to the input's intensity scale.
///
/// - A 2-D network runs on every YX plane of a stack (Z, T and, for one-channel networks, C are
///   looped over); a 3-D network on every ZYX volume.
/// - Percentile and per-image normalizations are measured again on each input image (as
///   CSBDeep and pytorch_fnet do); mean/std normalization uses the statistics stored with the
///   model. The output is mapped back with the same offset and scale, so it is in the input's
///   intensity scale, or (methods that normalize their targets: CARE, Noise2Noise, label-free)
///   in the training targets' units, carried over by the input's own fit (`targetUnits`) — left
///   in normalized units when the targets were normalized each by itself.
/// - A model trained at another pixel size (`pixelSize`) gets each image resampled linearly in
///   Y and X to that size, and its output resampled back to the image's grid.
/// - The method's `PredictionHead` transforms the network's output first: a probabilistic CARE
///   network's output gains a channel axis, the means, then the Laplace scales (`exp` of the
///   predicted log-scale, in intensity units).
/// ```swift
/// let restorer = ImagePredictor(net: net, normalization: .percentile(), tile: 512)
/// let restored = try restorer.predict(try Image.read("noisy.tif"))
/// ```
public struct ImagePredictor {
    /// The tiled network (its model already includes the method's output head).
    public var predictor: TiledPredictor
    /// The network's architecture.
    public let config: any ModelConfig
    /// What runs on the tiles and what its output channels are.
    public let tiles: TilePrediction
    /// Normalization of the network's training data (re-fitted per image in percentile mode).
    public var normalization: LucidImaging.Normalization
    /// Fixed normalization of the training targets (CARE, labelfree) to map outputs back with;
    /// nil maps them back with the input's normalization; a `perImage` one leaves them normalized.
    public var outputNormalization: LucidImaging.Normalization?
    /// Pixel size in µm (Y and X) the network works at; nil uses images at their own size.
    public var pixelSize: Double?
    /// Pixel size in µm assumed for images whose metadata has none.
    public var sourcePixelSize: Double?
    /// Channels to take from each image before anything else (a labelfree model's signal
    /// channels); nil uses every channel.
    public var signalChannels: [Int]?
    /// The variance-stabilizing transform the network was trained in (`data.vst`): applied to
    /// each input first, and undone on the output with its unbiased inverse.
    public var noiseModel: GeneralizedAnscombe?
    /// Intensities of the training targets (labelfree with per-image targets), for `scaleToTarget`.
    public var targetIntensity: LucidImaging.Normalization?
    /// Map outputs left in per-image normalized units (label-free z-scores) to the training
    /// targets' intensities (`lucid predict --scale target`).
    public var scaleToTarget = false
    /// A normalization already fitted to the whole image, used instead of fitting one to each
    /// image `predict` sees (a stack streamed in slabs, whose statistics come from a sample).
    public var fittedNormalization: LucidImaging.Normalization?

    /// A restorer running `tiles` on the tiles of a network of architecture `config`; see
    /// `TiledPredictor` for `tile`, `overlap` and `batchSize` (`nil` picks the defaults).
    public init(tiles: TilePrediction, config: any ModelConfig, normalization: LucidImaging.Normalization,
                tile: Int? = nil, overlap: Int? = nil, batchSize: Int? = nil, testTimeAugmentation: Bool = false) {
        self.config = config
        self.tiles = tiles
        self.normalization = normalization
        outputNormalization = nil
        pixelSize = nil
        sourcePixelSize = nil
        signalChannels = nil
        noiseModel = nil
        targetIntensity = nil
        predictor = TiledPredictor(model: tiles.run, spatialRank: config.spatialRank, sizeMultiple: config.sizeMultiple,
                                   receptiveRadius: config.receptiveRadius, tile: tile.map { [$0] },
                                   overlap: overlap.map { [$0] }, batchSize: batchSize,
                                   testTimeAugmentation: testTimeAugmentation)
    }

    /// A restorer over `model`, a network of architecture `config` whose output `head`
    /// transforms (nil: every channel is an intensity).
    public init(model: @escaping TiledPredictor.Model, config: any ModelConfig, head: PredictionHead? = nil,
                normalization: LucidImaging.Normalization, tile: Int? = nil, overlap: Int? = nil, batchSize: Int? = nil,
                testTimeAugmentation: Bool = false) {
        self.init(tiles: TilePrediction(model: model, config: config, head: head), config: config, normalization: normalization,
                  tile: tile, overlap: overlap, batchSize: batchSize, testTimeAugmentation: testTimeAugmentation)
    }

    /// A restorer running `net` in evaluation mode without gradient recording.
    public init(net: any ImageModel, head: PredictionHead? = nil, normalization: LucidImaging.Normalization,
                tile: Int? = nil, overlap: Int? = nil, batchSize: Int? = nil, testTimeAugmentation: Bool = false) {
        self.init(model: TiledPredictor.model(net), config: net.architecture, head: head, normalization: normalization,
                  tile: tile, overlap: overlap, batchSize: batchSize, testTimeAugmentation: testTimeAugmentation)
    }

    /// A restorer for a trained checkpoint: its network with the chosen weights, run as its
    /// method predicts (`sampling` applies to generative methods), its input normalization,
    /// (CARE, labelfree, diffusion) its target normalization and (labelfree) its pixel size and
    /// signal channels.
    public init(checkpoint: Checkpoint, weights: Checkpoint.Weights = .best, tile: Int? = nil, overlap: Int? = nil,
                batchSize: Int? = nil, testTimeAugmentation: Bool = false, sampling: SamplingOptions = SamplingOptions()) throws {
        let net = try checkpoint.makeModel(weights: weights)
        let tiles = try checkpoint.method().tilePrediction(net, sampling: sampling)
        if testTimeAugmentation && tiles.evaluationsPerTile > 1 {
            throw TensorError.invalidArgument(op: "predict", detail: "test-time augmentation would average the samples of a \(checkpoint.metadata.method) model; draw more samples instead")
        }
        self.init(tiles: tiles, config: net.architecture, normalization: checkpoint.metadata.normalization,
                  tile: tile, overlap: overlap, batchSize: batchSize, testTimeAugmentation: testTimeAugmentation)
        outputNormalization = checkpoint.metadata.targetNormalization
        pixelSize = checkpoint.metadata.pixelSize
        sourcePixelSize = checkpoint.metadata.sourcePixelSize
        signalChannels = checkpoint.metadata.signalChannels
        noiseModel = checkpoint.metadata.noiseModel
        targetIntensity = checkpoint.metadata.targetIntensity
    }

    /// Channels of the output per input sample.
    public var outputChannels: Int { tiles.outputChannels }

    /// Output channels that are intensities (the rest are spreads, in intensity units).
    public var intensityChannels: Int { tiles.intensityChannels }

    /// The restored image split into the parts of `tiles` (`mean`, and for generative methods
    /// `samples` and `std`), each as `predict` would return it alone.
    public func predictParts(_ image: Image) throws -> [String: Image] {
        let whole = try predict(image)
        if tiles.parts.count == 1 { return [tiles.parts[0].name: whole] }
        // With a one-channel network on a multi-channel image, each output channel repeats per input channel.
        let channels = signalChannels?.count ?? image.size("C")
        let repeats = tiles.inputChannels == 1 ? channels : 1
        var out: [String: Image] = [:]
        for part in tiles.parts {
            let range = tiles.channels(of: part.name)!
            out[part.name] = try whole.selectingChannels(Array((range.lowerBound * repeats)..<(range.upperBound * repeats)))
        }
        return out
    }

    /// The restored image: same axes (a `C` axis added when the network gives several
    /// channels per input channel), calibration and shape apart from channels; float pixels.
    /// With `signalChannels` only those channels of the image are used (as if the file held
    /// them alone); an image without one of them is refused.
    public func predict(_ image: Image) throws -> Image {
        try image.validate()
        var image = image
        if let signalChannels {
            let count = image.size("C")
            if let missing = signalChannels.first(where: { $0 >= count }) {
                let list = signalChannels.map(String.init).joined(separator: ";")
                throw TensorError.invalidArgument(op: "predict", detail: """
                    the model was trained on signal channel\(signalChannels.count == 1 ? "" : "s") \(list) (signal_channel \
                    in its manifest), but the image has no channel \(missing): \(count) channel\(count == 1 ? "" : "s"), \
                    axes \(image.axes), shape \(image.data.shape)
                    """)
            }
            image = try image.selectingChannels(signalChannels)
        }
        guard let pixelSize else { return try predictOnGrid(image) }
        guard let source = image.pixelSize ?? sourcePixelSize else {
            throw TensorError.invalidArgument(op: "predict", detail: "the model works at \(pixelSize) µm pixels, but the image has no pixel size in its metadata (set one, or train with data.source_pixel_size)")
        }
        let (height, width) = (image.size("Y"), image.size("X"))
        let resampled = try image.resampledYX(height: Resampling.extent(height, from: source, to: pixelSize),
                                              width: Resampling.extent(width, from: source, to: pixelSize))
        var out = try predictOnGrid(resampled).resampledYX(height: height, width: width)
        out.pixelSize = image.pixelSize
        return out
    }

    /// `predict` on the image's own grid.
    private func predictOnGrid(_ image: Image) throws -> Image {
        let letters = Array(image.axes)
        let spatialLetters: [Character] = config.spatialRank == 3 ? ["Z", "Y", "X"] : ["Y", "X"]
        guard spatialLetters.allSatisfy(letters.contains) else {
            throw TensorError.invalidArgument(op: "predict",
                detail: "a \(config.spatialRank)-D network needs an image with axes \(String(spatialLetters)), got '\(image.axes)'")
        }
        try ImagePredictor.checkFinite(image.data)
        let channels = image.size("C")
        let modelChannels = tiles.inputChannels
        if modelChannels > 1 && channels != modelChannels {
            throw TensorError.shapeMismatch(op: "predict",
                detail: "the network takes \(modelChannels) channels but the image (axes '\(image.axes)', shape \(image.data.shape)) has \(channels)")
        }
        // Internal order: other axes, C (size 1 when absent), spatial axes.
        let others = letters.filter { !spatialLetters.contains($0) && $0 != "C" }
        let order = others + ["C"] + spatialLetters
        var withC = image.data
        var withLetters = letters
        if !letters.contains("C") {
            withC = try withC.reshaped([1] + withC.shape)
            withLetters = ["C"] + letters
        }
        let arranged = try withC.permuted(order.map { withLetters.firstIndex(of: $0)! })
        let otherSizes = others.map { image.size($0) }
        let spatial = spatialLetters.map { image.size($0) }
        let n = otherSizes.reduce(1, *)
        let perSample = modelChannels > 1 ? channels : 1
        let samples = try arranged.reshaped([n * channels / perSample, perSample] + spatial)

        let stabilized = noiseModel.map { $0.forward(samples) } ?? samples
        let refit = normalization.perImage || normalization.method == .percentile
        let fitted = try fittedNormalization ?? (refit ? normalization.fitted(to: stabilized) : normalization)
        var y = try predictor.predict(fitted.apply(stabilized))
        let k = outputChannels
        if outputNormalization?.perImage != true {
            let back = outputNormalization.map { ImagePredictor.targetUnits($0, training: normalization, input: fitted) } ?? fitted
            ImagePredictor.invert(&y, back, meanChannels: intensityChannels)
        } else if scaleToTarget {
            guard let targetIntensity else {
                throw TensorError.invalidArgument(op: "predict", detail: "--scale target needs the training targets' intensities, which this checkpoint does not record (trained by an older Lucid, or its targets were not normalized per image)")
            }
            ImagePredictor.invert(&y, targetIntensity, meanChannels: intensityChannels)
        }
        if let noiseModel { y = ImagePredictor.unstabilized(y, noiseModel, meanChannels: intensityChannels) }

        // Back to [others…, Cout, spatial…].
        var outChannels = k
        if perSample == 1 && channels > 1 {
            y = try y.reshaped([n, channels, k] + spatial).permuted([0, 2, 1] + (3..<(3 + spatial.count)).map { $0 })
            outChannels = k * channels
        }
        y = try y.reshaped(otherSizes + [outChannels] + spatial)
        var target = letters
        if !letters.contains("C") {
            if outChannels == 1 {
                y = try y.reshaped(otherSizes + spatial)
                let current = others + spatialLetters
                y = try y.permuted(target.map { current.firstIndex(of: $0)! })
                return Image(data: y, axes: image.axes, pixelSize: image.pixelSize, zSpacing: image.zSpacing, sourceType: .float32)
            }
            let at = target.firstIndex { $0 == "Z" || $0 == "Y" }!
            target.insert("C", at: at)
        }
        y = try y.permuted(target.map { order.firstIndex(of: $0)! })
        return Image(data: y, axes: String(target), pixelSize: image.pixelSize, zSpacing: image.zSpacing, sourceType: .float32)
    }

    /// Throws naming the first NaN or infinite pixel.
    static func checkFinite(_ x: Tensor) throws {
        let bad = x.withUnsafeBufferPointer { p in p.firstIndex { !$0.isFinite } }
        if let bad {
            throw TensorError.invalidArgument(op: "predict", detail: "pixel \(bad) (flat index) is \(x.storage.base[bad]); the input must be finite")
        }
    }

    /// The training targets' normalization `target` carried over to an input whose own fit is
    /// `input` (the training inputs' fit is `training`): its scale grows with the input's range
    /// and its offset moves with the input's offset, in target units. An input normalized like
    /// the training data maps back to exactly the targets' intensities; an input twice as bright
    /// (percentiles refitted, so the network sees the same values) to targets twice as bright.
    static func targetUnits(_ target: LucidImaging.Normalization, training: LucidImaging.Normalization,
                            input: LucidImaging.Normalization) -> LucidImaging.Normalization {
        // Inputs normalized each by itself carry no brightness to carry over.
        guard input.method != .none, !training.perImage, training.scale > 0 else { return target }
        var out = target
        let gain = target.scale / training.scale
        out.scale = target.scale * input.scale / training.scale
        out.offset = target.offset + gain * (input.offset - training.offset)
        return out
    }

    /// The unbiased inverse of `model` on the first `meanChannels` channels of `[N, K, …]`.
    static func unstabilized(_ y: Tensor, _ model: GeneralizedAnscombe, meanChannels: Int) -> Tensor {
        if meanChannels == y.shape[1] { return model.unbiasedInverse(y) }
        var out = y
        out.makeUnique()
        let (n, k) = (y.shape[0], y.shape[1])
        let plane = y.count / max(1, n * k)
        for b in 0..<n {
            let at = b * k * plane
            let part = try! Tensor(shape: [meanChannels * plane], scalars: Array(UnsafeBufferPointer(start: y.storage.base + at, count: meanChannels * plane)))
            let back = model.unbiasedInverse(part)
            (out.storage.base + at).update(from: back.storage.base, count: meanChannels * plane)
        }
        return out
    }

    /// Maps `[N, K, …]` back to intensities: the first `meanChannels` channels `x·scale + offset`,
    /// the rest (scales) `x·scale`.
    static func invert(_ y: inout Tensor, _ norm: LucidImaging.Normalization, meanChannels: Int) {
        guard norm.method != .none else { return }
        y.makeUnique()
        let (n, k) = (y.shape[0], y.shape[1])
        let plane = y.count / max(1, n * k)
        let p = y.storage.base, s = norm.scale, o = norm.offset
        Threads.parallelFor(n * k) { job in
            let q = p + job * plane, offset = job % k < meanChannels ? o : 0
            for i in 0..<plane { q[i] = q[i] * s + offset }
        }
    }
}
