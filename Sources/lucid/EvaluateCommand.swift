import ArgumentParser
import Foundation
import LucidImaging
import LucidRestore

/// `lucid evaluate PRED.tif --reference GT.tif`: image-quality metrics as JSON.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Score a restored image against a reference (PSNR, SSIM, NRMSE, Pearson r).",
        discussion: """
            Prints one JSON object on stdout and a table on stderr. SSIM uses scikit-image's Gaussian \
            window (σ 1.5). The data range defaults to max − min of the reference. Several channels are \
            scored separately ("channels") and averaged.
            """)

    @Argument(help: "The restored image.")
    var prediction: String

    @Option(help: "The ground-truth image (same shape).")
    var reference: String

    @Option(name: .customLong("metric"), parsing: .singleValue, help: "psnr, ssim, nrmse or pearson (repeatable; default all).")
    var metrics: [String] = []

    @Option(name: .customLong("data-range"), help: "Data range for PSNR and SSIM.")
    var dataRange: Double?

    func run() throws {
        do {
            let p = try Image.read(prediction), r = try Image.read(reference)
            let result: (json: String, table: String)
            do {
                result = try PredictionEvaluation.evaluate(p, reference: r, metrics: metrics, dataRange: dataRange)
            } catch {
                throw PredictionError(path: prediction, reason: "against '\(reference)': \(error)")
            }
            FileHandle.standardError.write(Data(result.table.utf8))
            print(result.json)
        } catch {
            FileHandle.standardError.write(Data("lucid evaluate: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
