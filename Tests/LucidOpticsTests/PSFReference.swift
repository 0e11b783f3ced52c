import Foundation

/// Test-only reference PSFs, written independently of LucidOptics' renderer: the pupil integral
/// taken over the normalized pupil radius ρ ∈ [0, 1] (`NA·ρ = nᵢ sin θ`) rather than the angle,
/// by composite Gauss–Legendre quadrature with panel edges at the critical radii (where a square
/// root turns imaginary), every pixel sub-sample evaluated at its own radius (no radial table),
/// all in double precision.
///
/// `amplitude(ρ-integral) = ∫₀¹ J₀(k NA r ρ) · exp(i k W(ρ, z)) · ρ dρ` with
/// - Born–Wolf: `W = −z √(nᵢ² − NA² ρ²)`;
/// - Gibson & Lanni (1991), with the focal position `z` measured from the coverslip as Aguet
///   (2009) and psfmodels do: `W = (c − z) √(nᵢ² − NA²ρ²) + pz √(ns² − NA²ρ²) + tg √(ng² − NA²ρ²)
///   − tg0 √(ng0² − NA²ρ²) − ti0 √(ni0² − NA²ρ²)`, `c = pz (1 − nᵢ/ns) + nᵢ (tg0/ng0 + ti0/ni0 − tg/ng)`.
enum ReferencePSF {
    struct Optics {
        var na = 1.4, wavelength = 0.52, ni = 1.518
        var ni0: Double?, ns: Double?
        var ng = 1.515, ng0: Double?
        var tg = 170.0, tg0: Double?
        var ti0 = 150.0
        var pz = 0.0
        var gibsonLanni = false
    }

    /// Gauss–Legendre nodes and weights on [-1, 1] (Newton's method on Pₙ).
    static func gaussLegendre(_ n: Int) -> [(x: Double, w: Double)] {
        (0..<n).map { i -> (Double, Double) in
            var x = cos(Double.pi * (Double(i) + 0.75) / (Double(n) + 0.5))
            var derivative = 0.0
            for _ in 0..<100 {
                var p0 = 1.0, p1 = x
                for k in 2...n {
                    let p2 = ((2 * Double(k) - 1) * x * p1 - (Double(k) - 1) * p0) / Double(k)
                    p0 = p1
                    p1 = p2
                }
                derivative = Double(n) * (x * p1 - p0) / (x * x - 1)
                let step = p1 / derivative
                x -= step
                if abs(step) < 1e-15 { break }
            }
            return (x, 2 / ((1 - x * x) * derivative * derivative))
        }
    }

    /// Quadrature nodes ρ and weights (including the ρ of ρ dρ) on [0, 1].
    static func pupilNodes(_ o: Optics, panels: Int = 48, order: Int = 16) -> [(rho: Double, w: Double)] {
        var edges = (0...panels).map { Double($0) / Double(panels) }
        for n in [o.ns ?? o.ni, o.ng, o.ng0 ?? o.ng, o.ni0 ?? o.ni] where o.gibsonLanni && n < o.na {
            edges.append(n / o.na)
        }
        edges = Array(Set(edges)).sorted()
        let gl = gaussLegendre(order)
        var nodes: [(Double, Double)] = []
        for (a, b) in zip(edges, edges.dropFirst()) where b > a {
            for (x, w) in gl {
                let rho = (a + b) / 2 + (b - a) / 2 * x
                nodes.append((rho, w * (b - a) / 2 * rho))
            }
        }
        return nodes
    }

    /// `√(n² − NA²ρ²)` as (real, imaginary).
    static func root(_ n: Double, _ q: Double) -> (Double, Double) {
        let d = n * n - q * q
        return d >= 0 ? (d.squareRoot(), 0) : (0, (-d).squareRoot())
    }

    /// `W(ρ, z)` as (real, imaginary) for the plane whose focal position is `z` (Born–Wolf: the
    /// offset from the source; Gibson–Lanni: from the coverslip).
    static func pathDifference(_ o: Optics, rho: Double, z: Double) -> (Double, Double) {
        let q = o.na * rho
        let immersion = root(o.ni, q).0
        guard o.gibsonLanni else { return (-z * immersion, 0) }
        let ns = o.ns ?? o.ni, ni0 = o.ni0 ?? o.ni, ng0 = o.ng0 ?? o.ng, tg0 = o.tg0 ?? o.tg
        let c = o.pz * (1 - o.ni / ns) + o.ni * (tg0 / ng0 + o.ti0 / ni0 - o.tg / o.ng)
        let terms = [(o.pz, root(ns, q)), (o.tg, root(o.ng, q)), (-tg0, root(ng0, q)), (-o.ti0, root(ni0, q))]
        var re = (c - z) * immersion, im = 0.0
        for (t, r) in terms { re += t * r.0; im += t * r.1 }
        return (re, im)
    }

    /// The pixel-integrated PSF `[nz][nxy][nxy]` (flattened, unnormalized) for planes at the
    /// focal positions `zs`, `oversample`² sub-samples per pixel at offsets `(j + ½)/oversample − ½`.
    static func stack(_ o: Optics, zs: [Double], dxy: Double, nxy: Int, oversample: Int) -> [Double] {
        let k = 2 * Double.pi / o.wavelength
        let nodes = pupilNodes(o)
        // Sub-sample coordinates in units of dxy / (2·oversample): integers, so that equal radii share one key.
        let c = nxy / 2, s = oversample
        func coordinate(_ pixel: Int, _ j: Int) -> Int { 2 * s * (pixel - c) + 2 * j + 1 - s }
        var keyIndex: [Int: Int] = [:]
        var radii: [Double] = []
        var pixelKeys = [[Int]](repeating: [], count: nxy * nxy)
        for y in 0..<nxy { for x in 0..<nxy {
            for a in 0..<s { for b in 0..<s {
                let u = coordinate(y, a), v = coordinate(x, b), key = u * u + v * v
                if keyIndex[key] == nil {
                    keyIndex[key] = radii.count
                    radii.append(Double(key).squareRoot() * dxy / Double(2 * s))
                }
                pixelKeys[y * nxy + x].append(keyIndex[key]!)
            }}
        }}
        let bessel = radii.map { r in nodes.map { j0(k * o.na * r * $0.rho) } }
        var out = [Double](repeating: 0, count: zs.count * nxy * nxy)
        for (zi, z) in zs.enumerated() {
            let phasors = nodes.map { node -> (Double, Double) in
                let (re, im) = pathDifference(o, rho: node.rho, z: z)
                let magnitude = node.w * exp(-k * im)
                return (magnitude * cos(k * re), magnitude * sin(k * re))
            }
            let intensity = bessel.map { row -> Double in
                var re = 0.0, im = 0.0
                for (b, p) in zip(row, phasors) { re += b * p.0; im += b * p.1 }
                return re * re + im * im
            }
            for p in 0..<(nxy * nxy) {
                out[zi * nxy * nxy + p] = pixelKeys[p].reduce(0.0) { $0 + intensity[$1] } / Double(s * s)
            }
        }
        return out
    }
}

/// Normalized cross-correlation of two equally long arrays (1: equal up to scale and offset).
func normalizedCrossCorrelation(_ a: [Double], _ b: [Double]) -> Double {
    let ma = a.reduce(0, +) / Double(a.count), mb = b.reduce(0, +) / Double(b.count)
    var ab = 0.0, aa = 0.0, bb = 0.0
    for (x, y) in zip(a, b) {
        ab += (x - ma) * (y - mb)
        aa += (x - ma) * (x - ma)
        bb += (y - mb) * (y - mb)
    }
    return ab / (aa * bb).squareRoot()
}
