import Foundation
import LucidCore
import LucidImaging
import LucidNN

/// A checkpoint folder that could not be written or read; the message names the file and the cause.
public struct CheckpointError: Error, CustomStringConvertible, Equatable {
    /// The folder or file concerned.
    public var path: String
    /// What went wrong.
    public var reason: String
    public var description: String { "\(path): \(reason)".escapingControlCharacters }
}

/// One data file a model was trained on, with its fingerprint.
public struct DataFileDigest: Codable, Equatable, Sendable {
    public var path: String
    /// Lower-case hex SHA-256 of the file's bytes.
    public var sha256: String

    public init(path: String, sha256: String) {
        self.path = path
        self.sha256 = sha256
    }

    /// Fingerprints the file at `path`.
    public static func of(_ path: String) throws -> DataFileDigest {
        DataFileDigest(path: path, sha256: try SHA256.hex(file: path))
    }
}

/// The file names one committed step of a checkpoint consists of (relative to its folder).
public struct CheckpointFiles: Codable, Equatable, Sendable {
    /// Weights after the last step saved.
    public var weightsLast: String
    /// Weights with the lowest validation loss so far (the last ones when never validated).
    public var weightsBest: String
    /// Optimizer state (safetensors, keys `<parameter>.<slot>`, metadata `step`).
    public var optimizer: String
    /// Lower-case hex SHA-256 of each file above, by name; loading checks it. Nil in checkpoints
    /// written before Lucid recorded them (those load unverified, with a note).
    public var sha256: [String: String]?
}

/// What a training loop needs besides weights and optimizer state to continue exactly.
public struct TrainingState: Codable, Equatable, Sendable {
    /// The run's seed; every step's random stream is derived from (seed, step).
    public var seed: UInt64
    /// Learning rate in use after the saved step.
    public var learningRate: Double
    /// The plateau schedule's state (`schedule: plateau` only).
    public var plateau: ReduceLROnPlateau?
    /// Validations since the validation loss last improved (early stopping).
    public var validationsWithoutImprovement: Int
    /// Training seconds spent up to the saved step.
    public var elapsedSeconds: Double

    public init(seed: UInt64, learningRate: Double, plateau: ReduceLROnPlateau?, validationsWithoutImprovement: Int,
                elapsedSeconds: Double) {
        self.seed = seed
        self.learningRate = learningRate
        self.plateau = plateau
        self.validationsWithoutImprovement = validationsWithoutImprovement
        self.elapsedSeconds = elapsedSeconds
    }
}

/// The contents of `lucid.json`: everything needed to rebuild, apply and resume a model.
public struct CheckpointMetadata: Codable, Sendable {
    /// Version of this file's layout.
    public static let currentFormat = 1

