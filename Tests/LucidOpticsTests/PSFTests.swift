import XCTest
import LucidCore
@testable import LucidOptics

final class PSFTests: XCTestCase {
    func testAiryLateralFWHMMatchesTheory() throws {
        let (na, lambda, dxy) = (1.2, 0.52, 0.01)
        let psf = try PSFConfig(model: .airy, na: na, wavelength: lambda, dxy: dxy, nxy: 101).generate()
        XCTAssertEqual(psf.shape, [101, 101])
        XCTAssertEqual(psf.scalars.reduce(0.0) { $0 + Double($1) }, 1, accuracy: 1e-4)
        let m = try PSFMeasurement.measure(psf)
        let theory = 0.51 * lambda / na
        for w in m.fwhm { XCTAssertEqual(w * dxy / theory, 1, accuracy: 0.02) }
        XCTAssertEqual(m.center[0], 50, accuracy: 1e-6)
    }

    /// On the axis a uniformly filled pupil with exact defocus gives, with `c = cos θ` and
    /// `a = k nᵢ z`, the amplitude `∫_{cos α}^1 c·exp(−i a c) dc = [exp(−i a c)(i c/a + 1/a²)]_{cos α}^1`.
    func testBornWolfAxialProfileIsTheUniformPupilsClosedForm() throws {
        let (na, lambda, ni, dz) = (1.2, 0.52, 1.33, 0.05)
        let config = PSFConfig(model: .bornWolf, na: na, wavelength: lambda, ni: ni, dxy: 0.05, dz: dz, nxy: 5, nz: 81, oversample: 1)
        let psf = try config.generate()
        let axis = (0..<81).map { Double(psf[$0, 2, 2]) }
        let peak = axis[40]
        let c0 = (1 - (na / ni) * (na / ni)).squareRoot()
        for (i, value) in axis.enumerated() {
            let a = 2 * Double.pi / lambda * ni * Double(i - 40) * dz
            var theory = 1.0
            if a != 0 {
                /// exp(−i a c)(i c/a + 1/a²) as (re, im).
                func f(_ c: Double) -> (Double, Double) {
                    let (x, y) = (1 / (a * a), c / a), (p, q) = (cos(a * c), -sin(a * c))
                    return (p * x - q * y, p * y + q * x)
                }
                let (re, im) = (f(1).0 - f(c0).0, f(1).1 - f(c0).1)
                theory = (re * re + im * im) / pow((1 - c0 * c0) / 2, 2)
            }
            XCTAssertEqual(value / peak, theory, accuracy: 0.01, "z = \(Double(i - 40) * dz) µm")
        }
        XCTAssertEqual(psf.scalars.reduce(0.0) { $0 + Double($1) }, 1, accuracy: 1e-4)
    }

    func testGibsonLanniWithoutMismatchEqualsBornWolf() throws {
        let bw = try PSFConfig(model: .bornWolf, na: 1.4, wavelength: 0.6, ni: 1.518, dxy: 0.08, dz: 0.15, nxy: 33, nz: 21).generate()
        let gl = try PSFConfig(model: .gibsonLanni, na: 1.4, wavelength: 0.6, ni: 1.518, ni0: 1.518, ns: 1.518, ng: 1.52,
                               ng0: 1.52, ti0: 150, tg: 170, tg0: 170, pz: 0, dxy: 0.08, dz: 0.15, nxy: 33, nz: 21).generate()
        let diff = zip(bw.scalars, gl.scalars).reduce(0.0) { $0 + pow(Double($1.0 - $1.1), 2) }.squareRoot()
        let norm = bw.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        XCTAssertLessThan(diff / norm, 1e-3)
    }

    func testGibsonLanniMismatchBreaksAxialSymmetryAndLowersThePeak() throws {
        var config = PSFConfig(model: .gibsonLanni, na: 1.4, wavelength: 0.6, ni: 1.518, ns: 1.33, pz: 10, dxy: 0.1, dz: 0.2, nxy: 17, nz: 31)
        let aberrated = try config.generate()
        config.ns = 1.518
        let matched = try config.generate()
        XCTAssertLessThan(aberrated.scalars.max()!, 0.7 * matched.scalars.max()!)
        let axis = (0..<31).map { Double(aberrated[$0, 8, 8]) }
        let asymmetry = (0..<15).map { abs(axis[$0] - axis[30 - $0]) }.max()! / axis.max()!
        XCTAssertGreaterThan(asymmetry, 0.05, "spherical aberration makes the axial profile asymmetric")
        let sym = (0..<31).map { Double(matched[$0, 8, 8]) }
        XCTAssertLessThan((0..<15).map { abs(sym[$0] - sym[30 - $0]) }.max()! / sym.max()!, 1e-4)
    }

