import Foundation
import LucidCore

/// The PSF models LucidOptics can compute.
public enum PSFModel: String, Codable, Sendable, CaseIterable {
    /// Separable Gaussian (σ given, from FWHM, or matched to the widefield optics).
    case gaussian
    /// 2-D widefield Airy pattern `(2 J₁(v)/v)²`.
    case airy
    /// 3-D scalar widefield PSF: the Debye integral of a uniformly filled pupil with exact
    /// (non-paraxial) defocus; its focal plane is the Airy pattern.
    case bornWolf = "born-wolf"
    /// 3-D scalar widefield PSF with the Gibson–Lanni refractive-index-mismatch aberration
    /// (psfmodels' `scalar` model, same parameters and axial convention).
    case gibsonLanni = "gibson-lanni"
    /// Confocal: excitation PSF × (emission PSF ⊗ pinhole).
    case confocal
}

/// A PSF in physical units, decodable from a recipe
/// (`{model: born-wolf, na: 1.2, wavelength: 0.52, dxy: 0.1, dz: 0.2, nxy: 33, nz: 33}`).
///
/// Lengths are in µm. Without `nz` the PSF is 2-D (the focal plane); with it, a `[nz, nxy, nxy]`
/// stack of `nz` planes `dz` apart whose centre plane is the nominal focus. Every PSF is
/// normalized to sum 1 and integrated over each pixel's area (`oversample`² sub-samples per
/// pixel; exactly, for the Gaussian).
///
/// Axial convention (Gibson–Lanni as psfmodels and MicroscPSF define it, so their parameters give
/// the same PSF): plane `j` is taken with the focus at `z = pz + (j − nz/2)·dz` µm below the
/// coverslip, `z` growing into the sample (away from the objective) with `j`. `z` is the
/// nominal focal position: the objective moved from its design focus on the coverslip by `z`
/// less the paraxial focal shift `pz (nᵢ/ns − 1)`, so that at `z = pz` (the centre plane) a
/// paraxial ray from the source focuses on it; `dz` is the step of the objective. Spherical
/// aberration moves the intensity peak off the centre plane: with an oil objective (nᵢ 1.518) in
/// water (ns 1.33) it lies at larger `z` (0.36 µm further for NA 1.4, λ 0.52 µm, pz 2 µm). Born–Wolf
/// stacks are symmetric about the centre plane (the source is there, `pz` is not used).
public struct PSFConfig: Codable, Equatable, Sendable {
    /// Which model.
    public var model: PSFModel
    /// Numerical aperture.
    public var na: Double
    /// Emission wavelength (µm).
    public var wavelength: Double
    /// Excitation wavelength for `confocal` (µm); nil: the emission wavelength.
    public var exWavelength: Double?
    /// Immersion refractive index (actual).
    public var ni: Double
    /// Immersion refractive index of the design (Gibson–Lanni); nil: `ni`.
    public var ni0: Double?
    /// Sample refractive index (Gibson–Lanni); nil: `ni`.
    public var ns: Double?
    /// Coverslip refractive index, actual and design (Gibson–Lanni).
    public var ng: Double
    public var ng0: Double?
    /// Immersion thickness of the design (µm): the working distance, the immersion layer between
    /// objective and coverslip when the objective is focused on the coverslip as designed. It only
    /// matters when `ni` differs from `ni0`.
    public var ti0: Double
    /// Coverslip thickness, actual and design (µm).
    public var tg: Double
    public var tg0: Double?
    /// Depth of the point source in the sample, from the coverslip's sample-side surface (µm,
    /// ≥ 0, Gibson–Lanni); psfmodels' `pz`.
    public var pz: Double
    /// Lateral pixel size (µm).
    public var dxy: Double
    /// Axial step (µm).
    public var dz: Double
    /// Lateral box size (odd).
    public var nxy: Int
    /// Axial box size (odd); nil: a 2-D PSF.
    public var nz: Int?
    /// Gaussian σ laterally and axially (µm).
    public var sigmaXY: Double?
    public var sigmaZ: Double?
    /// Gaussian FWHM laterally and axially (µm), used when σ is not given.
    public var fwhmXY: Double?
    public var fwhmZ: Double?
    /// Confocal pinhole diameter in Airy units (1 AU = 1.22 λ_em / NA in the sample).
    public var pinhole: Double
    /// Sub-samples per pixel side for pixel integration.
    public var oversample: Int

