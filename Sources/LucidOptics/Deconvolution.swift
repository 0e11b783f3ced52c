import Foundation
import LucidCore

/// Settings of Richardson–Lucy deconvolution.
public struct RichardsonLucyOptions: Sendable {
    /// Maximum number of iterations.
    public var iterations: Int
    /// Total-variation weight λ (Dey et al. 2006); 0 disables the regularization.
    public var tv: Float
    /// Stop once the relative change ‖xₖ₊₁ − xₖ‖₂ / ‖xₖ‖₂ falls below this (nil: run all iterations).
    public var tolerance: Float?
    /// How the image is extended past its edges (`periodic` pads nothing and uses least memory).
    public var boundary: Boundary
    /// Draw a progress bar on stderr.
    public var progress: Bool

    public init(iterations: Int = 20, tv: Float = 0, tolerance: Float? = nil,
                boundary: Boundary = .reflect, progress: Bool = false) {
        self.iterations = iterations
        self.tv = tv
        self.tolerance = tolerance
        self.boundary = boundary
        self.progress = progress
    }
}

/// The outcome of an iterative deconvolution.
public struct DeconvolutionResult: Sendable {
    /// The restored image (same shape as the input).
    public var image: Tensor
    /// Iterations actually run.
    public var iterations: Int
    /// Relative change of the last iteration.
    public var lastChange: Float
}

/// Regularizer of Tikhonov deconvolution.
public enum TikhonovRegularizer: String, Sendable, Codable {
    /// Penalizes ‖x‖² (Wiener filter with a constant noise-to-signal ratio).
    case identity
    /// Penalizes ‖∇²x‖² (smoothness).
    case laplacian
}