    public var format: Int
    public var lucidVersion: String
    /// `noise2self`, `noise2void`, `noise2noise`, `care` or `labelfree`.
    public var method: String
    /// The resolved recipe as JSON text (every default filled in).
    public var recipe: String
    /// The network's architecture (recorded with its `kind`, `ModelRegistry`'s name for it).
    public var model: any ModelConfig
    /// Normalization fitted on the training inputs; prediction applies it to its inputs (fitted
    /// again to each input when it is `perImage` or percentile).
    public var normalization: LucidImaging.Normalization
    /// Normalization fitted on the training targets (CARE, labelfree); prediction maps outputs
    /// back with it (with `normalization` when nil). A `perImage` one cannot be undone: outputs
    /// stay in its normalized units (z-scores for label-free prediction's default).
    public var targetNormalization: LucidImaging.Normalization?
    /// Pixel size in µm (Y and X) the model was trained at (labelfree `data.pixel_size`):
    /// prediction resamples inputs to it and outputs back to the input's grid; nil: none.
    public var pixelSize: Double?
    /// Pixel size assumed for inputs without one in their metadata (`data.source_pixel_size`).
    public var sourcePixelSize: Double?
    /// Labelfree: the channels of the signal files the model was trained on (the manifest's
    /// `signal_channel`); prediction takes them from multi-channel inputs. Nil (also in
    /// checkpoints written before it existed): inputs are used whole.
    public var signalChannels: [Int]?
    /// The variance-stabilizing transform the inputs were trained in (`data.vst`); prediction
    /// applies it and its unbiased inverse. Nil: none.
    public var noiseModel: GeneralizedAnscombe?
    /// Labelfree with targets normalized each by itself: one mean/std fit over all training
    /// targets, which `lucid predict --scale target` maps z-scores back with. Nil: none recorded.
    public var targetIntensity: LucidImaging.Normalization?
    /// The convolution plans the run computed with (`ConvPlanner.exportPlans`), pinned again by
    /// `--resume` so that a resumed run uses the same kernels and reproduces its losses exactly.
    public var convolutionPlans: String?
    /// Axes of the training images (`YX`, `ZYX`, `CYX`, `CZYX`).
    public var axes: String
    /// 2 or 3.
    public var spatialRank: Int
    /// Optimizer steps done.
    public var step: Int
    /// Lowest validation loss seen, and the step it was measured at.
    public var bestValidationLoss: Double?
    public var bestStep: Int?
    /// The training data files with their SHA-256.
    public var dataFiles: [DataFileDigest]
    public var training: TrainingState
    /// The weight and optimizer files of this step (filled in by `Checkpoint.save`).
    public var files: CheckpointFiles
    /// When the step was saved (ISO 8601).
    public var created: String

    public init(method: String, recipe: String, model: any ModelConfig, normalization: LucidImaging.Normalization,
                targetNormalization: LucidImaging.Normalization?, axes: String, spatialRank: Int, step: Int,
                bestValidationLoss: Double?, bestStep: Int?, dataFiles: [DataFileDigest], training: TrainingState,
                pixelSize: Double? = nil, sourcePixelSize: Double? = nil, signalChannels: [Int]? = nil,
                noiseModel: GeneralizedAnscombe? = nil, targetIntensity: LucidImaging.Normalization? = nil) {
        format = CheckpointMetadata.currentFormat
        lucidVersion = LucidCore.lucidVersion
        self.method = method
        self.recipe = recipe
        self.model = model
        self.normalization = normalization
        self.targetNormalization = targetNormalization
        self.axes = axes
        self.spatialRank = spatialRank
        self.step = step
        self.bestValidationLoss = bestValidationLoss
        self.bestStep = bestStep
        self.dataFiles = dataFiles
        self.training = training
        self.pixelSize = pixelSize
        self.sourcePixelSize = sourcePixelSize
        self.signalChannels = signalChannels
        self.noiseModel = noiseModel
        self.targetIntensity = targetIntensity
        files = CheckpointFiles(weightsLast: "", weightsBest: "", optimizer: "")
        created = ""
    }
}

extension CheckpointMetadata {
    enum CodingKeys: String, CodingKey {
        case format, lucidVersion, method, recipe, modelKind, model, normalization, targetNormalization, pixelSize,
             sourcePixelSize, signalChannels, noiseModel, targetIntensity, convolutionPlans, axes, spatialRank, step, bestValidationLoss, bestStep, dataFiles, training,
             files, created
    }

