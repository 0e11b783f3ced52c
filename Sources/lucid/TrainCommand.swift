import ArgumentParser
import Foundation
import LucidCore
import LucidDistributed
import LucidRestore

/// `lucid train RECIPE.yaml`: trains the recipe's model into its checkpoint folder.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a denoising/restoration model from a recipe.",
        discussion: """
            Writes lucid.json, weights_best/last.safetensors, metrics.csv and the resolved recipe.yaml into \
            the recipe's output folder (or --output). Ctrl-C saves the current state; --resume continues it. \
            Under mpirun or srun each rank trains on its share of every (global) batch and rank 0 writes the files.
            """)

    @Argument(help: "The recipe (YAML).")
    var recipe: String

    @Option(name: .customLong("set"), parsing: .singleValue,
            help: "Override a recipe value, e.g. --set training.steps=200 (repeatable).")
    var overrides: [String] = []

    @Flag(help: "Continue the checkpoint in the output folder with the same optimizer state and random stream.")
    var resume = false

    @Option(name: [.short, .customLong("output")], help: "Checkpoint folder (default: the recipe's output).")
    var output: String?

    @OptionGroup var threads: ThreadOptions

    func run() throws {
        let world: MPIWorld?
        do { world = try MPIWorld.start() } catch {
            FileHandle.standardError.write(Data("lucid train: \(error)\n".utf8))
            throw ExitCode(1)
        }
        threads.apply()
        do {
            let parsed = try Recipe.load(path: recipe, overrides: overrides)
            let trainer = Trainer(recipe: parsed, output: output, resume: resume)
            trainer.dataParallel = world?.dataParallel
            Trainer.installInterruptHandler()
            if let world, world.rank == 0 {
                FileHandle.standardError.write(Data("data-parallel over \(world.size) ranks (\(world.localSize) on this machine, \(Threads.count) thread\(Threads.count == 1 ? "" : "s") each); training.batch \(parsed.training.batch) is the global batch\n".utf8))
            }
            let summary = try trainer.run()
            defer { world?.finish() }
            guard trainer.writesFiles else { return }
            var line = "\(summary.stop.rawValue) at step \(summary.step)"
            if let best = summary.bestValidationLoss, let step = summary.bestStep {
                line += String(format: ", best validation loss %.5g at step %d", best, step)
            }
            line += String(format: ", %.1f patches/s; checkpoint in %@", summary.patchesPerSecond, summary.output)
            if summary.stop == .interrupted { line += " (continue with --resume)" }
            FileHandle.standardError.write(Data((line + "\n").utf8))
        } catch let error as ExitCode {
            throw error
        } catch {
            if let world { world.abort("lucid train", error) }
            FileHandle.standardError.write(Data("lucid train: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
