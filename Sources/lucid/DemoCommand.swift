import ArgumentParser
import Foundation
import LucidCore
import LucidRestore

/// `lucid demo`: synthetic specimen → noise → Noise2Self → restoration, with before/after scores.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Train Noise2Self on a synthetic noisy specimen and restore it.",
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

    @Option(help: "Threads for Lucid and OpenBLAS (default: all cores).")
    var threads: Int?

    func run() throws {
        if let threads { Threads.count = threads }
        func log(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
        do {
            guard size >= 64 else { throw ValidationError("--size \(size) must be at least 64") }
            guard seconds > 0 else { throw ValidationError("--seconds \(seconds) must be positive") }
            var demo = Demo()
            demo.output = output
            demo.seconds = seconds
            demo.size = size
            let r = try demo.run(log: log)
            print(String(format: "noisy:    PSNR %.2f dB, SSIM %.4f", r.noisy.psnr, r.noisy.ssim))
            print(String(format: "restored: PSNR %.2f dB, SSIM %.4f  (%d steps)", r.restored.psnr, r.restored.ssim, r.steps))
            print("wrote \(output)/restored.tif, \(output)/comparison.png, \(output)/metrics.json")
        } catch let error as ValidationError {
            throw error
        } catch {
            log("lucid demo: \(error)")
            throw ExitCode(1)
        }
    }
}
