import Foundation
import LucidCore
import LucidOptics

/// Lucid's own synthetic fluorescence specimen: textured nuclei and thin curved filaments,
/// blurred by a Gaussian PSF. It feeds the demo and the quality tests; it is never a training
/// default, so nothing is tuned to it.
///
/// ```swift
/// let clean = try SyntheticSpecimen(shape: [256, 256], seed: 1).render()   // values in [0, 1]
/// let maps = try SyntheticSpecimen(shape: [256, 256], seed: 1).structures() // unblurred
/// ```
public struct SyntheticSpecimen: Sendable {
    /// Spatial shape, `[Y, X]` or `[Z, Y, X]`.
    public var shape: [Int]
    public var seed: UInt64
    /// Nuclei per 10⁴ pixels of the XY plane.
    public var nucleiDensity: Double = 1.2
    /// Filaments per 10⁴ pixels of the XY plane.
    public var filamentDensity: Double = 2.0
    /// Gaussian blur σ in pixels (laterally; axially twice that in 3D).
    public var blurSigma: Double = 1.2
    /// Background level (fraction of the brightest structure).
    public var background: Float = 0.05

    public init(shape: [Int], seed: UInt64 = 0) {
        self.shape = shape
        self.seed = seed
    }

    /// An ellipsoid (an ellipse in 2D) rotated in the XY plane, in pixel units (`[z, y, x]`).
    public struct Ellipsoid: Sendable {
        public var center: (z: Double, y: Double, x: Double)
        /// Semi-axes; `z` is unused in 2D.
        public var radii: (z: Double, y: Double, x: Double)
        /// Rotation of the (y, x) semi-axes in the XY plane, radians.
        public var angle: Double

        public init(center: (z: Double, y: Double, x: Double), radii: (z: Double, y: Double, x: Double), angle: Double) {
            self.center = center; self.radii = radii; self.angle = angle
        }

        /// Normalized radius of a point (1 on the surface); `z` is ignored unless `is3D`.
        public func normalizedRadius(z: Double, y: Double, x: Double, is3D: Bool) -> Double {
            let (ca, sa) = (cos(angle), sin(angle))
            let dy = y - center.y, dx = x - center.x, dz = is3D ? z - center.z : 0
            let u = (ca * dx + sa * dy) / radii.x, v = (-sa * dx + ca * dy) / radii.y, w = dz / radii.z
            return (u * u + v * v + w * w).squareRoot()
        }

        /// Soft occupancy in [0, 1] at normalized radius `r` (½ on the surface).
        public static func edge(_ r: Double) -> Double { 1 / (1 + exp((r - 1) * 12)) }
    }

    /// One nucleus: a soft-edged ellipsoid with a smooth internal texture.
    public struct Nucleus: Sendable {
        public var shape: Ellipsoid
        /// Peak fluorescence, a fraction of the brightest possible structure.
        public var brightness: Float
        var texturePhase: (Double, Double)
        /// Half-width in pixels of the box the nucleus is drawn in.
        var reach: Int

        /// The chromatin texture factor (0.5…1) at a pixel.
        public func texture(y: Int, x: Int) -> Double {
            0.75 + 0.25 * sin(Double(x) * 0.45 + texturePhase.0) * cos(Double(y) * 0.38 + texturePhase.1)
        }
    }

    /// The unblurred structures, each in [0, 1]: nuclei (soft edges, texture, per-nucleus
    /// brightness) and filaments (thin Gaussian lines). `render()` blurs their maximum.
    public struct Structures {
        public var nuclei: Tensor
        public var filaments: Tensor
    }

    private var is3D: Bool { shape.count == 3 }
    private var extents: (z: Int, y: Int, x: Int) { is3D ? (shape[0], shape[1], shape[2]) : (1, shape[0], shape[1]) }

    private func checkShape() throws {
        guard shape.count == 2 || shape.count == 3, shape.allSatisfy({ $0 >= 8 }) else {
            throw TensorError.invalidArgument(op: "SyntheticSpecimen", detail: "shape \(shape) must be [Y, X] or [Z, Y, X] with every extent ≥ 8")
        }
    }

    /// The nuclei of the specimen (the same ones `structures()` and `render()` draw).
    public func nuclei() throws -> [Nucleus] {
        try checkShape()
        var rng = RandomGenerator(seed: seed)
        return drawNuclei(&rng)
    }

