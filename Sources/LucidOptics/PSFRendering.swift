import Foundation
import LucidCore

/// Samples a radially symmetric intensity `h(r, z)` on a PSF box, averaging `oversample`²
/// sub-samples per pixel (pixel integration).
struct PSFRenderer {
    let nxy: Int
    let dxy: Double
    let oversample: Int
    /// Axial positions of the planes (µm); `[0]` for a 2-D PSF.
    let zs: [Double]
    let shape: [Int]

    init(config: PSFConfig) {
        nxy = config.nxy
        dxy = config.dxy
        oversample = config.oversample
        shape = config.shape
        if let nz = config.nz {
            zs = (0..<nz).map { Double($0 - nz / 2) * config.dz }
        } else {
            zs = [0]
        }
    }

    /// Largest radius a sub-sample can have (µm).
    var maxRadius: Double { (Double(nxy / 2) + 0.5) * dxy * 2.0.squareRoot() }

    /// Sub-sample offsets within a pixel, in pixels, centred on 0.
    private var offsets: [Double] { (0..<oversample).map { (Double($0) + 0.5) / Double(oversample) - 0.5 } }

    /// Radii (µm) of the sub-samples of one quadrant-free pixel list: `[pixel][sub-sample]` flattened.
    private func radii() -> [Double] {
        let c = nxy / 2, o = offsets
        var r: [Double] = []
        r.reserveCapacity(nxy * nxy * oversample * oversample)
        for y in 0..<nxy { for x in 0..<nxy { for a in o { for b in o {
            let dy = (Double(y - c) + a) * dxy, dx = (Double(x - c) + b) * dxy
            r.append((dy * dy + dx * dx).squareRoot())
        }}}}
        return r
    }

    /// Evaluates `f(r, planeIndex)` at every sub-sample.
    func render(_ f: (Double, Int) -> Double) -> Tensor {
        let r = radii(), per = oversample * oversample
        var t = Tensor(uninitialized: shape)
        t.withUnsafeMutableBufferPointer { p in
            for (k, _) in zs.enumerated() {
                for pixel in 0..<(nxy * nxy) {
                    var s = 0.0
                    for j in 0..<per { s += f(r[pixel * per + j], k) }
                    p[k * nxy * nxy + pixel] = Float(s / Double(per))
                }
            }
        }
        return t
    }

    /// Interpolates per-plane radial profiles sampled at `r = j·dr` (linear interpolation).
    func render(profiles: [[Double]], dr: Double) -> Tensor {
        let r = radii(), per = oversample * oversample
        var t = Tensor(uninitialized: shape)
        let plane = nxy * nxy
        t.withUnsafeMutableBufferPointer { p in
            let base = p.baseAddress!
            Threads.parallelFor(zs.count) { k in
                let prof = profiles[k]
                for pixel in 0..<plane {
                    var s = 0.0
                    for j in 0..<per {
                        let u = r[pixel * per + j] / dr
                        let i = min(Int(u), prof.count - 2)
                        let f = u - Double(i)
                        s += prof[i] * (1 - f) + prof[i + 1] * f
                    }
                    base[k * plane + pixel] = Float(s / Double(per))
                }
            }
        }
        return t
    }

    /// A disk of `radius` µm: the covered fraction of each pixel, in a `size`² box.
    static func disk(radius: Double, dxy: Double, size: Int, oversample: Int) -> Tensor {
        var t = Tensor(uninitialized: [size, size])
        let c = size / 2
        t.withUnsafeMutableBufferPointer { p in
            for y in 0..<size { for x in 0..<size {
                var inside = 0
                for a in 0..<oversample { for b in 0..<oversample {
                    let dy = (Double(y - c) + (Double(a) + 0.5) / Double(oversample) - 0.5) * dxy
                    let dx = (Double(x - c) + (Double(b) + 0.5) / Double(oversample) - 0.5) * dxy
                    if dy * dy + dx * dx <= radius * radius { inside += 1 }
                }}
                p[y * size + x] = Float(inside) / Float(oversample * oversample)
            }}
            // A pinhole smaller than the sub-sampling still passes light through the centre.
            if p.reduce(0, +) == 0 { p[c * size + c] = 1 }
        }
        return t
    }
}

