import ArgumentParser
import Foundation
import LucidCore
import LucidImaging
import LucidOptics

/// `lucid psf`: compute PSF models or measure beads.
struct PSFCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "psf",
        abstract: "Compute a PSF model (written as a float32 TIFF, sum 1) or measure beads.",
        subcommands: [PSFBornWolf.self, PSFGibsonLanni.self, PSFConfocal.self, PSFGaussian.self, PSFAiry.self, PSFMeasure.self])
}

/// Options every PSF model takes.
struct LateralOptions: ParsableArguments {
    @Option(help: "Numerical aperture.") var na: Double = 1.4
    @Option(help: "Emission wavelength (µm).") var wavelength: Double = 0.52
    @Option(help: "Immersion refractive index.") var ni: Double = 1.518
    @Option(help: "Lateral pixel size (µm).") var dxy: Double = 0.1
    @Option(help: "Lateral box size (odd).") var nxy: Int = 33
    @Option(help: "Sub-samples per pixel side (pixel integration).") var oversample: Int = 3
    @Option(name: .shortAndLong, help: "Output TIFF.") var output: String

    func config(_ model: PSFModel) -> PSFConfig {
        PSFConfig(model: model, na: na, wavelength: wavelength, ni: ni, dxy: dxy, nxy: nxy, oversample: oversample)
    }
}

/// Axial sampling of 3-D models.
struct AxialOptions: ParsableArguments {
    @Option(help: "Axial step (µm).") var dz: Double = 0.2
    @Option(help: "Axial box size (odd).") var nz: Int = 33
}

/// Generates `config`'s PSF and writes it with its calibration.
func writePSF(_ config: PSFConfig, to path: String) throws {
    let psf = try config.generate()
    let image = Image(data: psf, axes: psf.rank == 3 ? "ZYX" : "YX", pixelSize: config.dxy,
                      zSpacing: psf.rank == 3 ? config.dz : nil)
    try image.write(to: path, as: .float32)
    print("wrote \(path): \(config.model.rawValue) PSF \(psf.shape)")
}

struct PSFBornWolf: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "born-wolf", abstract: "3-D scalar widefield PSF.")
    @OptionGroup var lateral: LateralOptions
    @OptionGroup var axial: AxialOptions

    func run() throws {
        var c = lateral.config(.bornWolf)
        c.dz = axial.dz; c.nz = axial.nz
        try writePSF(c, to: lateral.output)
    }
}

struct PSFGibsonLanni: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gibson-lanni",
                                                    abstract: "3-D widefield PSF with refractive-index mismatch (Gibson–Lanni).")
    @OptionGroup var lateral: LateralOptions
    @OptionGroup var axial: AxialOptions
    @Option(help: "Design immersion index (default: --ni).") var ni0: Double?
    @Option(help: "Sample refractive index (default: --ni).") var ns: Double?
    @Option(help: "Coverslip refractive index.") var ng: Double = 1.515
    @Option(help: "Design coverslip index (default: --ng).") var ng0: Double?
    @Option(help: "Design immersion thickness / working distance (µm).") var ti0: Double = 150
    @Option(help: "Coverslip thickness (µm).") var tg: Double = 170
    @Option(help: "Design coverslip thickness (default: --tg).") var tg0: Double?
    @Option(help: "Depth of the source below the coverslip (µm, psfmodels' pz); the centre plane is the nominal focus on it, planes further into the sample follow.") var pz: Double = 0

    func run() throws {
        var c = lateral.config(.gibsonLanni)
        c.dz = axial.dz; c.nz = axial.nz
        c.ni0 = ni0; c.ns = ns; c.ng = ng; c.ng0 = ng0; c.ti0 = ti0; c.tg = tg; c.tg0 = tg0; c.pz = pz
        try writePSF(c, to: lateral.output)
    }
}

struct PSFConfocal: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "confocal",
                                                    abstract: "Confocal PSF: excitation × (emission ⊗ pinhole).")
    @OptionGroup var lateral: LateralOptions
    @OptionGroup var axial: AxialOptions
    @Option(help: "Pinhole diameter in Airy units.") var pinhole: Double = 1
    @Option(name: .customLong("ex-wavelength"), help: "Excitation wavelength (µm; default: --wavelength).") var exWavelength: Double?

    func run() throws {
        var c = lateral.config(.confocal)
        c.dz = axial.dz; c.nz = axial.nz
        c.pinhole = pinhole; c.exWavelength = exWavelength
        try writePSF(c, to: lateral.output)
    }
}