    /// Checkpoints of Lucid 0.1 have no `modelKind`: their model is a U-Net.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try c.decodeIfPresent(String.self, forKey: .modelKind) ?? UNetConfig.kind
        guard let type = ModelRegistry.type(named: kind) else {
            throw DecodingError.dataCorruptedError(forKey: .modelKind, in: c, debugDescription: "unknown model kind '\(kind)' (this Lucid knows \(ModelRegistry.all.map { $0.kind }.joined(separator: ", ")))")
        }
        func decodeModel<T: ModelConfig>(_ t: T.Type) throws -> any ModelConfig { try c.decode(T.self, forKey: .model) }
        model = try decodeModel(type)
        format = try c.decode(Int.self, forKey: .format)
        lucidVersion = try c.decode(String.self, forKey: .lucidVersion)
        method = try c.decode(String.self, forKey: .method)
        recipe = try c.decode(String.self, forKey: .recipe)
        normalization = try c.decode(LucidImaging.Normalization.self, forKey: .normalization)
        targetNormalization = try c.decodeIfPresent(LucidImaging.Normalization.self, forKey: .targetNormalization)
        pixelSize = try c.decodeIfPresent(Double.self, forKey: .pixelSize)
        sourcePixelSize = try c.decodeIfPresent(Double.self, forKey: .sourcePixelSize)
        signalChannels = try c.decodeIfPresent([Int].self, forKey: .signalChannels)
        noiseModel = try c.decodeIfPresent(GeneralizedAnscombe.self, forKey: .noiseModel)
        targetIntensity = try c.decodeIfPresent(LucidImaging.Normalization.self, forKey: .targetIntensity)
        convolutionPlans = try c.decodeIfPresent(String.self, forKey: .convolutionPlans)
        axes = try c.decode(String.self, forKey: .axes)
        spatialRank = try c.decode(Int.self, forKey: .spatialRank)
        step = try c.decode(Int.self, forKey: .step)
        bestValidationLoss = try c.decodeIfPresent(Double.self, forKey: .bestValidationLoss)
        bestStep = try c.decodeIfPresent(Int.self, forKey: .bestStep)
        dataFiles = try c.decode([DataFileDigest].self, forKey: .dataFiles)
        training = try c.decode(TrainingState.self, forKey: .training)
        files = try c.decode(CheckpointFiles.self, forKey: .files)
        created = try c.decode(String.self, forKey: .created)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(format, forKey: .format)
        try c.encode(lucidVersion, forKey: .lucidVersion)
        try c.encode(method, forKey: .method)
        try c.encode(recipe, forKey: .recipe)
        try c.encode(type(of: model).kind, forKey: .modelKind)
        try model.encode(to: c.superEncoder(forKey: .model))
        try c.encode(normalization, forKey: .normalization)
        try c.encodeIfPresent(targetNormalization, forKey: .targetNormalization)
        try c.encodeIfPresent(pixelSize, forKey: .pixelSize)
        try c.encodeIfPresent(sourcePixelSize, forKey: .sourcePixelSize)
        try c.encodeIfPresent(signalChannels, forKey: .signalChannels)
        try c.encodeIfPresent(noiseModel, forKey: .noiseModel)
        try c.encodeIfPresent(targetIntensity, forKey: .targetIntensity)
        try c.encodeIfPresent(convolutionPlans, forKey: .convolutionPlans)
        try c.encode(axes, forKey: .axes)
        try c.encode(spatialRank, forKey: .spatialRank)
        try c.encode(step, forKey: .step)
        try c.encodeIfPresent(bestValidationLoss, forKey: .bestValidationLoss)
        try c.encodeIfPresent(bestStep, forKey: .bestStep)
        try c.encode(dataFiles, forKey: .dataFiles)
        try c.encode(training, forKey: .training)
        try c.encode(files, forKey: .files)
        try c.encode(created, forKey: .created)
    }
}

/// A checkpoint folder: `lucid.json`, the weight and optimizer files it names, convenience
/// links `weights_last.safetensors` / `weights_best.safetensors`, `recipe.yaml` and `metrics.csv`.
///
/// Saving is crash-safe: the files of a step get step-tagged names and are each written to a
/// temporary file, flushed and renamed; `lucid.json`, written the same way last, names them and
/// is the commit point; files of older steps are removed only afterwards. A process killed at
/// any moment therefore leaves a folder whose `lucid.json` names one complete, consistent step.
/// ```swift
/// let ckpt = try Checkpoint.load(directory: "Checkpoints/noise2self")
/// let net = try ckpt.makeModel(weights: .best)
/// let x = ckpt.metadata.normalization.apply(image.data)
/// ```
public struct Checkpoint {
    /// Which weights to load.
    public enum Weights: String, Sendable { case best, last }

