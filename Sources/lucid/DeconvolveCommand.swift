import ArgumentParser
import Foundation
import LucidCore
import LucidImaging
import LucidOptics

extension Boundary: ExpressibleByArgument {}
extension TikhonovRegularizer: ExpressibleByArgument {}
extension PixelType: ExpressibleByArgument {}

/// `lucid deconvolve`: Richardson–Lucy or Tikhonov deconvolution of a 2-D image or 3-D stack.
struct DeconvolveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deconvolve",
        abstract: "Deconvolve a YX image or ZYX stack with a PSF (Richardson–Lucy by default).")

    enum Method: String, ExpressibleByArgument { case rl, tikhonov }

    @Argument(help: "Image to deconvolve (TIFF).") var input: String
    @Option(help: "PSF (TIFF, same rank as the image; normalized to sum 1).") var psf: String
    @Option(help: "rl (Richardson–Lucy) or tikhonov.") var method: Method = .rl
    @Option(help: "Richardson–Lucy iterations.") var iterations: Int = 20
    @Option(help: "Total-variation weight for Richardson–Lucy (e.g. 0.002).") var tv: Float = 0
    @Option(help: "Stop Richardson–Lucy when the relative change drops below this.") var tolerance: Float?
    @Option(help: "Tikhonov regularization weight.") var regularization: Float = 1e-3
    @Option(help: "Tikhonov regularizer: identity or laplacian.") var regularizer: TikhonovRegularizer = .identity
    @Option(help: "Edge handling: reflect, zero or periodic (no padding, least memory).") var boundary: Boundary = .reflect
    @Option(name: .customLong("as"), help: "Output pixel type: float32, uint16, uint8, int16.") var pixelType: PixelType = .float32
    @Option(name: .shortAndLong, help: "Output TIFF.") var output: String

    func validate() throws {
        if iterations < 1 { throw ValidationError("--iterations must be at least 1") }
        if tv < 0 { throw ValidationError("--tv must be ≥ 0") }
    }

    func run() throws {
        var image = try Image.read(input)
        let kernel = try Image.read(psf).data
        guard image.axes == "YX" || image.axes == "ZYX" else {
            throw ValidationError("\(input) has axes \(image.axes); deconvolve needs a YX image or a ZYX stack")
        }
        guard kernel.rank == image.data.rank else {
            throw ValidationError("the PSF \(psf) has shape \(kernel.shape) but the image has shape \(image.data.shape): ranks must match")
        }
        let start = Date()
        switch method {
        case .rl:
            let options = RichardsonLucyOptions(iterations: iterations, tv: tv, tolerance: tolerance, boundary: boundary,
                                                progress: true)
            let data = image.data
            image.data = Tensor(zeros: [0])
            let result = try Deconvolution.richardsonLucy(data, psf: kernel, options: options)
            image.data = result.image
            print(String(format: "Richardson–Lucy: %d iterations, last relative change %.3e, %.2f s",
                         result.iterations, result.lastChange, Date().timeIntervalSince(start)))
        case .tikhonov:
            image.data = try Deconvolution.tikhonov(image.data, psf: kernel, regularization: regularization,
                                                    regularizer: regularizer, boundary: boundary)
            print(String(format: "Tikhonov (%@, λ = %g): %.2f s", regularizer.rawValue, regularization, Date().timeIntervalSince(start)))
        }
        try image.write(to: output, as: pixelType)
        print("wrote \(output): \(image.data.shape)")
    }
}