    enum CodingKeys: String, CodingKey {
        case model, na, wavelength, exWavelength = "ex_wavelength", ni, ni0, ns, ng, ng0, ti0, tg, tg0, pz
        case dxy, dz, nxy, nz, sigmaXY = "sigma_xy", sigmaZ = "sigma_z", fwhmXY = "fwhm_xy", fwhmZ = "fwhm_z"
        case pinhole, oversample
    }

    /// A configuration with the usual defaults (oil objective NA 1.4, 520 nm, 100 nm pixels).
    public init(model: PSFModel, na: Double = 1.4, wavelength: Double = 0.52, exWavelength: Double? = nil,
                ni: Double = 1.518, ni0: Double? = nil, ns: Double? = nil, ng: Double = 1.515, ng0: Double? = nil,
                ti0: Double = 150, tg: Double = 170, tg0: Double? = nil, pz: Double = 0,
                dxy: Double = 0.1, dz: Double = 0.2, nxy: Int = 33, nz: Int? = nil,
                sigmaXY: Double? = nil, sigmaZ: Double? = nil, fwhmXY: Double? = nil, fwhmZ: Double? = nil,
                pinhole: Double = 1, oversample: Int = 3) {
        self.model = model; self.na = na; self.wavelength = wavelength; self.exWavelength = exWavelength
        self.ni = ni; self.ni0 = ni0; self.ns = ns; self.ng = ng; self.ng0 = ng0
        self.ti0 = ti0; self.tg = tg; self.tg0 = tg0; self.pz = pz
        self.dxy = dxy; self.dz = dz; self.nxy = nxy; self.nz = nz
        self.sigmaXY = sigmaXY; self.sigmaZ = sigmaZ; self.fwhmXY = fwhmXY; self.fwhmZ = fwhmZ
        self.pinhole = pinhole; self.oversample = oversample
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = PSFConfig(model: try c.decode(PSFModel.self, forKey: .model))
        self = d
        na = try c.decodeIfPresent(Double.self, forKey: .na) ?? d.na
        wavelength = try c.decodeIfPresent(Double.self, forKey: .wavelength) ?? d.wavelength
        exWavelength = try c.decodeIfPresent(Double.self, forKey: .exWavelength)
        ni = try c.decodeIfPresent(Double.self, forKey: .ni) ?? d.ni
        ni0 = try c.decodeIfPresent(Double.self, forKey: .ni0)
        ns = try c.decodeIfPresent(Double.self, forKey: .ns)
        ng = try c.decodeIfPresent(Double.self, forKey: .ng) ?? d.ng
        ng0 = try c.decodeIfPresent(Double.self, forKey: .ng0)
        ti0 = try c.decodeIfPresent(Double.self, forKey: .ti0) ?? d.ti0
        tg = try c.decodeIfPresent(Double.self, forKey: .tg) ?? d.tg
        tg0 = try c.decodeIfPresent(Double.self, forKey: .tg0)
        pz = try c.decodeIfPresent(Double.self, forKey: .pz) ?? d.pz
        dxy = try c.decodeIfPresent(Double.self, forKey: .dxy) ?? d.dxy
        dz = try c.decodeIfPresent(Double.self, forKey: .dz) ?? d.dz
        nxy = try c.decodeIfPresent(Int.self, forKey: .nxy) ?? d.nxy
        nz = try c.decodeIfPresent(Int.self, forKey: .nz)
        sigmaXY = try c.decodeIfPresent(Double.self, forKey: .sigmaXY)
        sigmaZ = try c.decodeIfPresent(Double.self, forKey: .sigmaZ)
        fwhmXY = try c.decodeIfPresent(Double.self, forKey: .fwhmXY)
        fwhmZ = try c.decodeIfPresent(Double.self, forKey: .fwhmZ)
        pinhole = try c.decodeIfPresent(Double.self, forKey: .pinhole) ?? d.pinhole
        oversample = try c.decodeIfPresent(Int.self, forKey: .oversample) ?? d.oversample
    }