/// The scalar Debye diffraction integral of a widefield objective:
/// `h(r, z) = |∫₀^θmax J₀(k nᵢ r sin θ) · exp(i k OPD(θ, z)) · sin θ dθ|²`, `k = 2π/λ`,
/// integrated by Simpson's rule over the immersion angle θ.
///
/// Born–Wolf: `OPD = nᵢ z cos θ` (exact defocus); on the axis this gives
/// `sinc²(k nᵢ z (1 − cos α) / 2)` exactly. Gibson–Lanni adds the optical path differences of a
/// source at depth `pz` in a sample of index `ns` seen through a coverslip (`ng`, `tg`) and
/// immersion (`ni`, design `ni0`, `ti0`) that differ from the design:
/// `OPD = pz (ns cos θs − nᵢ cos θᵢ) + nᵢ z cos θᵢ + ti0 (nᵢ cos θᵢ − nᵢ₀ cos θᵢ₀)
///        + tg ng cos θg − tg0 ng0 cos θg0`, with `nₓ sin θₓ = nᵢ sin θᵢ` (Snell);
/// `z` is the focal-plane offset from the nominal focus on the source. With matched indices and
/// thicknesses it reduces to Born–Wolf.
struct PupilIntegral {
    let config: PSFConfig
    let k: Double
    let thetaMax: Double

    init(config: PSFConfig, wavelength: Double) {
        self.config = config
        k = 2 * Double.pi / wavelength
        var limit = config.na
        if config.model == .gibsonLanni {
            limit = min(limit, config.ns ?? config.ni, config.ng, config.ng0 ?? config.ng, config.ni0 ?? config.ni)
        }
        thetaMax = asin(min(limit / config.ni, 1))
    }

    /// Optical path difference (µm) at immersion angle θ and focal offset z.
    func opd(_ theta: Double, _ z: Double) -> Double {
        let c = config, ni = c.ni, s = sin(theta)
        let ci = cos(theta)
        guard c.model == .gibsonLanni else { return ni * z * ci }
        func cosIn(_ n: Double) -> Double { (max(0, 1 - (ni * s / n) * (ni * s / n))).squareRoot() }
        let ns = c.ns ?? ni, ni0 = c.ni0 ?? ni, ng0 = c.ng0 ?? c.ng, tg0 = c.tg0 ?? c.tg
        return c.pz * (ns * cosIn(ns) - ni * ci) + ni * z * ci + c.ti0 * (ni * ci - ni0 * cosIn(ni0))
            + c.tg * c.ng * cosIn(c.ng) - tg0 * ng0 * cosIn(ng0)
    }

    /// Renders the PSF (unnormalized) on the renderer's box.
    func render(_ renderer: PSFRenderer) -> Tensor {
        let dr = renderer.dxy / Double(4 * renderer.oversample)
        let nr = Int(renderer.maxRadius / dr) + 3
        let rMax = Double(nr) * dr
        // Enough angle samples for the Bessel oscillation and the phase variation.
        var phaseSwing = 0.0
        for z in [renderer.zs.first!, renderer.zs.last!] {
            var previous = opd(0, z)
            for j in 1...400 {
                let v = opd(thetaMax * Double(j) / 400, z)
                phaseSwing += abs(v - previous) * k
                previous = v
            }
        }
        let besselSwing = k * config.ni * rMax * sin(thetaMax)
        var n = max(257, Int(12 * (phaseSwing + besselSwing) / Double.pi))
        if n % 2 == 0 { n += 1 }
        let h = thetaMax / Double(n - 1)
        let thetas = (0..<n).map { Double($0) * h }
        let weights = (0..<n).map { j -> Double in
            let simpson: Double = (j == 0 || j == n - 1) ? 1 : (j % 2 == 1 ? 4 : 2)
            return simpson * h / 3 * sin(thetas[j])
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
                    let phase = k * opd(thetas[j], z)
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
