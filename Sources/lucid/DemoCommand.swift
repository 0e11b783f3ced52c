import ArgumentParser
import Foundation
import LucidCore
import LucidRestore

/// `lucid demo [noise2self]` and `lucid demo labelfree`: train on synthetic data, predict, score.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Demos on synthetic data: Noise2Self denoising (default), label-free prediction (labelfree), or a diffusion model with its uncertainty (diffusion).",
        subcommands: [DemoNoise2Self.self, DemoLabelFree.self, DemoDiffusion.self],
        defaultSubcommand: DemoNoise2Self.self)
}

/// Writes one line to stderr.
private func logLine(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

/// `lucid demo`: synthetic specimen → noise → Noise2Self → restoration, with before/after scores.
struct DemoNoise2Self: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "noise2self",
        abstract: "Train Noise2Self on a synthetic noisy specimen and restore it (what `lucid demo` runs).",
        discussion: """
            Writes noisy.tif, clean.tif, restored.tif, comparison.png (noisy | restored | clean) and \
            metrics.json into the output folder, and prints PSNR/SSIM before and after.
            """)

    @Option(name: [.short, .customLong("output")], help: "Output folder.")
    var output = "demo"

    @Option(help: "Training time budget in seconds.")
    var seconds: Double = 120

    @Option(help: "Side of the square specimen in pixels.")
    var size = 512

    @OptionGroup var threads: ThreadOptions

    func run() throws {
        threads.apply()
        do {
            guard size >= 64 else { throw ValidationError("--size \(size) must be at least 64") }
            guard seconds > 0 else { throw ValidationError("--seconds \(seconds) must be positive") }
            var demo = Demo()
            demo.output = output
            demo.seconds = seconds
            demo.size = size
            let r = try demo.run(log: logLine)
            print(String(format: "noisy:    PSNR %.2f dB, SSIM %.4f", r.noisy.psnr, r.noisy.ssim))
            print(String(format: "restored: PSNR %.2f dB, SSIM %.4f  (%d steps)", r.restored.psnr, r.restored.ssim, r.steps))
            print("wrote \(output)/restored.tif, \(output)/comparison.png, \(output)/metrics.json")
        } catch let error as ValidationError {
            throw error
        } catch {
            logLine("lucid demo: \(error)")
            throw ExitCode(1)
        }
    }
}

/// `lucid demo labelfree`: synthetic brightfield/fluorescence pairs → label-free training →
/// prediction of the held-out pairs, with their Pearson r.
struct DemoLabelFree: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "labelfree",
        abstract: "Train label-free prediction (brightfield → nuclei fluorescence) on synthetic pairs and predict held-out ones.",
        discussion: """
            Simulates brightfield/fluorescence pairs (as `lucid simulate brightfield`, into OUTPUT/data, the \
            last 20% held out), trains the label-free U-Net recipe on the others (depth 2, 64×64 patches, \
            batch 8, lr 1e-3; 3D shapes: a 3D U-Net on 16×64×64 patches, batch 4; --filters 32 gives the \
            issue's 2D recipe exactly), predicts the held-out brightfield images and writes brightfield.tif, \
            predicted.tif, truth.tif, comparison.png (brightfield | predicted | truth) and metrics.json \
            (Pearson r per held-out image and the mean) into the output folder.
            """)

    @Option(name: [.short, .customLong("output")], help: "Output folder.")
    var output = "demo-labelfree"

    @Option(help: "Training time budget in seconds.")
    var seconds: Double = 120

    @Option(help: "Shape of every image: Y,X or Z,Y,X (at least 64 in Y and X, 16 in Z).")
    var shape = "256,256"

    @Option(help: "Image pairs to simulate; the last 20% are held out.")
    var pairs = 12

    @Option(help: "Filters of the U-Net's first level (the issue's 2D recipe: 32; 16 trains about 3.4× faster a step).")
    var filters = 16

    @OptionGroup var threads: ThreadOptions

    func run() throws {
        threads.apply()
        var demo = LabelFreeDemo()
        demo.output = output
        demo.seconds = seconds
        demo.pairs = pairs
        demo.filters = filters
        let parts = shape.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2 || parts.count == 3, parts.allSatisfy({ $0 != nil }) else {
            throw ValidationError("--shape \(shape) must be Y,X or Z,Y,X (e.g. 256,256 or 32,128,128)")
        }
        demo.shape = parts.compactMap { $0 }
        do {
            try demo.validate()
        } catch {
            throw ValidationError("\(error)")
        }
        do {
            let r = try demo.run(log: logLine)
            for h in r.heldOut {
                print(String(format: "held out %@: Pearson r %.4f (brightfield itself: %.4f)", h.signal, h.pearson, h.brightfieldPearson))
            }
            print(String(format: "mean Pearson r %.4f over %d held-out images (%d training pairs, %d steps, %.0f s of training)",
                         r.meanPearson, r.heldOut.count, r.trainingPairs, r.steps, r.trainingSeconds))
            print("wrote \(output)/predicted.tif, \(output)/comparison.png, \(output)/metrics.json")
        } catch {
            logLine("lucid demo labelfree: \(error)")
            throw ExitCode(1)
        }
    }
}