    /// Shape of the generated tensor: `[nxy, nxy]` or `[nz, nxy, nxy]`.
    public var shape: [Int] { nz.map { [$0, nxy, nxy] } ?? [nxy, nxy] }

    /// Lateral cutoff frequency of the widefield OTF, 2·NA/λ (cycles/µm).
    public var cutoffFrequency: Double { 2 * na / wavelength }

    /// Refuses impossible parameters with a message naming the parameter.
    public func validate() throws {
        let op = "psf \(model.rawValue)"
        func fail(_ detail: String) -> TensorError { .invalidArgument(op: op, detail: detail) }
        guard nxy > 0, nxy % 2 == 1 else { throw fail("nxy \(nxy) must be a positive odd box size") }
        if let nz {
            guard model != .airy else { throw fail("the airy model is 2-D: nz (\(nz)) and dz must not be given") }
            guard nz > 0, nz % 2 == 1 else { throw fail("nz \(nz) must be a positive odd box size") }
            guard dz > 0, dz.isFinite else { throw fail("dz \(dz) must be positive") }
        }
        guard dxy > 0, dxy.isFinite else { throw fail("dxy \(dxy) must be positive") }
        guard oversample >= 1, oversample <= 15 else { throw fail("oversample \(oversample) must be in 1...15") }
        guard wavelength > 0, wavelength.isFinite else { throw fail("wavelength \(wavelength) must be positive") }
        if model == .gaussian {
            for (name, value) in [("sigma_xy", sigmaXY), ("sigma_z", sigmaZ), ("fwhm_xy", fwhmXY), ("fwhm_z", fwhmZ)] {
                if let value { guard value > 0, value.isFinite else { throw fail("\(name) \(value) must be positive") } }
            }
            // Widths given explicitly: the optics are not used.
            if (sigmaXY ?? fwhmXY) != nil, nz == nil || (sigmaZ ?? fwhmZ) != nil { return }
        }
        guard na > 0, na.isFinite else { throw fail("na \(na) must be positive") }
        for (name, value) in [("ni", ni), ("ni0", ni0 ?? ni), ("ns", ns ?? ni), ("ng", ng), ("ng0", ng0 ?? ng)] {
            guard value >= 1, value.isFinite else { throw fail("\(name) \(value) must be a refractive index ≥ 1") }
        }
        guard na < ni else { throw fail("na \(na) must be below the immersion index ni \(ni)") }
        if model == .gibsonLanni {
            guard na < (ni0 ?? ni) else { throw fail("na \(na) must be below the design immersion index ni0 \(ni0 ?? ni)") }
            for (name, value) in [("ti0", ti0), ("tg", tg), ("tg0", tg0 ?? tg), ("pz", pz)] {
                guard value >= 0, value.isFinite else { throw fail("\(name) \(value) must be a non-negative thickness/depth") }
            }
        }
        if model == .confocal {
            guard pinhole > 0, pinhole.isFinite else { throw fail("pinhole \(pinhole) (Airy units) must be positive") }
            if let ex = exWavelength { guard ex > 0, ex.isFinite else { throw fail("ex_wavelength \(ex) must be positive") } }
        }
    }

    /// Computes the PSF (sum 1, centred in the box).
    public func generate() throws -> Tensor {
        try validate()
        var psf: Tensor
        switch model {
        case .gaussian: psf = gaussian()
        case .airy: psf = PSFRenderer(config: self).render { r, _ in Self.airy(r, na: na, wavelength: wavelength) }
        case .bornWolf, .gibsonLanni:
            psf = PupilIntegral(config: self, wavelength: wavelength).render(PSFRenderer(config: self))
        case .confocal: psf = try confocal()
        }
        try normalize(&psf)
        return psf
    }

