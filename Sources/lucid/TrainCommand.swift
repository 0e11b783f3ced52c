import ArgumentParser
import Foundation
import LucidCore
import LucidRestore

/// `lucid train RECIPE.yaml`: trains the recipe's model into its checkpoint folder.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a denoising/restoration model from a recipe.",
        discussion: """
            Writes lucid.json, weights_best/last.safetensors, metrics.csv and the resolved recipe.yaml into \
            the recipe's output folder (or --output). Ctrl-C saves the current state; --resume continues it.
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
        threads.apply()
        do {
            let parsed = try Recipe.load(path: recipe, overrides: overrides)
            let trainer = Trainer(recipe: parsed, output: output, resume: resume)
            Trainer.installInterruptHandler()
            let summary = try trainer.run()
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
            FileHandle.standardError.write(Data("lucid train: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
