import Foundation
import LucidCore
import LucidImaging

extension TrainingData {
    /// Label-free training data from the recipe's manifest (see `LabelFreeManifest`), or from
    /// its `data.input` and `data.target` files matched by name (each pair a training row).
    ///
    /// Rows marked `test` are not read. Each row's signal (its `signal_channel`s) becomes the
    /// input, the channels of its targets (in column order) the output channels. With
    /// `data.pixel_size` both are resampled linearly in Y and X from the signal's pixel size (its
    /// metadata, else `data.source_pixel_size`). Per-image normalizations are fitted to each
    /// signal image as a whole and to each target channel by itself, otherwise to all training
    /// rows. Validation patches come from the `val` rows when there are any, else from the
    /// training images as for the other methods. The signal channels are recorded when every
    /// row names the same ones (prediction then picks them from multi-channel files).
    static func loadLabelFree(_ recipe: Recipe, seed: UInt64) throws -> TrainingData {
        let data = recipe.data
        // Rows with the place errors name ("pairs.csv line 3") and how other rows refer to it ("line 3").
        typealias Row = (row: LabelFreeManifest.Row, place: String, name: String)
        var trainRows: [Row] = [], validationRows: [Row] = []
        var files: [String] = []
        switch data.source {
        case .manifest(let path):
            let manifest = try LabelFreeManifest.read(path)
            func rows(_ split: LabelFreeManifest.Split) -> [Row] {
                manifest.rows(split).map { ($0, "\(path) line \($0.line)", "line \($0.line)") }
            }
            (trainRows, validationRows) = (rows(.train), rows(.validation))
            guard !trainRows.isEmpty else {
                throw TrainingDataError(path: "\(path) line 1", reason: """
                    the split column leaves no rows to train on (\(manifest.rows(.test).count) test, \
                    \(validationRows.count) validation; rows marked train are trained on)
                    """)
            }
            files = [path]
        case let .paired(input, target):
            let pairs = try ImageFiles.pairs(sources: try ImageFiles.resolve(input), targets: try ImageFiles.resolve(target))
            trainRows = pairs.map { pair in
                (LabelFreeManifest.Row(line: 0, signal: .init(path: pair.source, channels: nil),
                                       targets: [.init(path: pair.target, channels: nil)], split: .train),
                 pair.source, pair.source)
            }
        case .noisy, .simulated:
            throw TrainingDataError(path: "data", reason: "method labelfree needs data.manifest, or data.input and data.target")
        }
        let inputNormalization = data.normalize
        let targetConfig = data.targetNormalize ?? data.normalize
        var seen = Set(files)
        var first: (name: String, inChannels: Int, outChannels: Int)?
        var rawTargets: [Tensor] = []

        func load(_ rows: [Row]) throws -> [[Tensor]] {
            var sources: [[Tensor]] = []
            for (row, place, name) in rows {
                let pair = try LabelFreePair(row: row, place: place, recipe: recipe)
                let input = try pair.input(inputNormalization)
                let target = try pair.targets(targetConfig)
                if targetConfig.perImage { rawTargets += try pair.targets(Normalization(method: .none)) }
                let (inChannels, outChannels) = (input[0].shape[0], target[0].shape[0])
                if let first, first.inChannels != inChannels || first.outChannels != outChannels {
                    throw pair.error("""
                        \(inChannels) signal and \(outChannels) target channels, but \(first.name) has \
                        \(first.inChannels) and \(first.outChannels); every row must give the same channels
                        """)
                }
                if first == nil { first = (name, inChannels, outChannels) }
                sources += zip(input, target).map { [$0, $1] }
                for file in [row.signal.path] + row.targets.map(\.path) where seen.insert(file).inserted {
                    files.append(file)
                }
            }
            return sources
        }
        var training = try load(trainRows)
        // What `--scale target` maps per-image z-scores back with: the training targets' own intensities.
        let targetIntensity = rawTargets.isEmpty ? nil : try Normalization.meanStd.fitted(to: sample(rawTargets))
        var validationSources = data.validation > 0 ? try load(validationRows) : []

        // Normalizations fitted to all training rows (per-image ones were applied while reading).
        var normalization = inputNormalization, targetNormalization = targetConfig
        if !normalization.perImage {
            normalization = try normalization.fitted(to: sample(training.map { $0[0] }))
        }
        if !targetNormalization.perImage {
            targetNormalization = try targetNormalization.fitted(to: sample(training.map { $0[1] }))
        }
        func normalized(_ sources: [[Tensor]]) -> [[Tensor]] {
            sources.map { [inputNormalization.perImage ? $0[0] : normalization.apply($0[0]),
                           targetConfig.perImage ? $0[1] : targetNormalization.apply($0[1])] }
        }
        training = normalized(training)
        validationSources = normalized(validationSources)

        guard let first else { throw TrainingDataError(path: "data", reason: "no image pairs to train on") }
        let signalChoices = Set((trainRows + validationRows).map(\.row.signal.channels))
        let (inChannels, outChannels) = (first.inChannels, first.outChannels)
        var validation = [Tensor(zeros: [0, inChannels] + data.patch), Tensor(zeros: [0, outChannels] + data.patch)]
        if data.validation > 0 {
            let patchPixels = data.patch.reduce(1, *)
            let pool = validationSources.isEmpty ? training : validationSources
            let pixels = pool.reduce(0) { $0 + $1[0].count / inChannels }
            // From the val rows: enough patches to cover them about once; else data.validation of the training data.
            let wanted = validationSources.isEmpty
                ? Int((data.validation * Double(pixels) / Double(patchPixels)).rounded(.up))
                : max(pool.count, (pixels + patchPixels - 1) / patchPixels)
            let count = min(maxValidationPatches, wanted)
            let sampler = try PatchSampler(patchShape: data.patch, patchesPerImage: max(1, (count + pool.count - 1) / pool.count),
                                           augment: false)
            var rng = RandomGenerator(seed: seed ^ 0x0A11_DA7E_0000_0001)
            validation = try sampler.sample(pool, rng: &rng).tensors
        }
        return TrainingData(files: files, axes: data.axes.rawValue, spatialRank: data.axes.spatialRank,
                            inChannels: inChannels, outChannels: outChannels, patchShape: data.patch,
                            normalization: normalization, targetNormalization: targetNormalization,
                            sources: training, validationInputs: validation[0], validationTargets: validation[1],
                            augment: data.augment, targetIntensity: targetIntensity,
                            signalChannels: signalChoices.count == 1 ? signalChoices.first.flatMap { $0 } : nil)
    }
}