    func testGaussianWidthsAndPixelIntegration() throws {
        let psf = try PSFConfig(model: .gaussian, dxy: 0.1, dz: 0.2, nxy: 41, nz: 31, fwhmXY: 0.5, fwhmZ: 1.2, oversample: 1).generate()
        let m = try PSFMeasurement.measure(psf)
        // Integrating a Gaussian over pixels of width d adds d²/12 to its variance.
        let f = 2 * (2 * log(2.0)).squareRoot()
        let sxy = 0.5 / f
        XCTAssertEqual(m.fwhm[0] * 0.2, 1.2, accuracy: 0.01)
        XCTAssertEqual(m.fwhm[2] * 0.1, f * (sxy * sxy + 0.01 / 12).squareRoot(), accuracy: 0.005)
        XCTAssertEqual(psf.scalars.reduce(0.0) { $0 + Double($1) }, 1, accuracy: 1e-4)
    }

    func testConfocalIsNarrowerThanWidefield() throws {
        let wide = try PSFConfig(model: .bornWolf, na: 1.2, wavelength: 0.52, ni: 1.33, dxy: 0.03, dz: 0.1, nxy: 41, nz: 21).generate()
        let conf = try PSFConfig(model: .confocal, na: 1.2, wavelength: 0.52, exWavelength: 0.488, ni: 1.33, dxy: 0.03, dz: 0.1,
                                 nxy: 41, nz: 21, pinhole: 1).generate()
        let mw = try PSFMeasurement.measure(wide), mc = try PSFMeasurement.measure(conf)
        // At 1 AU: sectioning narrows the axial profile; laterally the gain is mostly λex/λem.
        XCTAssertLessThan(mc.fwhm[0], 0.85 * mw.fwhm[0])
        XCTAssertLessThan(mc.fwhm[2], 0.97 * mw.fwhm[2])
        // A nearly closed pinhole approaches the ideal confocal (about 1/√2 of widefield, here with λex < λem).
        let closed = try PSFConfig(model: .confocal, na: 1.2, wavelength: 0.52, exWavelength: 0.488, ni: 1.33, dxy: 0.03, dz: 0.1,
                                   nxy: 41, nz: 21, pinhole: 0.2).generate()
        let mcl = try PSFMeasurement.measure(closed)
        XCTAssertLessThan(mcl.fwhm[0], 0.8 * mw.fwhm[0])
        XCTAssertLessThan(mcl.fwhm[2], 0.8 * mw.fwhm[2])
        XCTAssertEqual(conf.scalars.reduce(0.0) { $0 + Double($1) }, 1, accuracy: 1e-4)
        // A wide-open pinhole is not narrower than a closed one.
        let open = try PSFConfig(model: .confocal, na: 1.2, wavelength: 0.52, ni: 1.33, dxy: 0.03, dz: 0.1, nxy: 41, nz: 21, pinhole: 3).generate()
        XCTAssertGreaterThan(try PSFMeasurement.measure(open).fwhm[2], mc.fwhm[2])
    }

    func testImpossibleParametersAreRefusedByName() {
        func message(_ c: PSFConfig) -> String {
            do { _ = try c.generate(); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(message(PSFConfig(model: .bornWolf, na: 1.6, ni: 1.518, nz: 11)),
                       "psf born-wolf: invalid argument: na 1.6 must be below the immersion index ni 1.518")
        XCTAssertEqual(message(PSFConfig(model: .airy, nxy: 32)), "psf airy: invalid argument: nxy 32 must be a positive odd box size")
        XCTAssertEqual(message(PSFConfig(model: .gibsonLanni, nz: 10)), "psf gibson-lanni: invalid argument: nz 10 must be a positive odd box size")
        XCTAssertEqual(message(PSFConfig(model: .bornWolf, dxy: -0.1)), "psf born-wolf: invalid argument: dxy -0.1 must be positive")
        XCTAssertEqual(message(PSFConfig(model: .bornWolf, dz: 0, nz: 5)), "psf born-wolf: invalid argument: dz 0.0 must be positive")
        XCTAssertEqual(message(PSFConfig(model: .airy, nz: 5)), "psf airy: invalid argument: the airy model is 2-D: nz (5) and dz must not be given")
        XCTAssertEqual(message(PSFConfig(model: .confocal, pinhole: 0)), "psf confocal: invalid argument: pinhole 0.0 (Airy units) must be positive")
        XCTAssertEqual(message(PSFConfig(model: .gaussian, wavelength: -1)), "psf gaussian: invalid argument: wavelength -1.0 must be positive")
        XCTAssertEqual(message(PSFConfig(model: .gibsonLanni, ni0: 1.3)),
                       "psf gibson-lanni: invalid argument: na 1.4 must be below the design immersion index ni0 1.3")
    }

    func testConfigDecodesRecipeKeysWithDefaults() throws {
        let json = #"{"model": "born-wolf", "na": 1.2, "wavelength": 0.52, "ni": 1.33, "dxy": 0.1, "dz": 0.25, "nxy": 17, "nz": 9}"#
        let c = try JSONDecoder().decode(PSFConfig.self, from: Data(json.utf8))
        XCTAssertEqual(c, PSFConfig(model: .bornWolf, na: 1.2, wavelength: 0.52, ni: 1.33, dxy: 0.1, dz: 0.25, nxy: 17, nz: 9))
        XCTAssertEqual(c.oversample, 3)
        let round = try JSONDecoder().decode(PSFConfig.self, from: JSONEncoder().encode(c))
        XCTAssertEqual(round, c)
        XCTAssertEqual(try c.generate().shape, [9, 17, 17])
    }
}
