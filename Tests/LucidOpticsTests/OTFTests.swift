import XCTest
import LucidCore
@testable import LucidOptics

final class OTFTests: XCTestCase {
    func testOTFVanishesBeyondCutoff2D() throws {
        let config = PSFConfig(model: .airy, na: 1.0, wavelength: 0.5, dxy: 0.04, nxy: 255)
        let otf = try OTF(psf: try config.generate())
        let support = otf.maxLateralFrequency(spacing: [0.04, 0.04], threshold: 1e-3)
        XCTAssertLessThanOrEqual(support, config.cutoffFrequency * 1.02, "nothing above 2NA/λ = \(config.cutoffFrequency)")
        XCTAssertGreaterThan(support, config.cutoffFrequency * 0.9, "the passband reaches close to the cutoff")
        // Radial profile: decreasing from 1 at DC to ~0 at the cutoff.
        let (radius, mean) = try OTF.radialProfile(otf.magnitude(), spacing: [1 / (255 * 0.04), 1 / (255 * 0.04)], bins: 40)
        XCTAssertGreaterThan(mean[0], 0.85)
        for i in 1..<mean.count { XCTAssertLessThanOrEqual(mean[i], mean[i - 1] + 1e-3) }
        for (r, m) in zip(radius, mean) where r > config.cutoffFrequency * 1.05 { XCTAssertLessThan(m, 1e-3, "r = \(r)") }
    }

    func testOTFVanishesBeyondCutoff3D() throws {
        let config = PSFConfig(model: .bornWolf, na: 1.2, wavelength: 0.52, ni: 1.33, dxy: 0.05, dz: 0.15, nxy: 63, nz: 31)
        let otf = try OTF(psf: try config.generate())
        let support = otf.maxLateralFrequency(spacing: [0.15, 0.05, 0.05], threshold: 2e-3)
        XCTAssertLessThanOrEqual(support, config.cutoffFrequency * 1.03)
        XCTAssertGreaterThan(support, config.cutoffFrequency * 0.8)
    }

    func testPSFRoundTripAndCentring() throws {
        var rng = RandomGenerator(seed: 3)
        for shape in [[7, 9], [5, 6, 8], [11]] {
            let psf = Tensor.randomUniform(shape, rng: &rng)
            let otf = try OTF(psf: psf)
            XCTAssertLessThan(maxAbsDifference(try otf.psf(), psf), 1e-5)
        }
        // A symmetric PSF centred in its box has a real, non-negative-at-DC OTF of value sum(psf).
        let g = try PSFConfig(model: .gaussian, dxy: 1, nxy: 9, sigmaXY: 1).generate()
        let otf = try OTF(psf: g, shape: [16, 16])
        XCTAssertEqual(otf.spectrum.base[0], 1, accuracy: 1e-5)
        for i in 0..<(otf.spectrum.count / 2) { XCTAssertEqual(otf.spectrum.base[2 * i + 1], 0, accuracy: 1e-5) }
        XCTAssertEqual(otf.magnitude()[8, 8], 1, accuracy: 1e-6)
        XCTAssertEqual(try otf.psf(size: [9, 9])[4, 4], g[4, 4], accuracy: 1e-6)
        XCTAssertThrowsError(try otf.psf(size: [20, 9])) { e in
            XCTAssertEqual("\(e)", "OTF.psf: invalid argument: size [20, 9] must have positive extents within the OTF grid [16, 16]")
        }
    }
}
