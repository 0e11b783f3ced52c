import ArgumentParser
import Foundation
import LucidCore
import LucidImaging
import LucidOptics
import LucidRestore

/// `lucid simulate`: simulated acquisitions — a clean image degraded through a PSF and noise
/// (the default), or a synthetic brightfield/fluorescence dataset.
struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Simulate acquisitions: degrade a clean image (default), or write a synthetic brightfield dataset.",
        subcommands: [SimulateImage.self, SimulateBrightfield.self],
        defaultSubcommand: SimulateImage.self)
}

/// `lucid simulate [image] IN …`: degrade a clean image into a simulated acquisition.
struct SimulateImage: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
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

/// `lucid simulate brightfield`: paired brightfield (signal) and nuclei fluorescence (target)
/// images of synthetic cells, with a pytorch_fnet-style `pairs.csv`.
struct SimulateBrightfield: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "brightfield",
        abstract: "Write synthetic brightfield → fluorescence pairs (signal/, target/, pairs.csv) for label-free prediction.")
    /// The generator's own defaults, shown by `--help`.
    static let defaults = SyntheticBrightfield(shape: [256, 256])

    @Option(name: .shortAndLong, help: "Output folder (created if missing).") var output: String
    @Option(help: "Number of pairs; the last 20% are marked test in pairs.csv.") var count: Int = 10
    @Option(help: "Image shape: Y,X or Z,Y,X.") var shape: String = "256,256"
    @Option(help: "Seed of the first pair (pair i uses seed + i).") var seed: UInt64 = 0
    @Option(help: "Mean photo-electrons per pixel of unobstructed illumination.") var photons: Double = Self.defaults.photons
    @Option(name: .customLong("read-noise"), help: "Gaussian read noise (electrons rms).") var readNoise: Double = Self.defaults.readNoise
    @Option(help: "Focal plane beyond the specimen (2D) or each slice (3D), µm.") var defocus: Double = Self.defaults.defocus
    @Option(help: "Peak-to-peak illumination shading, a fraction of the mean.") var shading: Double = Self.defaults.shading
    @Option(help: "Illumination wavelength (µm).") var wavelength: Double = Self.defaults.optics.wavelength
    @Option(name: .customLong("pixel-size"), help: "Pixel size (µm).") var pixelSize: Double = Self.defaults.optics.pixelSize
    @Option(name: .customLong("z-step"), help: "Slice thickness of 3D stacks (µm).") var zStep: Double = Self.defaults.zStep
    @Option(name: .customLong("na-objective"), help: "Objective numerical aperture.") var naObjective: Double = Self.defaults.optics.objectiveNA
    @Option(name: .customLong("na-condenser"), help: "Condenser numerical aperture (≤ objective NA).") var naCondenser: Double = Self.defaults.optics.condenserNA
    @Option(name: .customLong("index-contrast"), help: "Refractive index of the cytoplasm above the medium's.") var indexContrast: Double = Self.defaults.indexContrast
    @Option(help: "Amplitude absorption of nuclei per µm.") var absorption: Double = Self.defaults.absorption

    func parsedShape() throws -> [Int] {
        let parts = shape.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2 || parts.count == 3, parts.allSatisfy({ ($0 ?? 0) >= 8 }) else {
            throw ValidationError("--shape \(shape) must be Y,X or Z,Y,X with every extent ≥ 8 (e.g. 256,256 or 32,128,128)")
        }
        return parts.compactMap { $0 }
    }

    func validate() throws {
        _ = try parsedShape()
        if count < 1 { throw ValidationError("--count \(count) must be at least 1") }
    }

    func run() throws {
        var generator = SyntheticBrightfield(shape: try parsedShape(), seed: seed)
        generator.photons = photons
        generator.readNoise = readNoise
        generator.defocus = defocus
        generator.shading = shading
        generator.zStep = zStep
        generator.indexContrast = indexContrast
        generator.absorption = absorption
        generator.optics.wavelength = wavelength
        generator.optics.pixelSize = pixelSize
        generator.optics.objectiveNA = naObjective
        generator.optics.condenserNA = naCondenser
        let split = try generator.writeDataset(to: output, count: count)
        print("wrote \(count) pairs \(generator.specimen.shape) to \(output) (pairs.csv: \(split.train) train, \(split.test) test)")
    }
}
