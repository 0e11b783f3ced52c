import Foundation
import LucidCore
import LucidOptics

/// Lucid's own synthetic fluorescence specimen: textured nuclei and thin curved filaments,
/// blurred by a Gaussian PSF. It feeds the demo and the quality tests; it is never a training
/// default, so nothing is tuned to it.
///
/// ```swift
/// let clean = try SyntheticSpecimen(shape: [256, 256], seed: 1).render()   // values in [0, 1]
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

    /// The blurred clean specimen, scaled to a maximum of 1.
    public func render() throws -> Tensor {
        guard shape.count == 2 || shape.count == 3, shape.allSatisfy({ $0 >= 8 }) else {
            throw TensorError.invalidArgument(op: "SyntheticSpecimen", detail: "shape \(shape) must be [Y, X] or [Z, Y, X] with every extent ≥ 8")
        }
        var rng = RandomGenerator(seed: seed)
        let is3D = shape.count == 3
        let (nz, ny, nx) = is3D ? (shape[0], shape[1], shape[2]) : (1, shape[0], shape[1])
        var image = Tensor(shape: shape, repeating: background)
        let p = image.storage.base
        let area = Double(ny * nx) / 1e4

        // Nuclei: soft-edged ellipsoids with a smooth internal texture.
        for _ in 0..<max(1, Int((nucleiDensity * area).rounded())) {
            let radius = Double(6 + rng.int(below: 10))
            let cy = Double(rng.int(below: ny)), cx = Double(rng.int(below: nx))
            let cz = Double(rng.int(below: nz))
            let ry = radius * Double(0.8 + 0.4 * rng.uniform()), rx = radius * Double(0.8 + 0.4 * rng.uniform())
            let rz = is3D ? radius * 0.6 : 1
            let angle = Double(rng.uniform()) * .pi
            let brightness = Float(0.4 + 0.5 * rng.uniform())
            let phase = (Double(rng.uniform()) * 6.28, Double(rng.uniform()) * 6.28)
            let (ca, sa) = (cos(angle), sin(angle))
            let reach = Int(radius * 1.5) + 2
            for z in max(0, Int(cz) - reach)..<min(nz, Int(cz) + reach + 1) {
                for y in max(0, Int(cy) - reach)..<min(ny, Int(cy) + reach + 1) {
                    for x in max(0, Int(cx) - reach)..<min(nx, Int(cx) + reach + 1) {
                        let dy = Double(y) - cy, dx = Double(x) - cx, dz = is3D ? Double(z) - cz : 0
                        let u = (ca * dx + sa * dy) / rx, v = (-sa * dx + ca * dy) / ry, w = dz / rz
                        let r = (u * u + v * v + w * w).squareRoot()
                        let edge = 1 / (1 + exp((r - 1) * 12))
                        guard edge > 1e-3 else { continue }
                        let texture = 0.75 + 0.25 * sin(Double(x) * 0.45 + phase.0) * cos(Double(y) * 0.38 + phase.1)
                        let i = (z * ny + y) * nx + x
                        p[i] = max(p[i], brightness * Float(edge * texture))
                    }
                }
            }
        }

        // Filaments: smooth random walks drawn as thin Gaussian lines.
        for _ in 0..<max(1, Int((filamentDensity * area).rounded())) {
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
                        p[i] = max(p[i], brightness * Float(exp(-d2 / 0.5)))
                    }
                }
            }
        }

        let psf = try PSFConfig(model: .gaussian, dxy: 1, dz: 1,
                                nxy: 2 * Int((4 * blurSigma).rounded(.up)) + 1,
                                nz: is3D ? 2 * Int((8 * blurSigma).rounded(.up)) + 1 : nil,
                                sigmaXY: blurSigma, sigmaZ: 2 * blurSigma).generate()
        var blurred = try fftConvolve(image, psf, boundary: .reflect)
        let peak = blurred.scalars.max() ?? 1
        blurred.withUnsafeMutableBufferPointer { b in
            for i in 0..<b.count { b[i] = max(0, b[i]) / peak }
        }
        return blurred
    }
}
