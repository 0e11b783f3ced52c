import Foundation
import LucidCore
import LucidImaging

/// A problem with the training data; the message is one line naming the file and the cause.
public struct TrainingDataError: Error, CustomStringConvertible, Equatable {
    /// The file (or pattern, or recipe key) concerned.
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)".escapingControlCharacters }
}

/// The data a recipe trains on: its files read, checked and normalized, training batches cut
/// from them at random, a fixed validation set, and the normalization saved with the model.
///
/// Each training batch takes random crops anywhere in the images (every patch position equally
/// likely), with random flips and quarter turns in XY when `augment` is set, drawn from a
/// caller-supplied generator: a batch is a pure function of the generator state.
public struct TrainingData {
    /// Every data file read (inputs, then targets), for fingerprints.
    public var files: [String]
    /// Axes of the recipe (`YX`, `ZYX`, `CYX`, `CZYX`).
    public var axes: String
    public var spatialRank: Int
    public var inChannels: Int
    public var outChannels: Int
    public var patchShape: [Int]
    /// Fitted on the inputs (or, with `perImage`, fitted to each input by itself); applied to
    /// inputs (and to targets when `targetNormalization` is nil).
    public var normalization: LucidImaging.Normalization
    /// Fitted on the targets (CARE, labelfree; labelfree with `perImage`: to each target channel
    /// by itself).
    public var targetNormalization: LucidImaging.Normalization?
    /// Normalized images `[C, spatial…]`: per source the input, and the target for paired methods.
    public var sources: [[Tensor]]
    /// Held-out patches (`[M, C, patch…]`, M may be 0) and their targets (paired methods).
    public var validationInputs: Tensor
    public var validationTargets: Tensor?
    /// Random flips and quarter turns of training batches.
    public var augment: Bool
    /// The variance-stabilizing transform applied to the inputs before normalization (`data.vst`).
    public var noiseModel: GeneralizedAnscombe? = nil
    /// Labelfree with per-image target normalization: a mean/std fit over all targets (`--scale target`).
    public var targetIntensity: LucidImaging.Normalization? = nil
    /// Labelfree: the channels taken from every signal file (the manifest's `signal_channel`,
    /// when all rows name the same ones); nil: whole files.
    public var signalChannels: [Int]? = nil

    /// Validation patches: `data.validation` times the patches that tile the data, at most this many.
    static let maxValidationPatches = 256

    /// Reads the recipe's data. The validation patches are sampled with a generator seeded by `seed`.
    public static func load(_ recipe: Recipe, seed: UInt64) throws -> TrainingData {
        if recipe.data.needs == .signalToTarget { return try loadLabelFree(recipe, seed: seed) }
        let data = recipe.data
        let paired: Bool
        var inputFiles: [String], targetFiles: [String] = []
        var simulated: SimulatedPairs?, extraFiles: [String] = []
        switch data.source {
        case .noisy(let train):
            inputFiles = try ImageFiles.resolve(train)
            paired = false
        case let .paired(input, target):
            let pairs = try ImageFiles.pairs(sources: try ImageFiles.resolve(input), targets: try ImageFiles.resolve(target))
            inputFiles = pairs.map(\.source)
            targetFiles = pairs.map(\.target)
            paired = true
        case let .simulated(target, simulation):
            // The targets are read as inputs and degraded once here, from the seed.
            inputFiles = try ImageFiles.resolve(target)
            simulated = try SimulatedPairs(simulation, spatialRank: data.axes.spatialRank)
            if case .file(let psf) = simulation.psf { extraFiles = [psf] }
            paired = true
        case .manifest:
            throw TrainingDataError(path: "data.manifest", reason: "only method labelfree reads a manifest")
        }

        var sources: [[Tensor]] = []
        var inputs: [Tensor] = [], targets: [Tensor] = []
        var simulationRNG = RandomGenerator(seed: seed ^ 0x51AD_A7ED_0000_0002)
        for (k, file) in inputFiles.enumerated() {
            var input = try planes(file, recipe: recipe)
            let target: [Tensor]
            if let simulated {
                target = input
                do { input = try target.map { try simulated.degrade($0, rng: &simulationRNG) } } catch {
                    throw TrainingDataError(path: file, reason: "cannot simulate its input: \(error)")
                }
            } else if paired {
                target = try planes(targetFiles[k], recipe: recipe)
                guard target.count == input.count, zip(input, target).allSatisfy({ $0.shape == $1.shape }) else {
                    throw TrainingDataError(path: targetFiles[k], reason: "shape \(shapes(target)) differs from its input \(file)'s \(shapes(input))")
                }
            } else {
                target = []
            }
            var source = input.map { [$0] }
            inputs += input
            if paired {
                for i in source.indices { source[i].append(target[i]) }
                targets += target
            }
            sources += source
        }
        let inChannels = inputs[0].shape[0]
        let outChannels = paired ? targets[0].shape[0] : inChannels
        if let odd = inputs.firstIndex(where: { $0.shape[0] != inChannels }) {
            throw TrainingDataError(path: inputFiles[min(odd, inputFiles.count - 1)], reason: "has \(inputs[odd].shape[0]) channels, the first file has \(inChannels)")
        }

        var noiseModel: GeneralizedAnscombe?
        if data.vst == .anscombe {
            do { noiseModel = try GeneralizedAnscombe.estimate(inputs) } catch {
                throw TrainingDataError(path: "data.vst", reason: "cannot fit the noise model to \(inputFiles.count == 1 ? inputFiles[0] : "the data"): \(error)")
            }
            inputs = inputs.map { noiseModel!.forward($0) }
            sources = sources.map { $0.map { noiseModel!.forward($0) } }
        }
        let normalization = try data.normalize.fitted(to: sample(inputs))
        var targetNormalization: LucidImaging.Normalization?
        if paired && type(of: recipe.method).normalizesTargets { targetNormalization = try data.normalize.fitted(to: sample(targets)) }
        let targetNorm = targetNormalization ?? normalization
        let normalized = sources.map { source in
            source.enumerated().map { k, t in k == 0 ? normalization.apply(t) : targetNorm.apply(t) }
        }

        let patchPixels = data.patch.reduce(1, *)
        let totalPixels = inputs.reduce(0) { $0 + $1.count / inChannels }
        let wanted = min(maxValidationPatches, Int((data.validation * Double(totalPixels) / Double(patchPixels)).rounded(.up)))
        var validation: [Tensor] = [Tensor(zeros: [0, inChannels] + data.patch)]
        if paired { validation.append(Tensor(zeros: [0, outChannels] + data.patch)) }
        if wanted > 0 {
            let perSource = max(1, (wanted + normalized.count - 1) / normalized.count)
            let sampler = try PatchSampler(patchShape: data.patch, patchesPerImage: perSource, augment: false)
            var rng = RandomGenerator(seed: seed ^ 0x0A11_DA7E_0000_0001)
            validation = try sampler.sample(normalized, rng: &rng).tensors
        }
        return TrainingData(files: inputFiles + targetFiles + extraFiles, axes: data.axes.rawValue, spatialRank: data.axes.spatialRank,
                            inChannels: inChannels, outChannels: outChannels, patchShape: data.patch,
                            normalization: normalization, targetNormalization: targetNormalization,
                            sources: normalized, validationInputs: validation[0],
                            validationTargets: paired ? validation[1] : nil, augment: data.augment, noiseModel: noiseModel)
    }

