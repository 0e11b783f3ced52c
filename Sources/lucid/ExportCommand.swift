import ArgumentParser
import Foundation
import LucidInterop
import LucidRestore

/// `lucid export CHECKPOINT --format onnx|bioimageio -o PATH`: the trained network for other tools.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a trained model as ONNX or as a bioimage.io model package.",
        discussion: """
            --format onnx writes the network (opset 17, dynamic batch and spatial axes) with its normalization \
            described in the model's metadata_props. --format bioimageio writes a bioimage.io package (rdf.yaml \
            format 0.5, ONNX weights, test tensors cut from a training image or --test-image, cover image, README) \
            as a ZIP that bioimageio.core, deepImageJ and ilastik open. --author and --cite take NAME|AFFILIATION \
            and TEXT|DOI (or TEXT|URL); without --cite the method's paper is cited.
            """)

    @Argument(help: "Checkpoint folder written by `lucid train`.")
    var checkpoint: String

    @Option(help: "onnx or bioimageio.")
    var format: String

    @Option(name: [.short, .customLong("output")], help: "Output file (model.onnx, or model.zip for bioimageio).")
    var output: String

    @Option(help: "Which weights to export: best or last.")
    var weights: String = "best"

    @Option(help: "Package name (bioimageio).")
    var name: String?

    @Option(help: "Package description (bioimageio).")
    var description: String?

    @Option(help: "An author as NAME or NAME|AFFILIATION (bioimageio; repeat for several).")
    var author: [String] = []

    @Option(help: "A citation as TEXT or TEXT|DOI or TEXT|URL (bioimageio; repeat for several).")
    var cite: [String] = []

    @Option(help: "SPDX licence identifier (bioimageio).")
    var license: String = "CC-BY-4.0"

    @Option(help: "An extra tag (bioimageio; repeat for several).")
    var tag: [String] = []

    @Option(help: "Image to cut the test tensors from (bioimageio; default: the first training image).")
    var testImage: String?

    func run() throws {
        func log(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
        guard ["onnx", "bioimageio"].contains(format) else {
            throw ValidationError("--format must be onnx or bioimageio, got '\(format)'")
        }
        guard let which = Checkpoint.Weights(rawValue: weights) else {
            throw ValidationError("--weights must be best or last, got '\(weights)'")
        }
        func split(_ s: String) -> (String, String?) {
            guard let bar = s.lastIndex(of: "|") else { return (s, nil) }
            return (String(s[..<bar]).trimmingCharacters(in: .whitespaces), String(s[s.index(after: bar)...]).trimmingCharacters(in: .whitespaces))
        }
        do {
            let export = try ModelExport(checkpoint: Checkpoint.load(directory: checkpoint), weights: which)
            if format == "onnx" {
                try export.writeONNX(to: output)
                log("wrote \(output): ONNX opset \(ONNXExport.opset), input [batch, \(export.net.config.inChannels), \(export.net.config.dims == 3 ? "z, " : "")y, x] (multiples of \(export.net.sizeMultiple)), \(export.net.parameterCount) parameters")
                log("input normalization: \(export.inputNormalizationText)")
                log("output: \(export.outputNormalizationText)")
                return
            }
            let options = BioImageIOOptions(name: name, description: description,
                                            authors: author.map { split($0) }.map { (name: $0.0, affiliation: $0.1) },
                                            citations: cite.map { split($0) }.map { (text: $0.0, link: $0.1) },
                                            license: license, tags: tag, testImage: testImage)
            let package = try BioImageIOExport.write(export, options: options, to: output)
            log("wrote \(output): \(package.files.joined(separator: ", ")); test tensor \(package.testInputShape), inputs \(package.minimumSize) + k·\(export.net.sizeMultiple) pixels, halo \(package.halo)")
            if author.isEmpty { log("note: no --author given; bioimage.io asks for at least one") }
            if export.outputFollowsEachInput {
                log(export.fixedOutputMap == nil
                    ? "note: outputs stay in each input's normalized units (bioimage.io cannot undo a per-image normalization)"
                    : "note: outputs get the training targets' intensities; lucid predict also follows each input's brightness")
            }
        } catch {
            log("lucid export: \(error)")
            throw ExitCode(1)
        }
    }
}
