import ArgumentParser
import Foundation
import LucidCore
import LucidDistributed
import LucidImaging
import LucidNN
import LucidRestore

/// `lucid predict CHECKPOINT_DIR INPUT...`: restores images with a trained model.
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Restore images with a trained model (tiled, any size, 2D or 3D).",
        discussion: """
            INPUT may be files, folders or globs. With one input, -o names the output file; with several \
            it names a folder. Without -o each result is written next to its input as NAME.restored.tif. \
            Output is float32 in the input's intensity scale (or uint16, clipped), with axes and calibration kept. \
            Label-free models give their targets' scale: z-scores when the targets were normalized per image \
            (the default), one channel per target (a C axis when there are several); a model trained at \
            data.pixel_size gets each input resampled to it and its output resampled back, and one trained \
            on a manifest's signal_channel takes that channel of each input; --scale target maps label-free \
            z-scores to the training targets' intensities. --ensemble averages the restorations of several \
            checkpoints (each normalizes and maps back its own way). \
            OME-Zarr (NGFF 0.4) inputs are folders ending in .zarr; with an OME-Zarr output (-o NAME.ome.zarr, the \
            default for them) they are streamed slab by slab with bounded memory, normalization fitted to a sample \
            of planes for large stacks. \
            Under mpirun or srun the files (or, with fewer files than ranks, the tiles of each image) are \
            split over the ranks; rank 0 writes every output. \
            A diffusion model draws \
            --samples samples per tile (--steps noise levels of its --sampler, seeded by --seed) and writes \
            their mean to -o, their per-pixel standard deviation to --std and the samples (a C axis) to \
            --save-samples; a self-supervised one writes Tweedie's estimate and its standard deviation.
            """)

    @Argument(help: "Checkpoint folder written by `lucid train`.")
    var checkpoint: String

    @Argument(help: "Images to restore (TIFF or OME-Zarr files, folders or globs).")
    var inputs: [String]

    @Option(name: [.short, .customLong("output")], help: "Output file (one input) or folder.")
    var output: String?

    @Option(help: "Output pixel type: float32 or uint16.")
    var dtype: String = "float32"

    @Flag(help: "Test-time augmentation: average the 8 flips/rotations in XY.")
    var tta = false

    @Option(help: "Largest tile side in pixels (default 1024 in 2D; 64 in Z and 256 in YX in 3D).")
    var tile: Int?

    @Option(help: "Overlap of neighbouring tiles in pixels (default: twice the receptive radius + 16, at most half the tile).")
    var overlap: Int?

    @Option(help: "Which weights to use: best or last.")
    var weights: String = "best"

    @Option(help: "Diffusion models: samples per tile for the mean and std (default: the recipe's diffusion.samples).")
    var samples: Int?

    @Option(help: "Diffusion models: noise levels the sampler visits, e.g. 20 for DDIM (default: diffusion.steps).")
    var steps: Int?

    @Option(help: "Diffusion models: ddpm, ddim, pc or langevin (default: diffusion.sampler).")
    var sampler: String?

    @Option(help: "Diffusion models: seed of the samples.")
    var seed: UInt64 = 0

    @Option(help: "Diffusion models: where the per-pixel standard deviation goes (a file for one input, else a folder).")
    var std: String?

    @Option(name: .customLong("save-samples"), help: "Diffusion models: where the samples go (a C axis of --samples channels).")
    var saveSamples: String?

    @Option(name: .customLong("ensemble"), help: ArgumentHelp("Another checkpoint folder whose restoration is averaged with CHECKPOINT's (repeat for more; e.g. the same recipe trained with other seeds).", valueName: "checkpoint"))
    var ensemble: [String] = []

    @Option(help: "Label-free models whose targets were normalized per image: 'zscore' (default) keeps z-scores, 'target' maps them to the training targets' mean and standard deviation.")
    var scale: String = "zscore"

    @OptionGroup var threads: ThreadOptions

    func run() throws {
        func log(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
        let world: MPIWorld?
        do { world = try MPIWorld.start() } catch {
            log("lucid predict: \(error)")
            throw ExitCode(1)
        }
        threads.apply()
        do {
            guard let type = PixelType(rawValue: dtype), type == .float32 || type == .uint16 else {
                throw ValidationError("--dtype must be float32 or uint16, got '\(dtype)'")
            }
            guard let which = Checkpoint.Weights(rawValue: weights) else {
                throw ValidationError("--weights must be best or last, got '\(weights)'")
            }
            if let tile, tile <= 0 { throw ValidationError("--tile \(tile) must be positive") }
            if let overlap, overlap < 0 { throw ValidationError("--overlap \(overlap) must not be negative") }
            if let samples, samples < 1 { throw ValidationError("--samples \(samples) must be at least 1") }
            if let steps, steps < 1 { throw ValidationError("--steps \(steps) must be at least 1") }
            let kind = try sampler.map { name -> DiffusionSampler.Kind in
                guard let k = DiffusionSampler.Kind(rawValue: name) else {
                    throw ValidationError("--sampler must be one of \(DiffusionSampler.Kind.allCases.map(\.rawValue).joined(separator: ", ")), got '\(name)'")
                }
                return k
            }
            let sampling = SamplingOptions(samples: samples, steps: steps, sampler: kind, seed: seed, keepSamples: saveSamples != nil)
            guard scale == "zscore" || scale == "target" else {
                throw ValidationError("--scale must be zscore or target, got '\(scale)'")
            }
            func restorer(_ folder: String) throws -> ImagePredictor {
                let ckpt = try Checkpoint.load(directory: folder)
                if scale == "target" && ckpt.metadata.method != LabelFree.name {
                    throw ValidationError("--scale target applies to label-free models; \(folder) holds a \(ckpt.metadata.method) model, whose predictions are in its targets' (or inputs') units already")
                }
                var r = try ImagePredictor(checkpoint: ckpt, weights: which, tile: tile, overlap: overlap,
                                           testTimeAugmentation: tta, sampling: sampling)
                r.scaleToTarget = scale == "target"
                return r
            }
            let main = try restorer(checkpoint)
            let others = try ensemble.map(restorer)
            var extra: [String: String] = [:]
            if let std { extra["std"] = std }
            if let saveSamples { extra["samples"] = saveSamples }
            let start = Date()
            let written = try PredictionRun.run(restorer: main, ensemble: others, inputs: inputs, output: output, as: type,
                                                extraOutputs: extra, group: world, log: log)
            world?.finish()
            if (world?.rank ?? 0) == 0 {
                log(String(format: "restored %d image%@ in %.2f s%@", written.count, written.count == 1 ? "" : "s",
                           Date().timeIntervalSince(start), world.map { " on \($0.size) ranks" } ?? ""))
            }
        } catch let error as ValidationError {
            if let world { world.abort("lucid predict", error) }
            throw error
        } catch {
            if let world { world.abort("lucid predict", error) }
            log("lucid predict: \(error)")
            throw ExitCode(1)
        }
    }
}