/// `lucid demo diffusion`: a diffusion model restores a synthetic specimen, with a std map.
struct DemoDiffusion: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diffusion",
        abstract: "Train a diffusion model on a synthetic specimen and sample its restorations: mean and per-pixel std.",
        discussion: """
            conditional (default): specimens blurred by a Gaussian PSF (σ 1.5 px) at 20 photons with read noise 2 \
            train a conditional diffusion model (into OUTPUT/data and OUTPUT/checkpoint); a held-out acquisition is \
            sampled --samples times with --steps DDIM steps. selfsupervised: the noisy specimen of `lucid demo` trains \
            the self-supervised score model alone. Writes input.tif, mean.tif, std.tif, clean.tif, comparison.png \
            (input | mean | std | clean) and metrics.json (PSNR/SSIM of input and mean, Spearman ρ of std and error).
            """)

    @Option(help: "conditional or selfsupervised.")
    var mode: String = "conditional"

    @Option(name: [.short, .customLong("output")], help: "Output folder.")
    var output = "demo-diffusion"

    @Option(help: "Training time budget in seconds.")
    var seconds: Double = 120

    @Option(help: "Samples per tile (selfsupervised: recorruptions).")
    var samples = 8

    @Option(help: "DDIM steps per sample.")
    var steps = 20

    @Option(help: "Seed of the synthetic specimens, their noise and the sampling.")
    var seed: UInt64 = 1

    @OptionGroup var threads: ThreadOptions

    func run() throws {
        threads.apply()
        var demo = DiffusionDemo()
        guard let m = Diffusion.Mode(rawValue: mode), m != .unconditional else {
            throw ValidationError("--mode must be conditional or selfsupervised, got '\(mode)'")
        }
        demo.mode = m
        demo.output = output
        demo.seconds = seconds
        demo.samples = samples
        demo.steps = steps
        demo.seed = seed
        do { try demo.validate() } catch { throw ValidationError("\(error)") }
        do {
            let r = try demo.run(log: logLine)
            print(String(format: "input: PSNR %.2f dB, SSIM %.4f", r.input.psnr, r.input.ssim))
            print(String(format: "mean:  PSNR %.2f dB, SSIM %.4f  (%d training steps, %d samples)", r.mean.psnr, r.mean.ssim, r.steps, samples))
            print(String(format: "std vs actual error: Spearman rho %.3f", r.stdErrorSpearman))
            print("wrote \(output)/mean.tif, \(output)/std.tif, \(output)/comparison.png, \(output)/metrics.json")
        } catch {
            logLine("lucid demo diffusion: \(error)")
            throw ExitCode(1)
        }
    }
}