struct PSFGaussian: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gaussian",
        abstract: "Gaussian PSF: σ or FWHM given (µm), else matched to the widefield optics.")
    @OptionGroup var lateral: LateralOptions
    @OptionGroup var axial: AxialOptions
    @Option(name: .customLong("sigma-xy"), help: "Lateral σ (µm).") var sigmaXY: Double?
    @Option(name: .customLong("sigma-z"), help: "Axial σ (µm).") var sigmaZ: Double?
    @Option(name: .customLong("fwhm-xy"), help: "Lateral FWHM (µm).") var fwhmXY: Double?
    @Option(name: .customLong("fwhm-z"), help: "Axial FWHM (µm).") var fwhmZ: Double?
    @Flag(name: .customLong("2d"), help: "A 2-D PSF (ignores --dz/--nz).") var flat = false

    func run() throws {
        var c = lateral.config(.gaussian)
        if !flat { c.dz = axial.dz; c.nz = axial.nz }
        c.sigmaXY = sigmaXY; c.sigmaZ = sigmaZ; c.fwhmXY = fwhmXY; c.fwhmZ = fwhmZ
        try writePSF(c, to: lateral.output)
    }
}

struct PSFAiry: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "airy", abstract: "2-D widefield Airy pattern.")
    @OptionGroup var lateral: LateralOptions

    func run() throws { try writePSF(lateral.config(.airy), to: lateral.output) }
}

/// `lucid psf measure`: FWHM of beads and their average.
struct PSFMeasure: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "measure",
        abstract: "Measure the FWHM of beads (or of a PSF) and average the beads into an experimental PSF.")
    @Argument(help: "Bead image or PSF (2-D or 3-D TIFF).") var input: String
    @Option(help: "Box around each bead (odd; default 21, shrunk to fit).") var box: Int?
    @Option(help: "Detection threshold (default: halfway between median and maximum).") var threshold: Float?
    @Option(help: "Lateral pixel size (µm; default: from the file).") var dxy: Double?
    @Option(help: "Axial step (µm; default: from the file).") var dz: Double?
    @Option(name: .shortAndLong, help: "Write the averaged PSF here.") var output: String?

    func validate() throws {
        if let box, box < 3 || box % 2 == 0 { throw ValidationError("--box \(box) must be odd and at least 3") }
    }

    func run() throws {
        let image = try Image.read(input)
        let data = image.data
        guard data.rank == 2 || data.rank == 3, image.axes == "YX" || image.axes == "ZYX" else {
            throw ValidationError("\(input) has axes \(image.axes); measure needs a YX image or a ZYX stack")
        }
        let spacing = (data.rank == 3 ? [dz ?? image.zSpacing] : []) + [dxy ?? image.pixelSize, dxy ?? image.pixelSize]
        let names = data.rank == 3 ? ["z", "y", "x"] : ["y", "x"]
        func describe(_ m: PSFMeasurementResult) -> String {
            let widths = zip(names, zip(m.fwhm, spacing)).reversed().map { name, w in
                w.1.map { String(format: "%@ %.4f µm", name, w.0 * $0) } ?? String(format: "%@ %.3f px", name, w.0)
            }
            let at = m.center.map { String(format: "%.2f", $0) }.joined(separator: ", ")
            return "at (\(at)): FWHM " + widths.joined(separator: ", ")
        }
        let side = box ?? 21
        let boxShape = data.shape.map { n in min(side, n % 2 == 1 ? n : n - 1) }
        let (psf, beads) = try PSFMeasurement.averageBeads(data, box: boxShape, threshold: threshold)
        for (i, b) in beads.enumerated() { print("bead \(i + 1) \(describe(b))") }
        let average = try PSFMeasurement.measure(psf)
        print("average of \(beads.count) bead(s) \(describe(average))")
        if let output {
            try Image(data: psf, axes: image.axes, pixelSize: dxy ?? image.pixelSize, zSpacing: dz ?? image.zSpacing)
                .write(to: output, as: .float32)
            print("wrote \(output): averaged PSF \(psf.shape)")
        }
    }
}
