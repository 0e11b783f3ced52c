import ArgumentParser

/// The `lucid` command line: train, predict and evaluate restoration models, and the PSF tools.
@main
struct Lucid: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lucid",
        abstract: "Denoise and restore microscopy images with deep learning and optics.",
        version: "0.1.0",
        subcommands: [TrainCommand.self, PredictCommand.self, EvaluateCommand.self, DemoCommand.self,
                      PSFCommand.self, DeconvolveCommand.self, SimulateCommand.self, RecipeCommand.self, Bench.self]
    )
}