    /// File name of the metadata (the commit point).
    public static let metadataFile = "lucid.json"
    /// Stable names of the latest weights (hard links to the committed step's files).
    public static let lastLink = "weights_last.safetensors"
    public static let bestLink = "weights_best.safetensors"

    /// The folder.
    public var directory: String
    public var metadata: CheckpointMetadata

    /// Path of `name` inside the folder.
    public func path(_ name: String) -> String { joinPath(directory, name) }

    /// Reads `lucid.json` and checks that the files it names are present.
    public static func load(directory: String) throws -> Checkpoint {
        let file = joinPath(directory, metadataFile)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw CheckpointError(path: directory, reason: "no such checkpoint folder")
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw CheckpointError(path: file, reason: "missing (not a Lucid checkpoint folder, or no step was saved yet)")
        }
        let metadata: CheckpointMetadata
        do {
            metadata = try decoder.decode(CheckpointMetadata.self, from: data)
        } catch {
            throw CheckpointError(path: file, reason: "not a valid checkpoint description (\(describe(error)))")
        }
        guard metadata.format <= CheckpointMetadata.currentFormat else {
            throw CheckpointError(path: file, reason: "format \(metadata.format) is newer than this Lucid reads (\(CheckpointMetadata.currentFormat)); update Lucid")
        }
        let checkpoint = Checkpoint(directory: directory, metadata: metadata)
        for name in [metadata.files.weightsLast, metadata.files.weightsBest, metadata.files.optimizer] {
            guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
                throw CheckpointError(path: file, reason: "names '\(name)', which is not a file name inside the checkpoint folder")
            }
            var info = stat()
            guard stat(checkpoint.path(name), &info) == 0 else {
                throw CheckpointError(path: checkpoint.path(name), reason: "missing, though \(metadataFile) names it")
            }
            guard info.st_mode & S_IFMT == S_IFREG else {
                throw CheckpointError(path: checkpoint.path(name), reason: "not a regular file, though \(metadataFile) names it as one")
            }
        }
        return checkpoint
    }

    /// The parameters and buffers of the chosen weights, by PyTorch name.
    public func weights(_ which: Weights = .best) throws -> [String: Tensor] {
        let name = which == .best ? metadata.files.weightsBest : metadata.files.weightsLast
        return try SafeTensors.load(try verifiedContents(name), path: path(name)).tensors
    }

    /// The bytes of the file `name`, read once and checked against the SHA-256 `lucid.json`
    /// records for it; a file without a recorded digest (an older checkpoint) is returned with a
    /// note on stderr.
    func verifiedContents(_ name: String) throws -> Data {
        let file = path(name)
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: file), options: .alwaysMapped) } catch {
            throw CheckpointError(path: file, reason: "cannot read it (\(Checkpoint.describe(error)))")
        }
        guard let expected = metadata.files.sha256?[name] else {
            let note = "note: \(path(Checkpoint.metadataFile)) records no SHA-256 for \(name) (written before Lucid recorded them); loading it unverified\n"
            try? FileHandle.standardError.write(contentsOf: Data(note.utf8))
            return data
        }
        guard SHA256.hex(data) == expected else {
            throw CheckpointError(path: file, reason: "its SHA-256 differs from the one \(Checkpoint.metadataFile) records: the file was damaged or replaced after it was saved; refusing to load it (restore the folder from a good copy)")
        }
        return data
    }

    /// The model of `metadata.model` with the chosen weights loaded.
    public func makeModel(weights which: Weights = .best) throws -> any ImageModel {
        var rng = RandomGenerator(seed: 0)
        let net: any ImageModel
        do { net = try metadata.model.makeModel(rng: &rng) } catch {
            throw CheckpointError(path: path(Checkpoint.metadataFile), reason: "its model cannot be built: \(error)")
        }
        let name = which == .best ? metadata.files.weightsBest : metadata.files.weightsLast
        do {
            try net.loadStateDict(try weights(which))
        } catch let error as TensorError {
            throw CheckpointError(path: path(name), reason: "does not fit the network in \(Checkpoint.metadataFile): \(error)")
        }
        return net
    }

    /// The method the model was trained with, with its settings (from the saved recipe).
    public func method() throws -> any RestorationMethod {
        let file = path(Checkpoint.metadataFile)
        guard Methods.named(metadata.method) != nil else {
            throw CheckpointError(path: file, reason: "method '\(metadata.method)' is unknown to this Lucid (it knows \(Methods.names.joined(separator: ", ")))")
        }
        do { return try Recipe.parse(yaml: metadata.recipe, file: file).method } catch {
            throw CheckpointError(path: file, reason: "its recipe cannot be read back (\(error))")
        }
    }

    /// The optimizer state saved with the step.
    public func optimizerState() throws -> OptimizerState {
        let file = path(metadata.files.optimizer)
        let (tensors, meta) = try SafeTensors.load(try verifiedContents(metadata.files.optimizer), path: file)
        guard let text = meta["step"], let step = Int(text) else {
            throw CheckpointError(path: file, reason: "no 'step' in the optimizer state's metadata")
        }
        return OptimizerState(step: step, tensors: tensors)
    }

    /// Points at which `save` can be interrupted (for tests that simulate a crash).
    enum SavePhase: String, CaseIterable {
        case wroteLast, wroteBest, wroteOptimizer, committed, linkedLast, linkedBest, cleaned
    }

    /// Saves one step into `directory` (created when missing) and returns the committed checkpoint.
    ///
    /// - Parameters:
    ///   - metadata: the step's description; `files` and `created` are filled in here.
    ///   - last: the current parameters and buffers.
    ///   - best: the best weights when they changed at this step; nil keeps the previously
    ///     committed best file (or uses `last` when there is none).
    ///   - optimizer: the optimizer state after the step.
    @discardableResult
    public static func save(to directory: String, metadata: CheckpointMetadata, last: [String: Tensor],
                            best: [String: Tensor]?, optimizer: OptimizerState) throws -> Checkpoint {
        try save(to: directory, metadata: metadata, last: last, best: best, optimizer: optimizer, interrupt: nil)
    }

    /// `save`, calling `interrupt` after each phase; a throwing `interrupt` simulates a crash there.
    static func save(to directory: String, metadata: CheckpointMetadata, last: [String: Tensor],
                     best: [String: Tensor]?, optimizer: OptimizerState,
                     interrupt: ((SavePhase) throws -> Void)?) throws -> Checkpoint {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CheckpointError(path: directory, reason: "cannot create the checkpoint folder (\(describe(error)))")
        }
        guard access(directory, W_OK) == 0 else {
            throw CheckpointError(path: directory, reason: "the checkpoint folder is not writable")
        }
        let previous = try? load(directory: directory)
        let tag = String(format: "%08d", metadata.step)
        var meta = metadata
        meta.files.weightsLast = "weights_last-\(tag).safetensors"
        meta.files.optimizer = "optimizer-\(tag).safetensors"
        let url = { (name: String) in URL(fileURLWithPath: joinPath(directory, name)) }
        let stepMeta = ["step": String(metadata.step), "format": "lucid"]

        var digests: [String: String] = [:]
        /// Records the SHA-256 of a file this save wrote (or kept).
        func digest(_ name: String) throws { digests[name] = try SHA256.hex(file: joinPath(directory, name)) }

        try SafeTensors.save(last, metadata: stepMeta, to: url(meta.files.weightsLast))
        try digest(meta.files.weightsLast)
        try interrupt?(.wroteLast)
        if let best {
            let bestStep = metadata.bestStep ?? metadata.step
            meta.files.weightsBest = "weights_best-\(String(format: "%08d", bestStep)).safetensors"
            try SafeTensors.save(best, metadata: ["step": String(bestStep), "format": "lucid"], to: url(meta.files.weightsBest))
            try digest(meta.files.weightsBest)
        } else if let previous, FileManager.default.fileExists(atPath: previous.path(previous.metadata.files.weightsBest)) {
            meta.files.weightsBest = previous.metadata.files.weightsBest
            digests[meta.files.weightsBest] = try previous.metadata.files.sha256?[meta.files.weightsBest] ?? SHA256.hex(file: previous.path(meta.files.weightsBest))
        } else {
            meta.files.weightsBest = meta.files.weightsLast
        }
        try interrupt?(.wroteBest)
        try SafeTensors.save(optimizer.tensors, metadata: ["step": String(optimizer.step)], to: url(meta.files.optimizer))
        try digest(meta.files.optimizer)
        meta.files.sha256 = digests
        try interrupt?(.wroteOptimizer)

        meta.created = ISO8601DateFormatter().string(from: Date())
        let json: Data
        do { json = try encoder.encode(meta) } catch {
            throw CheckpointError(path: joinPath(directory, metadataFile), reason: "cannot encode (\(describe(error)))")
        }
        try writeAtomically(json, to: joinPath(directory, metadataFile))
        try interrupt?(.committed)

        try link(joinPath(directory, meta.files.weightsLast), as: joinPath(directory, lastLink))
        try interrupt?(.linkedLast)
        try link(joinPath(directory, meta.files.weightsBest), as: joinPath(directory, bestLink))
        try interrupt?(.linkedBest)
        removeStale(in: directory, keeping: [meta.files.weightsLast, meta.files.weightsBest, meta.files.optimizer])
        try interrupt?(.cleaned)
        return Checkpoint(directory: directory, metadata: meta)
    }

    /// `AtomicFile.write`, failing with a checkpoint error.
    static func writeAtomically(_ data: Data, to path: String) throws {
        do { try AtomicFile.write(data, to: path) } catch let error as FileWriteError {
            throw CheckpointError(path: path, reason: error.reason)
        }
    }

    /// Makes `alias` a hard link to `target` atomically (a copy where hard links are not supported).
    private static func link(_ target: String, as alias: String) throws {
        let dir = (alias as NSString).deletingLastPathComponent
        let tmp = joinPath(dir, "." + (alias as NSString).lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        if hardLink(target, tmp) != 0 {
            guard let data = FileManager.default.contents(atPath: target) else {
                throw CheckpointError(path: target, reason: "cannot read it to copy it to \(alias)")
            }
            try writeAtomically(data, to: alias)
            return
        }
        guard rename(tmp, alias) == 0 else {
            unlink(tmp)
            throw CheckpointError(path: alias, reason: "cannot rename into place: \(String(cString: strerror(errno)))")
        }
        AtomicFile.syncFolder(dir)
    }

    /// Removes step files not in `keep` and temporary files left by interrupted saves.
    private static func removeStale(in directory: String, keeping keep: Set<String>) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where !keep.contains(name) {
            let stepFile = (name.hasPrefix("weights_last-") || name.hasPrefix("weights_best-") || name.hasPrefix("optimizer-"))
                && name.hasSuffix(".safetensors")
            let temporary = name.hasPrefix(".") && name.contains(".tmp-")
            if stepFile || temporary { unlink(joinPath(directory, name)) }
        }
    }

    static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let ctx):
            return "missing key '\((ctx.codingPath + [key]).map(\.stringValue).joined(separator: "."))'"
        case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx),
             DecodingError.dataCorrupted(let ctx):
            let at = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            return (at.isEmpty ? "" : "at '\(at)': ") + ctx.debugDescription
        default:
            if let cause = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError, cause.domain == NSPOSIXErrorDomain {
                // Foundation's file errors: the system's words ("No space left on device").
                return String(cString: strerror(Int32(cause.code)))
            }
            return String(describing: error).split(whereSeparator: \.isNewline).joined(separator: "; ")
        }
    }
}

/// The C `link(2)`, under a name the `Checkpoint.link` method does not shadow.
private func hardLink(_ target: String, _ alias: String) -> Int32 { link(target, alias) }
