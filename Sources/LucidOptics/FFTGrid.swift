import Foundation
import LucidCore

/// How an image is extended beyond its edges before an FFT convolution.
public enum Boundary: String, Codable, Sendable, CaseIterable {
    /// Zeros outside the image (linear convolution, like `scipy.signal.fftconvolve`).
    case zero
    /// Mirror without repeating the edge sample (NumPy's `reflect`).
    case reflect
    /// The image repeats (circular convolution on the image's own grid, no padding).
    case periodic
}

/// The FFT grid behind a convolution of an image with a kernel: padded shape, in-place FFTW
/// plan, and per-axis maps from grid positions to image positions. Ranks 1–3 are handled as 3-D
/// (leading extents of 1).
struct FFTGrid: @unchecked Sendable {
    /// Image shape as given.
    let imageShape: [Int]
    /// Image extents promoted to 3-D `[z, y, x]`.
    let s: [Int]
    /// Grid extents promoted to 3-D.
    let p: [Int]
    /// FFT plan on the grid (at the image's own rank).
    let plan: RealFFTPlan
    /// For each axis and grid position: the image index it holds, or -1 for zero.
    let maps: [[Int]]
    /// Like `maps`, with zeros outside the image (the adjoint of cropping).
    let zeroMaps: [[Int]]

    var rowStride: Int { plan.rowStride }
    /// Complex values in the half spectrum.
    var spectrumCount: Int { plan.bufferCount / 2 }

    static func promote(_ shape: [Int]) -> [Int] { [Int](repeating: 1, count: 3 - shape.count) + shape }

    init(imageShape: [Int], kernelShape: [Int], boundary: Boundary, op: String) throws {
        guard (1...3).contains(imageShape.count), imageShape.allSatisfy({ $0 > 0 }) else {
            throw TensorError.invalidArgument(op: op, detail: "image shape \(imageShape) must have rank 1–3 and positive extents")
        }
        guard kernelShape.count == imageShape.count, kernelShape.allSatisfy({ $0 > 0 }) else {
            throw TensorError.shapeMismatch(op: op, detail: "kernel \(kernelShape) must have the rank of image \(imageShape) and positive extents")
        }
        self.imageShape = imageShape
        s = Self.promote(imageShape)
        let k = Self.promote(kernelShape)
        var gridShape: [Int] = []
        for a in 0..<3 {
            // `same` output needs no wrap into the image: zero padding needs room for the larger
            // kernel half only; reflect needs both halves' reflections side by side.
            let c = (k[a] - 1) / 2
            switch boundary {
            case .periodic: gridShape.append(s[a])
            case .zero: gridShape.append(FFT.fastLength(s[a] + max(c, k[a] - 1 - c)))
            case .reflect: gridShape.append(FFT.fastLength(s[a] + k[a] - 1))
            }
        }
        p = gridShape
        plan = try FFT.plan(shape: Array(gridShape.suffix(imageShape.count)))
        let sizes = s
        var axisMaps: [[Int]] = [], zeroAxisMaps: [[Int]] = []
        for a in 0..<3 {
            let (n, g) = (sizes[a], gridShape[a])
            zeroAxisMaps.append((0..<g).map { $0 < n ? $0 : -1 })
            // Right of the image: the kernel's centre offset plus half the spare room; the rest,
            // wrapping, is left of it.
            let right = (k[a] - 1) / 2 + max(0, g - n - (k[a] - 1)) / 2
            axisMaps.append((0..<g).map { Self.source($0, size: n, grid: g, right: right, boundary: boundary) })
        }
        maps = axisMaps
        zeroMaps = zeroAxisMaps
    }

    /// Image index held at grid position `g` (the image sits at the grid origin; the first
    /// `right` positions after it extend its right edge, the others, wrapping, its left edge).
    static func source(_ g: Int, size n: Int, grid: Int, right: Int, boundary: Boundary) -> Int {
        if g < n { return g }
        switch boundary {
        case .zero: return -1
        case .periodic: return g % n
        case .reflect:
            if n == 1 { return 0 }
            let q = g - n < right ? g : g - grid
            let period = 2 * n - 2
            let m = ((q % period) + period) % period
            return m < n ? m : period - m
        }
    }