    private func drawNuclei(_ rng: inout RandomGenerator) -> [Nucleus] {
        let (nz, ny, nx) = extents
        let area = Double(ny * nx) / 1e4
        return (0..<max(1, Int((nucleiDensity * area).rounded()))).map { _ in
            let radius = Double(6 + rng.int(below: 10))
            let cy = Double(rng.int(below: ny)), cx = Double(rng.int(below: nx))
            let cz = Double(rng.int(below: nz))
            let ry = radius * Double(0.8 + 0.4 * rng.uniform()), rx = radius * Double(0.8 + 0.4 * rng.uniform())
            let rz = is3D ? radius * 0.6 : 1
            let angle = Double(rng.uniform()) * .pi
            let brightness = Float(0.4 + 0.5 * rng.uniform())
            let phase = (Double(rng.uniform()) * 6.28, Double(rng.uniform()) * 6.28)
            return Nucleus(shape: Ellipsoid(center: (cz, cy, cx), radii: (rz, ry, rx), angle: angle), brightness: brightness,
                           texturePhase: phase, reach: Int(radius * 1.5) + 2)
        }
    }

    /// The unblurred nuclei and filaments (shape `shape`).
    public func structures() throws -> Structures {
        try checkShape()
        var rng = RandomGenerator(seed: seed)
        let (nz, ny, nx) = extents
        var nucleusMap = Tensor(shape: shape, repeating: 0)
        let filamentMap = Tensor(shape: shape, repeating: 0)
        let p = nucleusMap.storage.base
        for n in drawNuclei(&rng) {
            let (reach, c) = (n.reach, n.shape.center)
            for z in max(0, Int(c.z) - reach)..<min(nz, Int(c.z) + reach + 1) {
                for y in max(0, Int(c.y) - reach)..<min(ny, Int(c.y) + reach + 1) {
                    for x in max(0, Int(c.x) - reach)..<min(nx, Int(c.x) + reach + 1) {
                        let edge = Ellipsoid.edge(n.shape.normalizedRadius(z: Double(z), y: Double(y), x: Double(x), is3D: is3D))
                        guard edge > 1e-3 else { continue }
                        let i = (z * ny + y) * nx + x
                        p[i] = max(p[i], n.brightness * Float(edge * n.texture(y: y, x: x)))
                    }
                }
            }
        }

        // Filaments: smooth random walks drawn as thin Gaussian lines.
        let f = filamentMap.storage.base
        for _ in 0..<max(1, Int((filamentDensity * Double(ny * nx) / 1e4).rounded())) {
            var y = Double(rng.int(below: ny)), x = Double(rng.int(below: nx)), z = Double(rng.int(below: nz))
            var heading = Double(rng.uniform()) * 2 * .pi
            let brightness = Float(0.3 + 0.4 * rng.uniform())
            let length = 40 + rng.int(below: 120)
            for _ in 0..<length {
                heading += Double(rng.normal()) * 0.12
                y += sin(heading) * 0.5; x += cos(heading) * 0.5
                if is3D { z += Double(rng.normal()) * 0.1 }
                let iy = Int(y.rounded()), ix = Int(x.rounded()), iz = Int(z.rounded())
                for oy in -1...1 {
                    for ox in -1...1 {
                        let yy = iy + oy, xx = ix + ox
                        guard yy >= 0, yy < ny, xx >= 0, xx < nx, iz >= 0, iz < nz else { continue }
                        let d2 = pow(Double(yy) - y, 2) + pow(Double(xx) - x, 2)
                        let i = (iz * ny + yy) * nx + xx
                        f[i] = max(f[i], brightness * Float(exp(-d2 / 0.5)))
                    }
                }
            }
        }
        return Structures(nuclei: nucleusMap, filaments: filamentMap)
    }

    /// The blurred clean specimen, scaled to a maximum of 1.
    public func render() throws -> Tensor {
        let s = try structures()
        var image = Tensor(uninitialized: shape)
        image.withUnsafeMutableBufferPointer { o in
            s.nuclei.withUnsafeBufferPointer { a in
                s.filaments.withUnsafeBufferPointer { b in
                    for i in o.indices { o[i] = max(background, a[i], b[i]) }
                }
            }
        }
        return try Self.blur(image, sigma: blurSigma, axialSigma: is3D ? 2 * blurSigma : nil, normalize: true)
    }

    /// `image` blurred by a Gaussian PSF (σ in pixels; `axialSigma` for 3D), clamped at 0 and,
    /// with `normalize`, scaled to a maximum of 1.
    static func blur(_ image: Tensor, sigma: Double, axialSigma: Double?, normalize: Bool) throws -> Tensor {
        let psf = try PSFConfig(model: .gaussian, dxy: 1, dz: 1,
                                nxy: 2 * Int((4 * sigma).rounded(.up)) + 1,
                                nz: axialSigma.map { 2 * Int((4 * $0).rounded(.up)) + 1 },
                                sigmaXY: sigma, sigmaZ: axialSigma).generate()
        var blurred = try fftConvolve(image, psf, boundary: .reflect)
        let peak = normalize ? (blurred.scalars.max() ?? 1) : 1
        blurred.withUnsafeMutableBufferPointer { b in
            for i in 0..<b.count { b[i] = max(0, b[i]) / peak }
        }
        return blurred
    }
}
