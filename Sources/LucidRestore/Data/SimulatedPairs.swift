import Foundation
import LucidCore
import LucidImaging
import LucidOptics

extension PSFSpec {
    /// PSF parameter names a recipe may give (LucidOptics' `PSFConfig` keys, lengths in µm),
    /// with the aliases `pixel_size` (= `dxy`), `sigma` (= `sigma_xy`) and `fwhm` (= `fwhm_xy`).
    public static let parameterNames = ["na", "wavelength", "ex_wavelength", "ni", "ni0", "ns", "ng", "ng0", "ti0",
                                        "tg", "tg0", "pz", "dxy", "pixel_size", "dz", "nxy", "nz", "sigma_xy", "sigma",
                                        "sigma_z", "fwhm_xy", "fwhm", "fwhm_z", "pinhole", "oversample"]
    /// The parameters that are counts (whole numbers).
    public static let integerParameterNames: Set<String> = ["nxy", "nz", "oversample"]

    /// The LucidOptics configuration of a model PSF (nil for a PSF file).
    public func config() -> PSFConfig? {
        guard case let .model(model, parameters) = self else { return nil }
        var c = PSFConfig(model: LucidOptics.PSFModel(rawValue: model.rawValue)!)
        for (name, v) in parameters {
            switch name {
            case "na": c.na = v
            case "wavelength": c.wavelength = v
            case "ex_wavelength": c.exWavelength = v
            case "ni": c.ni = v
            case "ni0": c.ni0 = v
            case "ns": c.ns = v
            case "ng": c.ng = v
            case "ng0": c.ng0 = v
            case "ti0": c.ti0 = v
            case "tg": c.tg = v
            case "tg0": c.tg0 = v
            case "pz": c.pz = v
            case "dxy", "pixel_size": c.dxy = v
            case "dz": c.dz = v
            case "nxy": c.nxy = Int(v)
            case "nz": c.nz = Int(v)
            case "sigma_xy", "sigma": c.sigmaXY = v
            case "sigma_z": c.sigmaZ = v
            case "fwhm_xy", "fwhm": c.fwhmXY = v
            case "fwhm_z": c.fwhmZ = v
            case "pinhole": c.pinhole = v
            case "oversample": c.oversample = Int(v)
            default: break   // the recipe validator admits only `parameterNames`
            }
        }
        return c
    }
}

/// CARE inputs simulated from clean targets (`data.simulate`): blur by the PSF, a constant
/// background, Poisson shot noise with `photons` at the brightest blurred pixel, Gaussian read
/// noise; in photo-electrons, unquantized, same shape as the target.
struct SimulatedPairs {
    let simulator: DegradationSimulator
    let psf: Tensor
    /// Background photons over the signal's peak photons.
    let backgroundFraction: Float

    /// Builds the PSF of `simulation` for images of `spatialRank` axes.
    init(_ simulation: Simulation, spatialRank: Int) throws {
        let psf: Tensor
        switch simulation.psf {
        case .file(let path):
            let image = try Image.read(path)
            psf = try image.data.reshaped(image.data.shape.filter { $0 != 1 })
        case .model:
            let config = simulation.psf.config()!
            if spatialRank == 3 && config.nz == nil {
                throw TrainingDataError(path: "data.simulate.psf", reason: "3-D data (data.axes ZYX or CZYX) needs a 3-D PSF: give nz (odd plane count) and dz")
            }
            do { psf = try config.generate() } catch {
                throw TrainingDataError(path: "data.simulate.psf", reason: "\(error)")
            }
        }
        guard psf.rank == spatialRank else {
            throw TrainingDataError(path: "data.simulate.psf", reason: "PSF of shape \(psf.shape) is \(psf.rank)-D but the data has \(spatialRank) spatial axes")
        }
        self.psf = psf
        backgroundFraction = Float(simulation.background / simulation.photons)
        simulator = try DegradationSimulator(config: SimulationConfig(photons: simulation.photons + simulation.background,
                                                                      readNoise: simulation.readNoise, bits: nil))
    }

    /// The simulated acquisition of a `[C, spatial…]` target, channel by channel.
    func degrade(_ target: Tensor, rng: inout RandomGenerator) throws -> Tensor {
        let spatial = Array(target.shape.dropFirst())
        let n = spatial.reduce(1, *)
        var out = Tensor(uninitialized: target.shape)
        for c in 0..<target.shape[0] {
            var plane = Tensor(uninitialized: spatial)
            plane.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: target.storage.base + c * n, count: n) }
            var blurred = try fftConvolve(plane, psf, boundary: simulator.config.boundary)
            // Background b photons: adding b/photons of the peak keeps `photons` at the signal's peak.
            let shift = backgroundFraction * blurred.withUnsafeBufferPointer { $0.max() ?? 0 }
            if shift != 0 { blurred.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] += shift } } }
            let noisy = try simulator.degrade(blurred, rng: &rng)
            out.withUnsafeMutableBufferPointer { o in
                noisy.withUnsafeBufferPointer { (o.baseAddress! + c * n).update(from: $0.baseAddress!, count: n) }
            }
        }
        return out
    }
}
