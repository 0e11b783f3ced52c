import ArgumentParser
import LucidCore

/// The `lucid` command line: train, predict, evaluate and export restoration models, and the PSF tools.
@main
struct Lucid: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lucid",
        abstract: "Denoise and restore microscopy images with deep learning and optics.",
        version: lucidVersion,
        subcommands: [TrainCommand.self, PredictCommand.self, EvaluateCommand.self, ExportCommand.self, ReportCommand.self,
                      DemoCommand.self,
                      PSFCommand.self, DeconvolveCommand.self, SimulateCommand.self, RecipeCommand.self, Bench.self]
    )

    /// Keeps the plans measured on this machine (FFTW's, the convolution planner's) in
    /// `~/.cache/lucid` (or `LUCID_WISDOM`), so later runs skip planning.
    static func main() {
        Wisdom.useDefaultFolder()
        main(nil)
    }
}
