import ArgumentParser
import Foundation
import LucidCore
import LucidImaging
import LucidOptics

/// `lucid simulate`: degrade a clean image into a simulated acquisition.
struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Blur a clean image with a PSF, down-sample, add Poisson and read noise, apply gain/offset and quantize.")

    @Argument(help: "Clean image (YX or ZYX TIFF).") var input: String
    @Option(help: "PSF (TIFF, same rank as the image); omit for noise only.") var psf: String?
    @Option(help: "Expected photons at the brightest pixel of the blurred image.") var photons: Double
    @Option(name: .customLong("read-noise"), help: "Gaussian read noise (electrons rms).") var readNoise: Double = 0
    @Option(help: "Gain (ADU per electron).") var gain: Double = 1
    @Option(help: "Offset (ADU).") var offset: Double = 0
    @Option(name: .customLong("downsample-z"), help: "Keep every n-th plane.") var downsampleZ: Int = 1
    @Option(name: .customLong("downsample-xy"), help: "Average n×n pixel blocks.") var downsampleXY: Int = 1
    @Option(help: "Quantize to unsigned integers of this many bits (0: keep floats).") var bits: Int = 16
    @Option(help: "Edge handling of the blur: reflect, zero or periodic.") var boundary: Boundary = .reflect
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(name: .shortAndLong, help: "Output TIFF (uint16 when quantized to ≤ 16 bits, else float32).") var output: String

    func run() throws {
        var image = try Image.read(input)
        guard image.axes == "YX" || image.axes == "ZYX" else {
            throw ValidationError("\(input) has axes \(image.axes); simulate needs a YX image or a ZYX stack")
        }
        let kernel = try psf.map { try Image.read($0).data }
        let downsample = downsampleZ == 1 && downsampleXY == 1 ? nil : Downsample(z: downsampleZ, xy: downsampleXY)
        let config = SimulationConfig(photons: photons, readNoise: readNoise, gain: gain, offset: offset,
                                      downsample: downsample, bits: bits == 0 ? nil : bits, boundary: boundary)
        let simulator = try DegradationSimulator(config: config, psf: kernel)
        var rng = RandomGenerator(seed: seed)
        image.data = try simulator.degrade(image.data, rng: &rng)
        if let d = downsample {
            image.pixelSize = image.pixelSize.map { $0 * Double(d.xy) }
            if image.data.rank == 3 { image.zSpacing = image.zSpacing.map { $0 * Double(d.z) } }
        }
        try image.write(to: output, as: bits > 0 && bits <= 16 ? .uint16 : .float32)
        print("wrote \(output): \(image.data.shape)")
    }
}