    /// Reads `file` and returns its `[C, spatial…]` sampler inputs, checking axes, finiteness and size.
    static func planes(_ file: String, recipe: Recipe) throws -> [Tensor] {
        try planes(of: try Image.read(file), name: file, recipe: recipe)
    }

    /// The `[C, spatial…]` sampler inputs of `image` (called `name` in errors), checking axes,
    /// finiteness and size; `anyChannels` accepts several channels whatever `data.axes` says.
    static func planes(of image: Image, name file: String, recipe: Recipe, anyChannels: Bool = false) throws -> [Tensor] {
        let axes = recipe.data.axes
        let channels = image.size("C")
        if !axes.hasChannels && !anyChannels && channels != 1 {
            throw TrainingDataError(path: file, reason: "has \(channels) channels (axes \(image.axes)) but data.axes is \(axes.rawValue); use \(axes.spatialRank == 2 ? "CYX" : "CZYX")")
        }
        if axes.spatialRank == 3 && image.axisIndex("Z") == nil {
            throw TrainingDataError(path: file, reason: "has axes \(image.axes) without Z, but data.axes \(axes.rawValue) trains on 3-D stacks")
        }
        let bad = image.data.withUnsafeBufferPointer { b in b.firstIndex { !$0.isFinite } }
        if let bad {
            let value = image.data.storage.base[bad]
            var rest = bad
            let position = Tensor.strides(of: image.data.shape).map { s -> Int in defer { rest %= s }; return rest / s }
            throw TrainingDataError(path: file, reason: "pixel \(position) (axes \(image.axes)) is \(value); non-finite pixels cannot be trained on")
        }
        let planes = try image.patchLayout(spatialRank: axes.spatialRank)
        let spatial = Array(planes[0].shape.dropFirst())
        if zip(spatial, recipe.data.patch).contains(where: { $0 < $1 }) {
            throw TrainingDataError(path: file, reason: "image of spatial shape \(spatial) (axes \(image.axes)) is smaller than data.patch \(recipe.data.patch)")
        }
        return planes
    }

    private static func shapes(_ planes: [Tensor]) -> String {
        planes.isEmpty ? "[]" : "\(planes.count) × \(planes[0].shape)"
    }

    /// At most about 2^24 values spread evenly over `tensors`, for fitting the normalization.
    static func sample(_ tensors: [Tensor]) -> Tensor {
        let total = tensors.reduce(0) { $0 + $1.count }
        let step = max(1, total / (1 << 24))
        var values: [Float] = []
        values.reserveCapacity(total / step + tensors.count)
        for t in tensors {
            t.withUnsafeBufferPointer { b in
                var i = 0
                while i < b.count { values.append(b[i]); i += step }
            }
        }
        return try! Tensor(shape: [values.count], scalars: values)
    }

    /// Number of validation patches.
    public var validationSize: Int { validationInputs.shape[0] }

    /// A batch of `size` random crops (with random XY flips / quarter turns when `augment`), or
    /// its `rows` alone (see `PatchSampler.uniformBatch`).
    public func batch(size: Int, rows: Range<Int>? = nil, rng: inout RandomGenerator) -> (input: Tensor, target: Tensor?) {
        let b = PatchSampler.uniformBatch(sources, patchShape: patchShape, size: size, rows: rows, augment: augment, rng: &rng)
        return (b[0], b.count > 1 ? b[1] : nil)
    }

    /// Validation patches `from ..< to` (inputs and targets).
    public func validationBatch(_ range: Range<Int>) throws -> (input: Tensor, target: Tensor?) {
        (try validationInputs.slice(axis: 0, range: range), try validationTargets?.slice(axis: 0, range: range))
    }
}