/// Deconvolution of 1-, 2- and 3-D images by a PSF (normalized to sum 1 internally).
public enum Deconvolution {
    /// Richardson–Lucy: `x ← x · Hᵀ(y / Hx)`, starting from the image mean, kept non-negative.
    ///
    /// The OTF is computed once; each iteration is two forward and two inverse real FFTs on
    /// the padded grid. Live memory: the input, two grid-sized real buffers and the half-spectrum
    /// OTF (the padded observation is never stored; it is read through the boundary maps).
    /// Negative input values are treated as 0.
    public static func richardsonLucy(_ image: Tensor, psf: Tensor,
                                      options: RichardsonLucyOptions = RichardsonLucyOptions()) throws -> DeconvolutionResult {
        let op = "Deconvolution.richardsonLucy"
        guard options.iterations >= 1 else {
            throw TensorError.invalidArgument(op: op, detail: "iterations \(options.iterations) must be at least 1")
        }
        guard options.tv >= 0, options.tv < 0.5 else {
            throw TensorError.invalidArgument(op: op, detail: "tv \(options.tv) must be in [0, 0.5)")
        }
        let kernel = try normalizedPSF(psf, op: op)
        let grid = try FFTGrid(imageShape: image.shape, kernelShape: kernel.shape, boundary: options.boundary, op: op)
        var otf: FFTWBuffer? = grid.kernelSpectrum(kernel)
        let plan = grid.plan
        let rs = grid.rowStride, px = grid.p[2]
        let rows = plan.rows

        // The observation is read through the grid's maps (no padded copy is kept).
        let (sy, sx, py) = (grid.s[1], grid.s[2], grid.p[1])
        let maps = grid.maps.map { m -> UnsafeMutablePointer<Int> in
            let p = UnsafeMutablePointer<Int>.allocate(capacity: m.count)
            p.initialize(from: m, count: m.count)
            return p
        }
        defer { maps.forEach { $0.deallocate() } }
        let (mz, my, mx) = (maps[0], maps[1], maps[2])
        let obs = UnsafePointer(image.storage.base)

        // Start from the mean of the observation.
        let total = image.withUnsafeBufferPointer { $0.reduce(0.0) { $0 + Double(max($1, 0)) } }
        let mean = Float(max(total / Double(image.count), 1e-12))
        let estimate = FFTWBuffer(count: plan.bufferCount)
        var work: FFTWBuffer? = FFTWBuffer(count: plan.bufferCount)
        estimate.base.update(repeating: mean, count: plan.bufferCount)
        work!.base.update(repeating: mean, count: plan.bufferCount)

        let bar = options.progress ? ProgressBar(total: options.iterations, label: "Richardson–Lucy") : nil
        let blocks = min(rows, 64)
        var done = 0
        var change: Float = .infinity
        while done < options.iterations {
            let w = work!.base, h = otf!.base
            // work ← H·x
            plan.forward(w)
            multiplySpectrum(w, by: h, count: grid.spectrumCount, conjugate: false)
            plan.inverse(w)
            // work ← y / H·x, y extended past the image by the boundary maps
            Threads.parallelChunks(rows, minChunk: 4) { range in
                @inline(__always) func ratio(_ o: Float, _ c: Float) -> Float { c > 1e-12 ? max(o, 0) / c : 0 }
                for r in range {
                    let d = w + r * rs
                    let zs = mz[r / py], ys = my[r % py]
                    if zs < 0 || ys < 0 {
                        d.update(repeating: 0, count: px)
                        continue
                    }
                    let o = obs + (zs * sy + ys) * sx
                    var x = 0
                    let tiny = SIMD16<Float>(repeating: 1e-12), zero = SIMD16<Float>()
                    while x + 16 <= sx {
                        let c = load16(d, x)
                        store16((pointwiseMax(load16(o, x), zero) / c).replacing(with: 0, where: c .<= tiny), d, x)
                        x += 16
                    }
                    while x < sx { d[x] = ratio(o[x], d[x]); x += 1 }
                    for x in sx..<px { d[x] = mx[x] < 0 ? 0 : ratio(o[mx[x]], d[x]) }
                }
            }
            // work ← Hᵀ(y / H·x)
            plan.forward(w)
            multiplySpectrum(w, by: h, count: grid.spectrumCount, conjugate: true)
            plan.inverse(w)
            if options.tv > 0 { applyTV(estimate: estimate.base, correction: w, grid: grid, lambda: options.tv, scale: mean) }
            // x ← max(x · correction, 0); work ← x
            var partial = [Double](repeating: 0, count: 2 * blocks)
            let e = estimate.base
            partial.withUnsafeMutableBufferPointer { sums in
                let sums = sums.baseAddress!
                Threads.parallelFor(blocks) { b in
                    var diff = 0.0, norm = 0.0
                    for r in (rows * b / blocks)..<(rows * (b + 1) / blocks) {
                        let er = e + r * rs, wr = w + r * rs
                        var dLanes = SIMD16<Float>(), nLanes = SIMD16<Float>()
                        var x = 0
                        while x + 16 <= px {
                            let old = load16(er, x)
                            let new = pointwiseMax(old * load16(wr, x), SIMD16<Float>())
                            store16(new, er, x)
                            store16(new, wr, x)
                            dLanes = dLanes.addingProduct(new - old, new - old)
                            nLanes = nLanes.addingProduct(old, old)
                            x += 16
                        }
                        var dRow = dLanes.sum(), nRow = nLanes.sum()
                        while x < px {
                            let old = er[x]
                            let new = max(old * wr[x], 0)
                            er[x] = new
                            wr[x] = new
                            dRow += (new - old) * (new - old)
                            nRow += old * old
                            x += 1
                        }
                        diff += Double(dRow)
                        norm += Double(nRow)
                    }
                    sums[2 * b] = diff
                    sums[2 * b + 1] = norm
                }
            }
            var diff = 0.0, norm = 0.0
            for b in 0..<blocks { diff += partial[2 * b]; norm += partial[2 * b + 1] }
            change = Float((diff / max(norm, 1e-30)).squareRoot())
            done += 1
            bar?.update(done, status: String(format: "change %.2e", change))
            if let tol = options.tolerance, change < tol { break }
        }
        bar?.finish(done)
        work = nil
        otf = nil
        var out = Tensor(uninitialized: image.shape)
        out.withUnsafeMutableBufferPointer { grid.crop(estimate.base, into: $0.baseAddress!) }
        return DeconvolutionResult(image: out, iterations: done, lastChange: change)
    }

