import Foundation
import LucidCore

/// The scalar PSF of a widefield objective with a uniformly filled pupil, the Debye integral
/// `h(r, z) = |∫₀^α J₀(k nᵢ r sin θ) · exp(i k W(θ, z)) · sin θ cos θ dθ|²`, `k = 2π/λ`,
/// `sin α = NA/nᵢ`, integrated by Simpson's rule over the immersion angle θ. With `NA·ρ = nᵢ sin θ`
/// the measure `sin θ cos θ dθ` is `ρ dρ`: the pupil amplitude is uniform in ρ, as in Born & Wolf,
/// Gibson & Lanni and psfmodels, and the focal plane of a Born–Wolf PSF is the Airy pattern.
///
/// Born–Wolf: `W = −nᵢ z cos θ`, `z` the offset of the focal plane from the source (exact,
/// non-paraxial defocus).
///
/// Gibson–Lanni (1991) in the convention of Aguet (2009), which psfmodels and MicroscPSF follow:
/// `W = (c − z) nᵢ cos θ + pz √(ns² − nᵢ² sin²θ) + tg √(ng² − nᵢ² sin²θ) − tg0 √(ng0² − nᵢ² sin²θ)
///      − ti0 √(ni0² − nᵢ² sin²θ)`, `c = pz (1 − nᵢ/ns) + nᵢ (tg0/ng0 + ti0/ni0 − tg/ng)`, where `z`
/// is the nominal focal position below the coverslip (`pz + offset`; see `PSFConfig`). Where
/// `nᵢ sin θ` exceeds an index the root is imaginary and that angle's wave is evanescent
/// (`exp(−k pz |…|)` for a source in a sample of lower index than the aperture). With matched
/// indices and thicknesses and `pz = 0`, `W` is Born–Wolf's.
struct PupilIntegral {
    let config: PSFConfig
    let k: Double
    /// Aperture half-angle in the immersion medium.
    let alpha: Double

    init(config: PSFConfig, wavelength: Double) {
        self.config = config
        k = 2 * Double.pi / wavelength
        alpha = asin(min(config.na / config.ni, 1))
    }

    /// The part of `W(θ, z)` that does not depend on the plane: a path `W` adds to the phase
    /// (µm) and the evanescent decay (µm) its imaginary roots give, `exp(i k W) = exp(−k·decay)·exp(i k·path)`.
    func aberration(_ theta: Double) -> (path: Double, decay: Double) {
        let c = config
        guard c.model == .gibsonLanni else { return (0, 0) }
        let ni = c.ni, ns = c.ns ?? ni, ni0 = c.ni0 ?? ni, ng0 = c.ng0 ?? c.ng, tg0 = c.tg0 ?? c.tg
        let s2 = ni * ni * sin(theta) * sin(theta)
        /// `√(n² − nᵢ² sin²θ)` as (real, imaginary) parts.
        func root(_ n: Double) -> (Double, Double) {
            let d = n * n - s2
            return d >= 0 ? (d.squareRoot(), 0) : (0, (-d).squareRoot())
        }
        let focus = c.pz * (1 - ni / ns) + ni * (tg0 / ng0 + c.ti0 / ni0 - c.tg / c.ng) - c.pz
        let (sample, glass, glass0, immersion0) = (root(ns), root(c.ng), root(ng0), root(ni0))
        let path = focus * ni * cos(theta) + c.pz * sample.0 + c.tg * glass.0 - tg0 * glass0.0 - c.ti0 * immersion0.0
        let decay = c.pz * sample.1 + c.tg * glass.1 - tg0 * glass0.1 - c.ti0 * immersion0.1
        return (path, decay)
    }

    /// The path `W` at angle θ for the plane `offset` µm from the nominal focus.
    func path(_ theta: Double, offset: Double) -> Double {
        aberration(theta).path - offset * config.ni * cos(theta)
    }

    /// Renders the PSF (unnormalized) on the renderer's box.
    func render(_ renderer: PSFRenderer) -> Tensor {
        let dr = renderer.dxy / Double(4 * renderer.oversample)
        let nr = Int(renderer.maxRadius / dr) + 3
        let rMax = Double(nr) * dr
        // Enough angle samples for the Bessel oscillation and the phase variation.
        var phaseSwing = 0.0
        for z in [renderer.zs.first!, renderer.zs.last!] {
            var previous = path(0, offset: z)
            for j in 1...400 {
                let v = path(alpha * Double(j) / 400, offset: z)
                phaseSwing += abs(v - previous) * k
                previous = v
            }
        }
        let besselSwing = k * config.ni * rMax * sin(alpha)
        var n = max(513, Int(12 * (phaseSwing + besselSwing) / Double.pi))
        if n % 2 == 0 { n += 1 }
        let h = alpha / Double(n - 1)
        let thetas = (0..<n).map { Double($0) * h }
        let fixed = thetas.map(aberration)
        let cosines = thetas.map(cos)
        let weights = (0..<n).map { j -> Double in
            let simpson: Double = (j == 0 || j == n - 1) ? 1 : (j % 2 == 1 ? 4 : 2)
            return simpson * h / 3 * sin(thetas[j]) * cosines[j] * exp(-k * fixed[j].decay)
        }
        // J₀ table [r][θ].
        var bessel = [Double](repeating: 0, count: nr * n)
        let kn = k * config.ni
        bessel.withUnsafeMutableBufferPointer { b in
            let base = b.baseAddress!
            Threads.parallelFor(nr) { i in
                let r = Double(i) * dr
                for j in 0..<n { base[i * n + j] = j0(kn * r * sin(thetas[j])) }
            }
        }
        var profiles = [[Double]](repeating: [], count: renderer.zs.count)
        profiles.withUnsafeMutableBufferPointer { out in
            let outBase = out.baseAddress!
            Threads.parallelFor(renderer.zs.count) { zi in
                let z = renderer.zs[zi]
                var cr = [Double](repeating: 0, count: n), ci = [Double](repeating: 0, count: n)
                for j in 0..<n {
                    let phase = k * (fixed[j].path - z * config.ni * cosines[j])
                    cr[j] = weights[j] * cos(phase)
                    ci[j] = weights[j] * sin(phase)
                }
                var prof = [Double](repeating: 0, count: nr)
                bessel.withUnsafeBufferPointer { b in
                    for i in 0..<nr {
                        var re = 0.0, im = 0.0
                        let row = b.baseAddress! + i * n
                        for j in 0..<n { re += row[j] * cr[j]; im += row[j] * ci[j] }
                        prof[i] = re * re + im * im
                    }
                }
                outBase[zi] = prof
            }
        }
        return renderer.render(profiles: profiles, dr: dr)
    }
}
