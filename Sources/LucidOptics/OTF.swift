import Foundation
import LucidCore

/// The optical transfer function of a PSF: its Fourier transform with the PSF's centre
/// (index `(n−1)/2` per axis) moved to the origin, so a symmetric PSF has a real OTF.
///
/// ```swift
/// let otf = try OTF(psf: psf)
/// let support = otf.maxLateralFrequency(spacing: [0.1, 0.05, 0.05])   // cycles/µm, ≈ 2NA/λ
/// ```
public struct OTF: @unchecked Sendable {
    /// Real-space grid shape of the transform.
    public let shape: [Int]
    let grid: FFTGrid
    /// Half spectrum (interleaved complex, FFTW layout); `OTF(0)` is the PSF's sum.
    let spectrum: FFTWBuffer

    /// Transforms `psf` on a grid of `shape` (default: the PSF's own shape; a PSF larger than the
    /// grid wraps around).
    public init(psf: Tensor, shape: [Int]? = nil) throws {
        let s = shape ?? psf.shape
        grid = try FFTGrid(imageShape: s, kernelShape: psf.shape, boundary: .periodic, op: "OTF")
        self.shape = s
        spectrum = grid.kernelSpectrum(psf)
        scale(spectrum.base, count: spectrum.count, by: Float(grid.plan.count))
    }

    /// Frequency (cycles per unit of `spacing`) of index `k` on an axis of `n` samples.
    public static func frequency(_ k: Int, _ n: Int, spacing: Double) -> Double {
        Double(k <= n / 2 ? k : k - n) / (Double(n) * spacing)
    }

    /// `|OTF| / |OTF(0)|` on the full frequency grid, zero frequency at index `n/2` per axis.
    public func magnitude() -> Tensor {
        let s = FFTGrid.promote(shape)
        let hx = s[2] / 2 + 1
        let dc = Double(hypot(spectrum.base[0], spectrum.base[1]))
        var out = Tensor(uninitialized: shape)
        out.withUnsafeMutableBufferPointer { o in
            for kz in 0..<s[0] { for ky in 0..<s[1] { for kx in 0..<s[2] {
                // The other half follows from Hermitian symmetry.
                let (z, y, x) = kx < hx ? (kz, ky, kx) : ((s[0] - kz) % s[0], (s[1] - ky) % s[1], s[2] - kx)
                let i = (z * s[1] + y) * hx + x
                let m = Double(hypot(spectrum.base[2 * i], spectrum.base[2 * i + 1])) / max(dc, 1e-30)
                let oz = (kz + s[0] / 2) % s[0], oy = (ky + s[1] / 2) % s[1], ox = (kx + s[2] / 2) % s[2]
                o[(oz * s[1] + oy) * s[2] + ox] = Float(m)
            }}}
        }
        return out
    }

    /// The PSF back from the OTF, centred at `(n−1)/2` in a box of `size` (default: the grid).
    public func psf(size: [Int]? = nil) throws -> Tensor {
        let size = size ?? shape
        guard size.count == shape.count, zip(size, shape).allSatisfy({ $0 > 0 && $0 <= $1 }) else {
            throw TensorError.invalidArgument(op: "OTF.psf", detail: "size \(size) must have positive extents within the OTF grid \(shape)")
        }
        let plan = grid.plan
        let buffer = FFTWBuffer(count: plan.bufferCount)
        buffer.base.update(from: spectrum.base, count: plan.bufferCount)
        plan.inverse(buffer.base)
        let s = FFTGrid.promote(shape), b = FFTGrid.promote(size)
        let c = b.map { ($0 - 1) / 2 }
        let n = Float(plan.count), rs = plan.rowStride
        var out = Tensor(uninitialized: size)
        out.withUnsafeMutableBufferPointer { o in
            var i = 0
            for z in 0..<b[0] { for y in 0..<b[1] { for x in 0..<b[2] {
                let gz = ((z - c[0]) % s[0] + s[0]) % s[0], gy = ((y - c[1]) % s[1] + s[1]) % s[1]
                let gx = ((x - c[2]) % s[2] + s[2]) % s[2]
                o[i] = buffer.base[(gz * s[1] + gy) * rs + gx] / n
                i += 1
            }}}
        }
        return out
    }

    /// The largest lateral frequency `√(fy² + fx²)` (cycles/µm for `spacing` in µm, one spacing per
    /// axis) where `|OTF| / |OTF(0)|` exceeds `threshold`.
    public func maxLateralFrequency(spacing: [Double], threshold: Double = 1e-3) -> Double {
        let mag = magnitude()
        let s = FFTGrid.promote(shape)
        let sp = [Double](repeating: 1, count: 3 - spacing.count) + spacing
        var best = 0.0
        mag.withUnsafeBufferPointer { m in
            for z in 0..<s[0] { for y in 0..<s[1] { for x in 0..<s[2] where Double(m[(z * s[1] + y) * s[2] + x]) > threshold {
                let fy = Double(y - s[1] / 2) / (Double(s[1]) * sp[1]), fx = Double(x - s[2] / 2) / (Double(s[2]) * sp[2])
                best = max(best, (fy * fy + fx * fx).squareRoot())
            }}}
        }
        return best
    }

    /// Mean of `image` in rings (2-D) or shells (3-D) around index `n/2` per axis, in `bins` bins of
    /// physical radius (`spacing` per axis). Returns bin centres and means (empty bins give 0).
    public static func radialProfile(_ image: Tensor, spacing: [Double], bins: Int) throws -> (radius: [Double], mean: [Double]) {
        guard (1...3).contains(image.rank), spacing.count == image.rank, spacing.allSatisfy({ $0 > 0 }), bins > 0 else {
            throw TensorError.invalidArgument(op: "OTF.radialProfile", detail: "image \(image.shape) needs one positive spacing per axis (got \(spacing)) and bins > 0 (got \(bins))")
        }
        let s = FFTGrid.promote(image.shape)
        let sp = [Double](repeating: 1, count: 3 - spacing.count) + spacing
        func r(_ z: Int, _ y: Int, _ x: Int) -> Double {
            let a = Double(z - s[0] / 2) * sp[0], b = Double(y - s[1] / 2) * sp[1], c = Double(x - s[2] / 2) * sp[2]
            return (a * a + b * b + c * c).squareRoot()
        }
        let rMax = r(0, 0, 0) + 1e-9
        var sum = [Double](repeating: 0, count: bins), count = [Double](repeating: 0, count: bins)
        image.withUnsafeBufferPointer { v in
            var i = 0
            for z in 0..<s[0] { for y in 0..<s[1] { for x in 0..<s[2] {
                let b = min(bins - 1, Int(r(z, y, x) / rMax * Double(bins)))
                sum[b] += Double(v[i]); count[b] += 1
                i += 1
            }}}
        }
        let radius = (0..<bins).map { (Double($0) + 0.5) * rMax / Double(bins) }
        return (radius, zip(sum, count).map { $1 > 0 ? $0 / $1 : 0 })
    }
}