    /// Writes `x` (image-shaped, contiguous) into `buffer` (grid layout) extended by `maps`.
    func pad(_ x: UnsafePointer<Float>, into buffer: UnsafeMutablePointer<Float>, maps: [[Int]]) {
        let (sy, sx) = (s[1], s[2])
        let (py, px) = (p[1], p[2])
        let rs = rowStride
        Threads.parallelChunks(p[0] * py, minChunk: 8) { range in
            maps[0].withUnsafeBufferPointer { mz in
            maps[1].withUnsafeBufferPointer { my in
            maps[2].withUnsafeBufferPointer { mx in
                for row in range {
                    let gz = row / py, gy = row % py
                    let dst = buffer + row * rs
                    let zs = mz[gz], ys = my[gy]
                    if zs < 0 || ys < 0 {
                        dst.update(repeating: 0, count: px)
                        continue
                    }
                    let src = x + (zs * sy + ys) * sx
                    dst.update(from: src, count: sx)
                    for gx in sx..<px {
                        let m = mx[gx]
                        dst[gx] = m < 0 ? 0 : src[m]
                    }
                }
            }}}
        }
    }

    /// The adjoint of `pad`: adds every grid value into the image position it came from.
    func fold(_ buffer: UnsafePointer<Float>, into x: UnsafeMutablePointer<Float>, maps: [[Int]], scale: Float) {
        let (sz, sy, sx) = (s[0], s[1], s[2])
        let (pz, py, px) = (p[0], p[1], p[2])
        let rs = rowStride
        var sourcesOfZ = [[Int]](repeating: [], count: sz)
        for gz in 0..<pz where maps[0][gz] >= 0 { sourcesOfZ[maps[0][gz]].append(gz) }
        x.update(repeating: 0, count: sz * sy * sx)
        Threads.parallelFor(sz) { z in
            maps[1].withUnsafeBufferPointer { my in
            maps[2].withUnsafeBufferPointer { mx in
                for gz in sourcesOfZ[z] {
                    for gy in 0..<py where my[gy] >= 0 {
                        let src = buffer + (gz * py + gy) * rs
                        let dst = x + (z * sy + my[gy]) * sx
                        for gx in 0..<sx { dst[gx] += scale * src[gx] }
                        for gx in sx..<px where mx[gx] >= 0 { dst[mx[gx]] += scale * src[gx] }
                    }
                }
            }}
        }
    }

    /// Copies the image region of the grid buffer into `x` (the first `s` positions per axis).
    func crop(_ buffer: UnsafePointer<Float>, into x: UnsafeMutablePointer<Float>) {
        let (sy, sx) = (s[1], s[2])
        let py = p[1], rs = rowStride
        Threads.parallelChunks(s[0] * sy, minChunk: 8) { range in
            for row in range {
                let z = row / sy, y = row % sy
                (x + row * sx).update(from: buffer + (z * py + y) * rs, count: sx)
            }
        }
    }