    /// Divides the RL correction by `1 − λ·div(∇x/|∇x|)` (the total-variation term of
    /// Dey et al.), the denominator kept ≥ 0.5 for stability.
    static func applyTV(estimate: UnsafeMutablePointer<Float>, correction: UnsafeMutablePointer<Float>,
                        grid: FFTGrid, lambda: Float, scale: Float) {
        let (pz, py, px) = (grid.p[0], grid.p[1], grid.p[2])
        let rs = grid.rowStride
        let eps2 = (1e-3 * scale) * (1e-3 * scale)
        let u = UnsafePointer(estimate)
        @inline(__always) func at(_ z: Int, _ y: Int, _ x: Int) -> Float { u[(z * py + y) * rs + x] }
        /// Normalized forward-difference gradient at (z, y, x), zero past the last index.
        @inline(__always) func normal(_ z: Int, _ y: Int, _ x: Int) -> (Float, Float, Float) {
            let c = at(z, y, x)
            let gz = z + 1 < pz ? at(z + 1, y, x) - c : 0
            let gy = y + 1 < py ? at(z, y + 1, x) - c : 0
            let gx = x + 1 < px ? at(z, y, x + 1) - c : 0
            let inv = 1 / (gz * gz + gy * gy + gx * gx + eps2).squareRoot()
            return (gz * inv, gy * inv, gx * inv)
        }
        Threads.parallelChunks(pz * py, minChunk: 4) { range in
            for row in range {
                let z = row / py, y = row % py
                let w = correction + row * rs
                for x in 0..<px {
                    let n = normal(z, y, x)
                    var div = n.0 + n.1 + n.2
                    if z > 0 { div -= normal(z - 1, y, x).0 }
                    if y > 0 { div -= normal(z, y - 1, x).1 }
                    if x > 0 { div -= normal(z, y, x - 1).2 }
                    w[x] /= max(1 - lambda * div, 0.5)
                }
            }
        }
    }

    /// Tikhonov / Wiener deconvolution: `X = H* Y / (|H|² + λ·R)` with `R = 1` (identity) or the
    /// squared Laplacian symbol. `regularization` is λ (relative to a PSF of sum 1).
    public static func tikhonov(_ image: Tensor, psf: Tensor, regularization: Float,
                                regularizer: TikhonovRegularizer = .identity,
                                boundary: Boundary = .reflect) throws -> Tensor {
        let op = "Deconvolution.tikhonov"
        guard regularization > 0 else {
            throw TensorError.invalidArgument(op: op, detail: "regularization \(regularization) must be positive")
        }
        let kernel = try normalizedPSF(psf, op: op)
        let grid = try FFTGrid(imageShape: image.shape, kernelShape: kernel.shape, boundary: boundary, op: op)
        let otf = grid.kernelSpectrum(kernel)
        let plan = grid.plan
        let buffer = plan.makeBuffer()
        image.withUnsafeBufferPointer { grid.pad($0.baseAddress!, into: buffer.base, maps: grid.maps) }
        plan.forward(buffer.base)
        let (pz, py, px) = (grid.p[0], grid.p[1], grid.p[2])
        let hx = px / 2 + 1
        let n = Float(plan.count)
        func symbol(_ k: Int, _ size: Int) -> Float { 2 - 2 * Float(cos(2 * Double.pi * Double(k) / Double(size))) }
        let b = buffer.base, h = otf.base
        Threads.parallelChunks(pz * py, minChunk: 4) { range in
            for row in range {
                let lzy = symbol(row / py, pz) + symbol(row % py, py)
                for kx in 0..<hx {
                    let i = row * hx + kx
                    let hr = h[2 * i] * n, hi = h[2 * i + 1] * n
                    var r: Float = 1
                    if regularizer == .laplacian { let l = lzy + symbol(kx, px); r = l * l }
                    let g = 1 / ((hr * hr + hi * hi + regularization * r) * n)
                    let yr = b[2 * i], yi = b[2 * i + 1]
                    b[2 * i] = (hr * yr + hi * yi) * g
                    b[2 * i + 1] = (hr * yi - hi * yr) * g
                }
            }
        }
        plan.inverse(buffer.base)
        var out = Tensor(uninitialized: image.shape)
        out.withUnsafeMutableBufferPointer { grid.crop(buffer.base, into: $0.baseAddress!) }
        return out
    }

    /// The PSF scaled to sum 1; throws when it has no positive mass.
    static func normalizedPSF(_ psf: Tensor, op: String) throws -> Tensor {
        let sum = psf.withUnsafeBufferPointer { $0.reduce(0.0) { $0 + Double($1) } }
        guard sum > 0, sum.isFinite else {
            throw TensorError.invalidArgument(op: op, detail: "PSF of shape \(psf.shape) has sum \(sum); it must be positive")
        }
        var k = psf.copy()
        k.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] = Float(Double(p[i]) / sum) } }
        return k
    }
}