/// The images of one manifest row, read, channel-selected, checked and resampled.
private struct LabelFreePair {
    let row: LabelFreeManifest.Row
    /// Where errors say the row is (`pairs.csv line 3`, or the signal file).
    let place: String
    let recipe: Recipe
    /// The signal's selected channels (a C axis when several).
    let signal: Image
    /// Per target column, one single-channel image per selected channel.
    let targets: [[Image]]

    init(row: LabelFreeManifest.Row, place: String, recipe: Recipe) throws {
        self.row = row
        self.place = place
        self.recipe = recipe
        let error = { (reason: String) in TrainingDataError(path: place, reason: reason) }
        func read(_ reference: LabelFreeManifest.ImageReference, _ column: String) throws -> Image {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: reference.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
                throw error("\(column) file '\(reference.path)' does not exist")
            }
            do { return try Image.read(reference.path) } catch {
                throw TrainingDataError(path: place, reason: "\(column) file: \(error)")
            }
        }
        func select(_ image: Image, _ channels: [Int], _ column: String, _ file: String) throws -> Image {
            let count = image.size("C")
            if let bad = channels.first(where: { $0 >= count }) {
                throw error("\(column)_channel \(bad) is out of range: '\(file)' has \(count) channel\(count == 1 ? "" : "s") (axes \(image.axes), channels 0…\(count - 1))")
            }
            return try image.selectingChannels(channels)
        }
        func extents(_ image: Image) -> [Int] { ["T", "Z", "Y", "X"].map { image.size($0) } }

        let rawSignal = try read(row.signal, "signal")
        var signal = try row.signal.channels.map { try select(rawSignal, $0, "signal", row.signal.path) } ?? rawSignal
        var targets: [[Image]] = []
        for (k, reference) in row.targets.enumerated() {
            let column = LabelFreePair.targetColumn(k)
            let image = try read(reference, column)
            guard extents(image) == extents(rawSignal) else {
                throw error("""
                    \(column) '\(reference.path)' has shape \(image.data.shape) (axes \(image.axes)), but signal \
                    '\(row.signal.path)' has \(rawSignal.data.shape) (axes \(rawSignal.axes)); a pair must be two images of one scene on one grid
                    """)
            }
            let channels = reference.channels ?? Array(0..<image.size("C"))
            targets.append(try channels.map { try select(image, [$0], column, reference.path) })
        }

        if let pixelSize = recipe.data.pixelSize {
            guard let source = rawSignal.pixelSize ?? recipe.data.sourcePixelSize else {
                throw error("signal '\(row.signal.path)' has no pixel size in its metadata; set data.source_pixel_size (µm) to resample it to data.pixel_size \(pixelSize)")
            }
            let height = Resampling.extent(signal.size("Y"), from: source, to: pixelSize)
            let width = Resampling.extent(signal.size("X"), from: source, to: pixelSize)
            signal = try signal.resampledYX(height: height, width: width)
            targets = try targets.map { try $0.map { try $0.resampledYX(height: height, width: width) } }
        }
        self.signal = signal
        self.targets = targets
    }

    /// The name of target column `k` (`target`, `target2`, …).
    static func targetColumn(_ k: Int) -> String { k == 0 ? "target" : "target\(k + 1)" }

    func error(_ reason: String) -> TrainingDataError {
        TrainingDataError(path: place, reason: reason)
    }

    /// The signal's `[C, spatial…]` sampler pieces, normalized by themselves when `normalization.perImage`.
    func input(_ normalization: LucidImaging.Normalization) throws -> [Tensor] {
        let pieces = try TrainingData.planes(of: signal, name: "\(place): signal '\(row.signal.path)'",
                                             recipe: recipe)
        guard normalization.perImage else { return pieces }
        let fitted = try normalization.fitted(to: signal.data)
        return pieces.map(fitted.apply)
    }

    /// The targets' `[C, spatial…]` pieces, every channel normalized by itself when `normalization.perImage`.
    func targets(_ normalization: LucidImaging.Normalization) throws -> [Tensor] {
        var channels: [[Tensor]] = []
        for (k, images) in targets.enumerated() {
            let name = "\(place): \(LabelFreePair.targetColumn(k)) '\(row.targets[k].path)'"
            for image in images {
                var pieces = try TrainingData.planes(of: image, name: name,
                                                     recipe: recipe, anyChannels: true)
                if normalization.perImage {
                    let fitted = try normalization.fitted(to: image.data)
                    pieces = pieces.map(fitted.apply)
                }
                channels.append(pieces)
            }
        }
        return try channels[0].indices.map { piece in try Tensor.concat(channels.map { $0[piece] }, axis: 0) }
    }
}