    /// The kernel's spectrum on this grid, scaled by `1/count` so that a forward FFT, a product
    /// with it and an inverse FFT convolve with unit gain. The kernel's centre (index `(k-1)/2`
    /// per axis, as `scipy.signal.fftconvolve(mode: "same")`) goes to the grid origin; a kernel
    /// larger than a periodic grid wraps around.
    func kernelSpectrum(_ kernel: Tensor) -> FFTWBuffer {
        let k = Self.promote(kernel.shape)
        let c = k.map { ($0 - 1) / 2 }
        let buffer = FFTWBuffer(count: plan.bufferCount)
        let rs = rowStride
        // Zero in parallel (first touch also spreads the pages).
        Threads.parallelChunks(plan.bufferCount, minChunk: 1 << 16) { r in
            (buffer.base + r.lowerBound).update(repeating: 0, count: r.count)
        }
        let fits = (0..<3).allSatisfy { k[$0] <= p[$0] }
        kernel.withUnsafeBufferPointer { kp in
            var i = 0
            for kz in 0..<k[0] {
                for ky in 0..<k[1] {
                    // Corner placement when the kernel fits (shifted by a phase ramp below), else
                    // centre at the origin with wrap-around.
                    let gz = fits ? kz : ((kz - c[0]) % p[0] + p[0]) % p[0]
                    let gy = fits ? ky : ((ky - c[1]) % p[1] + p[1]) % p[1]
                    let row = buffer.base + (gz * p[1] + gy) * rs
                    for kx in 0..<k[2] {
                        let gx = fits ? kx : ((kx - c[2]) % p[2] + p[2]) % p[2]
                        row[gx] += kp[i]
                        i += 1
                    }
                }
            }
        }
        let n = Float(plan.count)
        guard fits else {
            plan.forward(buffer.base)
            scale(buffer.base, count: buffer.count, by: 1 / n)
            return buffer
        }
        FFT.prunedPlan(grid: p, kernel: k).forward(buffer.base)
        // Shift the kernel centre to the origin: multiply by exp(+2πi·c·f/p) per axis, and by 1/n.
        func ramp(_ c: Int, _ size: Int, _ count: Int) -> [(Float, Float)] {
            (0..<count).map { f in
                let a = 2 * Double.pi * Double(c * f % size) / Double(size)
                return (Float(cos(a)), Float(sin(a)))
            }
        }
        let hx = p[2] / 2 + 1
        let rz = ramp(c[0], p[0], p[0]), ry = ramp(c[1], p[1], p[1]), rx = ramp(c[2], p[2], hx)
        let b = buffer.base
        Threads.parallelChunks(p[0] * p[1], minChunk: 16) { range in
            rx.withUnsafeBufferPointer { rx in
                for row in range {
                    let (az, bz) = rz[row / p[1]], (ay, by) = ry[row % p[1]]
                    let ar = (az * ay - bz * by) / n, ai = (az * by + bz * ay) / n
                    let d = b + row * rs
                    for f in 0..<hx {
                        let (cr, ci) = (ar * rx[f].0 - ai * rx[f].1, ar * rx[f].1 + ai * rx[f].0)
                        let (vr, vi) = (d[2 * f], d[2 * f + 1])
                        d[2 * f] = vr * cr - vi * ci
                        d[2 * f + 1] = vr * ci + vi * cr
                    }
                }
            }
        }
        return buffer
    }
}

/// `x[i] *= a` over `count` floats, in parallel.
func scale(_ x: UnsafeMutablePointer<Float>, count: Int, by a: Float) {
    Threads.parallelChunks(count, minChunk: 1 << 16) { r in
        for i in r { x[i] *= a }
    }
}

/// Multiplies the interleaved complex values of `x` by those of `h` (or by their conjugates).
func multiplySpectrum(_ x: UnsafeMutablePointer<Float>, by h: UnsafePointer<Float>, count: Int, conjugate: Bool) {
    let sign: Float = conjugate ? -1 : 1
    Threads.parallelChunks(count, minChunk: 1 << 15) { r in
        var i = r.lowerBound
        // 8 complex values at a time: real parts in the even lanes, imaginary in the odd.
        while i + 8 <= r.upperBound {
            let xv = load16(x, 2 * i), hv = load16(h, 2 * i)
            let (xr, xi, hr, hi) = (xv.evenHalf, xv.oddHalf, hv.evenHalf, sign * hv.oddHalf)
            let re = xr * hr - xi * hi, im = xr * hi + xi * hr
            var out = SIMD16<Float>()
            for j in 0..<8 { out[2 * j] = re[j]; out[2 * j + 1] = im[j] }
            store16(out, x, 2 * i)
            i += 8
        }
        while i < r.upperBound {
            let xr = x[2 * i], xi = x[2 * i + 1]
            let hr = h[2 * i], hi = sign * h[2 * i + 1]
            x[2 * i] = xr * hr - xi * hi
            x[2 * i + 1] = xr * hi + xi * hr
            i += 1
        }
    }
}