    /// `(2 J₁(v)/v)²` with `v = 2π NA r / λ`.
    static func airy(_ r: Double, na: Double, wavelength: Double) -> Double {
        let v = 2 * Double.pi * na * r / wavelength
        if v < 1e-6 { return 1 }
        let a = 2 * j1(v) / v
        return a * a
    }

    /// Gaussian widths (σ, µm) laterally and axially: given, from FWHM, or matched to the
    /// widefield FWHMs of this model family (0.51 λ/NA laterally, 0.886 λ / (n (1 − cos α)) axially).
    public var gaussianSigmas: (xy: Double, z: Double) {
        let f = 2 * (2 * log(2.0)).squareRoot()
        let cosAlpha = (1 - (na / ni) * (na / ni)).squareRoot()
        let xy = sigmaXY ?? fwhmXY.map { $0 / f } ?? 0.51 * wavelength / na / f
        let z = sigmaZ ?? fwhmZ.map { $0 / f } ?? 0.886 * wavelength / (ni * (1 - cosAlpha)) / f
        return (xy, z)
    }

    private func gaussian() -> Tensor {
        let (sxy, sz) = gaussianSigmas
        /// Integral of the unit-height Gaussian over each pixel of width `d`.
        func axis(_ n: Int, _ d: Double, _ sigma: Double, integrate: Bool) -> [Double] {
            (0..<n).map { i in
                let x = Double(i - n / 2) * d
                if !integrate { return exp(-0.5 * x * x / (sigma * sigma)) }
                let s = sigma * 2.0.squareRoot()
                return 0.5 * (erf((x + d / 2) / s) - erf((x - d / 2) / s))
            }
        }
        let gxy = axis(nxy, dxy, sxy, integrate: true)
        let gz = nz.map { axis($0, dz, sz, integrate: false) } ?? [1]
        var t = Tensor(uninitialized: shape)
        t.withUnsafeMutableBufferPointer { p in
            var i = 0
            for z in gz { for y in gxy { for x in gxy { p[i] = Float(z * y * x); i += 1 } } }
        }
        return t
    }

    private func confocal() throws -> Tensor {
        let au = 1.22 * wavelength / na
        let radius = pinhole * au / 2
        let margin = Int((radius / dxy).rounded(.up)) + 1
        // Emission PSF on a box enlarged by the pinhole radius, blurred by the pinhole disk.
        var em = self
        em.model = .bornWolf
        em.nxy = nxy + 2 * margin
        let emission = PupilIntegral(config: em, wavelength: wavelength).render(PSFRenderer(config: em))
        var ex = self
        ex.model = .bornWolf
        let lambdaEx = exWavelength ?? wavelength
        let excitation = PupilIntegral(config: ex, wavelength: lambdaEx).render(PSFRenderer(config: ex))
        let disk = PSFRenderer.disk(radius: radius, dxy: dxy, size: 2 * margin + 1, oversample: max(oversample, 5))
        let big = em.nxy, planes = nz ?? 1
        let conv = try FFTConvolver(kernel: disk, imageShape: [big, big], boundary: .zero)
        var out = Tensor(uninitialized: shape)
        for z in 0..<planes {
            let plane = try Tensor(shape: [big, big], scalars: Array(emission.scalars[(z * big * big)..<((z + 1) * big * big)]))
            let blurred = try conv.apply(plane)
            out.withUnsafeMutableBufferPointer { o in
                blurred.withUnsafeBufferPointer { b in
                    excitation.withUnsafeBufferPointer { e in
                        for y in 0..<nxy {
                            for x in 0..<nxy {
                                let i = (z * nxy + y) * nxy + x
                                o[i] = e[i] * max(b[(y + margin) * big + x + margin], 0)
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    private func normalize(_ t: inout Tensor) throws {
        let sum = t.withUnsafeBufferPointer { $0.reduce(0.0) { $0 + Double($1) } }
        guard sum > 0, sum.isFinite else {
            throw TensorError.invalidArgument(op: "psf \(model.rawValue)", detail: "the PSF has sum \(sum); check the parameters")
        }
        t.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] = Float(Double(p[i]) / sum) } }
    }
}
