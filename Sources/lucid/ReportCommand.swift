import ArgumentParser
import Foundation
import LucidRestore

/// `lucid report CHECKPOINT`: regenerates the checkpoint's report.html.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Regenerate a checkpoint's HTML training report (report.html) from metrics.csv and the checkpoint.",
        discussion: """
            `lucid train` keeps CHECKPOINT/report.html up to date at every validation: loss, validation metrics, \
            learning rate and throughput over the steps, and validation examples (input | prediction | target). \
            This command writes it again, with examples from the last weights on the recipe's data (when its \
            files are still readable from here).
            """)

    @Argument(help: "Checkpoint folder written by `lucid train`.")
    var checkpoint: String

    func run() throws {
        func log(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
        do {
            if let missing = try TrainingReport.regenerate(checkpointFolder: checkpoint) { log("note: \(missing)") }
            log("wrote \((checkpoint as NSString).appendingPathComponent(TrainingReport.fileName))")
        } catch {
            log("lucid report: \(error)")
            throw ExitCode(1)
        }
    }
}
