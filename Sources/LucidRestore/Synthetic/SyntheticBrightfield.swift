import Foundation
import LucidCore
import LucidImaging
import LucidOptics

/// A synthetic paired acquisition for label-free prediction (brightfield → fluorescence): the
/// fluorescence of the nuclei of a `SyntheticSpecimen` and a transmitted-light image of the
/// same cells, simulated through `BrightfieldOptics`. Deterministic per seed; `[Y, X]` or
/// `[Z, Y, X]`.
///
/// Each nucleus gets a cell: a cytoplasm body about twice its size and a few granules. The
/// cells delay light (refractive index above the medium's: cytoplasm `indexContrast`, nuclei
/// 1.5×, granules 3×; nuclei textured by their chromatin) and absorb a little (`absorption` per
/// µm in nuclei, ¼ of it in cytoplasm, 4× in granules). In 2D the cells are thin domes
/// (`cellHeight` thick, nuclei 0.7 of that) seen `defocus` µm out of focus; in 3D they are
/// ellipsoids in a volume of `zStep`-thick slices, and plane `k` of the stack is focused at
/// slice `k` (plus `defocus`). The intensity is multiplied by a smooth illumination shading,
/// scaled to `photons` photo-electrons where nothing is in the way, and gets Poisson and
/// Gaussian read noise (`DegradationSimulator`). The target is the nuclei map blurred by a
/// Gaussian approximation of the widefield PSF at `emissionWavelength`, in [0, 1].
///
/// ```swift
/// let pair = try SyntheticBrightfield(shape: [256, 256], seed: 3).render()
/// // pair.signal: brightfield in photo-electrons; pair.target: nuclei fluorescence in [0, 1]
/// ```
public struct SyntheticBrightfield: Sendable {
    /// The cells' layout (shape, seed, nuclei density); nuclei density defaults to 2 per 10⁴ px².
    public var specimen: SyntheticSpecimen
    /// Transmitted-light optics (wavelength, NAs, pixel size in µm).
    public var optics = BrightfieldOptics()
    /// Slice thickness of 3D stacks, µm.
    public var zStep = 0.5
    /// Focal plane beyond the specimen (2D) or beyond each slice (3D), µm.
    public var defocus = 2.0
    /// Thickness of a 2D cell at its centre, µm.
    public var cellHeight = 6.0
    /// Refractive index of the cytoplasm above the medium's.
    public var indexContrast = 0.03
    /// Amplitude absorption of nuclei per µm (0: a pure phase specimen).
    public var absorption = 0.01
    /// Peak-to-peak variation of the illumination across the field, a fraction of its mean.
    public var shading = 0.2
    /// Mean photo-electrons per pixel of unobstructed illumination.
    public var photons = 3000.0
    /// Gaussian read noise, electrons rms.
    public var readNoise = 2.0
    /// Fluorescence emission wavelength, µm (sets the target's blur with `optics.objectiveNA`).
    public var emissionWavelength = 0.52

    public init(shape: [Int], seed: UInt64 = 0) {
        specimen = SyntheticSpecimen(shape: shape, seed: seed)
        specimen.nucleiDensity = 2
    }

    /// A rendered pair (all of the specimen's shape).
    public struct Pair: Sendable {
        /// The noisy brightfield image, photo-electrons.
        public var signal: Tensor
        /// The nuclei fluorescence, noise-free, in [0, 1].
        public var target: Tensor
        /// The noise-free brightfield image (the mean of `signal`), photo-electrons.
        public var expected: Tensor
    }

    /// Refuses impossible settings with a message naming the parameter.
    public func validate() throws {
        func fail(_ d: String) -> TensorError { .invalidArgument(op: "SyntheticBrightfield", detail: d) }
        let shape = specimen.shape
        guard shape.count == 2 || shape.count == 3, shape.allSatisfy({ $0 >= 8 }) else {
            throw fail("shape \(shape) must be [Y, X] or [Z, Y, X] with every extent ≥ 8")
        }
        try optics.validate()
        guard zStep > 0, zStep.isFinite else { throw fail("z step \(zStep) µm must be positive") }
        guard defocus.isFinite else { throw fail("defocus \(defocus) µm must be finite") }
        guard cellHeight > 0, cellHeight.isFinite else { throw fail("cell height \(cellHeight) µm must be positive") }
        guard indexContrast >= 0, indexContrast < 0.5 else { throw fail("index contrast \(indexContrast) must lie in [0, 0.5)") }
        guard absorption >= 0, absorption.isFinite else { throw fail("absorption \(absorption) per µm must be ≥ 0") }
        guard shading >= 0, shading < 1 else { throw fail("shading \(shading) must lie in [0, 1)") }
        guard photons > 0, photons.isFinite else { throw fail("photons \(photons) must be positive") }
        guard readNoise >= 0, readNoise.isFinite else { throw fail("read noise \(readNoise) must be ≥ 0") }
        guard emissionWavelength > 0, emissionWavelength.isFinite else {
            throw fail("emission wavelength \(emissionWavelength) µm must be positive")
        }
    }

    /// Renders the brightfield signal and the fluorescence target.
    public func render() throws -> Pair {
        try validate()
        let shape = specimen.shape, is3D = shape.count == 3
        var rng = RandomGenerator(seed: specimen.seed ^ 0xB816_F1E1_D5EE_D000)
        let intensity = try intensity(&rng)
        let field = illumination(ny: shape[shape.count - 2], nx: shape[shape.count - 1], rng: &rng)

        var expected = intensity
        let plane = field.count
        expected.withUnsafeMutableBufferPointer { e in
            for i in e.indices { e[i] *= field[i % plane] * Float(photons) }
        }
        let peak = expected.withUnsafeBufferPointer { $0.max() ?? 0 }
        let simulator = try DegradationSimulator(config: SimulationConfig(photons: Double(peak), readNoise: readNoise, bits: nil))
        let signal = try simulator.degrade(expected, rng: &rng)

        // Widefield PSF as a Gaussian (σ_xy = 0.21 λ/NA, σ_z = 0.66 λn/NA², Zhang et al. 2007), in pixels.
        let nuclei = try specimen.structures().nuclei
        let lateral = 0.21 * emissionWavelength / optics.objectiveNA / optics.pixelSize
        let axial = 0.66 * emissionWavelength * optics.mediumIndex / (optics.objectiveNA * optics.objectiveNA) / zStep
        var target = try Self.gaussianBlur(nuclei, sigmas: is3D ? [axial, lateral, lateral] : [lateral, lateral])
        let top = target.withUnsafeBufferPointer { $0.max() ?? 0 }
        if top > 0 { target.withUnsafeMutableBufferPointer { t in for i in t.indices { t[i] /= top } } }
        return Pair(signal: signal, target: target, expected: expected)
    }

    /// Writes `count` pairs to `folder` as float32 TIFFs (`signal/NNN.tif`, `target/NNN.tif`,
    /// with pixel size and z step) and a pytorch_fnet-style manifest `pairs.csv` with columns
    /// `signal,target,split` (paths relative to `folder`; the last 20 % of the pairs, at least
    /// one when `count` ≥ 2, are `test`, the others `train`). Pair `i` uses seed `seed + i`.
    /// Returns the numbers of train and test pairs.
    @discardableResult
    public func writeDataset(to folder: String, count: Int) throws -> (train: Int, test: Int) {
        guard count >= 1 else {
            throw TensorError.invalidArgument(op: "SyntheticBrightfield", detail: "count \(count) must be at least 1")
        }
        try validate()
        let root = URL(fileURLWithPath: folder)
        for sub in ["signal", "target"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        let test = count >= 2 ? max(1, Int((Double(count) * 0.2).rounded())) : 0
        let digits = max(3, String(count - 1).count)
        let is3D = specimen.shape.count == 3
        var csv = "signal,target,split\n"
        for i in 0..<count {
            var generator = self
            generator.specimen.seed = specimen.seed &+ UInt64(i)
            let pair = try generator.render()
            let name = String(repeating: "0", count: max(0, digits - String(i).count)) + String(i) + ".tif"
            for (sub, data) in [("signal", pair.signal), ("target", pair.target)] {
                let image = Image(data: data, axes: is3D ? "ZYX" : "YX", pixelSize: optics.pixelSize, zSpacing: is3D ? zStep : nil)
                try image.write(to: root.appendingPathComponent(sub).appendingPathComponent(name).path, as: .float32)
            }
            csv += "signal/\(name),target/\(name),\(i >= count - test ? "test" : "train")\n"
        }
        try csv.write(to: root.appendingPathComponent("pairs.csv"), atomically: true, encoding: .utf8)
        return (count - test, test)
    }

    /// A smooth illumination field `[Y·X]` with mean 1 and peak-to-peak `shading`: a gradient
    /// in a random direction plus a vignetting fall-off from a random centre.
    private func illumination(ny: Int, nx: Int, rng: inout RandomGenerator) -> [Float] {
        let angle = Double(rng.uniform()) * 2 * .pi
        let tilt = 0.3 + 0.7 * Double(rng.uniform()), vignette = 0.3 + 0.7 * Double(rng.uniform())
        let (cy, cx) = (Double(rng.uniform()) - 0.5, Double(rng.uniform()) - 0.5)
        var g = [Double](repeating: 0, count: ny * nx)
        for y in 0..<ny {
            let v = 2 * Double(y) / Double(ny - 1) - 1
            for x in 0..<nx {
                let u = 2 * Double(x) / Double(nx - 1) - 1
                g[y * nx + x] = tilt * (cos(angle) * u + sin(angle) * v) - vignette * ((u - cx) * (u - cx) + (v - cy) * (v - cy))
            }
        }
        let mean = g.reduce(0, +) / Double(g.count)
        let range = max((g.max() ?? 0) - (g.min() ?? 0), 1e-12)
        return g.map { Float(1 + shading * ($0 - mean) / range) }
    }

    /// One cell: its nucleus (the specimen's), a cytoplasm body and granules, in pixels.
    private struct Cell {
        var nucleus: SyntheticSpecimen.Nucleus
        var body: SyntheticSpecimen.Ellipsoid
        /// Thickness at the centre in 2D, µm.
        var height: Double
        var granules: [SyntheticSpecimen.Ellipsoid]
    }

    /// The cells around the specimen's nuclei.
    private func cells(_ rng: inout RandomGenerator) throws -> [Cell] {
        let is3D = specimen.shape.count == 3
        return try specimen.nuclei().map { n in
            let nuc = n.shape
            let height = cellHeight * (0.8 + 0.4 * Double(rng.uniform()))
            let scale = (y: 1.7 + 0.6 * Double(rng.uniform()), x: 1.7 + 0.6 * Double(rng.uniform()))
            let shift = 0.35 * min(nuc.radii.y, nuc.radii.x)
            let (oy, ox) = (shift * (2 * Double(rng.uniform()) - 1), shift * (2 * Double(rng.uniform()) - 1))
            let body = SyntheticSpecimen.Ellipsoid(center: (nuc.center.z, nuc.center.y + oy, nuc.center.x + ox),
                                                   radii: (1.5 * nuc.radii.z, scale.y * nuc.radii.y, scale.x * nuc.radii.x),
                                                   angle: Double(rng.uniform()) * .pi)
            let granules = (0..<(4 + rng.int(below: 9))).map { _ -> SyntheticSpecimen.Ellipsoid in
                // Uniform in the body's ellipse, away from its rim.
                let r = 0.8 * Double(rng.uniform()).squareRoot(), a = Double(rng.uniform()) * 2 * .pi
                let u = r * cos(a) * body.radii.x, v = r * sin(a) * body.radii.y
                let (c, s) = (cos(body.angle), sin(body.angle))
                let dz = is3D ? (2 * Double(rng.uniform()) - 1) * 0.6 * body.radii.z : 0
                let radius = 0.8 + 1.4 * Double(rng.uniform())
                return .init(center: (body.center.z + dz, body.center.y + c * v + s * u, body.center.x + c * u - s * v),
                             radii: (radius * optics.pixelSize / zStep, radius, radius), angle: 0)
            }
            return Cell(nucleus: n, body: body, height: height, granules: granules)
        }
    }

    /// The brightfield intensity of the cells (relative to the illumination), simulated on a
    /// canvas padded so that no cell is cut by its edge and light spread by defocus does not
    /// wrap around (the propagation is periodic), then cropped to the specimen's shape.
    private func intensity(_ rng: inout RandomGenerator) throws -> Tensor {
        let shape = specimen.shape, is3D = shape.count == 3
        let (nz, ny, nx) = is3D ? (shape[0], shape[1], shape[2]) : (1, shape[0], shape[1])
        let cells = try cells(&rng)
        // Lateral spread of the light over the longest propagation, in pixels.
        let distance = Double(nz - 1) * zStep + abs(defocus)
        let sine = optics.objectiveNA / optics.mediumIndex
        let spread = Int((distance * sine / (1 - sine * sine).squareRoot() / optics.pixelSize).rounded(.up)) + 2
        func padding(_ axis: (SyntheticSpecimen.Ellipsoid) -> (Double, Double), _ n: Int) -> (before: Int, size: Int) {
            var lo = 0.0, hi = Double(n - 1)
            for c in cells {
                let (center, radius) = axis(c.body)
                let reach = radius * (is3D ? 1.3 : 1) + 3
                lo = min(lo, center - reach); hi = max(hi, center + reach)
            }
            let before = Int((-lo).rounded(.up)) + spread, after = Int((hi - Double(n - 1)).rounded(.up)) + spread
            return (before, FFT.fastLength(n + before + after))
        }
        let (py, cy) = padding({ ($0.center.y, max($0.radii.y, $0.radii.x)) }, ny)
        let (px, cx) = padding({ ($0.center.x, max($0.radii.y, $0.radii.x)) }, nx)

        // Per canvas pixel: cytoplasm (body), nucleus and granule amounts — thickness in µm (2D)
        // or occupancy in [0, 1] (3D).
        var body = [Float](repeating: 0, count: nz * cy * cx)
        var nucleus = body, granule = body
        func draw(_ map: inout [Float], _ shape: SyntheticSpecimen.Ellipsoid, height: Double,
                  value: (Int, Int) -> Double = { _, _ in 1 }) {
            var shape = shape
            shape.center.y += Double(py); shape.center.x += Double(px)
            let (center, radii) = (shape.center, shape.radii)
            let reach = Int(max(radii.y, radii.x) * (is3D ? 1.5 : 1)) + 2
            let zReach = Int(radii.z * 1.5) + 2
            for z in is3D ? Self.span(center.z, zReach, nz) : 0..<1 {
                for y in Self.span(center.y, reach, cy) {
                    for x in Self.span(center.x, reach, cx) {
                        let r = shape.normalizedRadius(z: Double(z), y: Double(y), x: Double(x), is3D: is3D)
                        // 2D: a dome (1 − r²)^{3/2}, smooth at its rim; 3D: the specimen's soft edge.
                        let amount = is3D ? SyntheticSpecimen.Ellipsoid.edge(r) : height * pow(max(0, 1 - r * r), 1.5)
                        guard amount > 1e-4 else { continue }
                        let i = (z * cy + y) * cx + x
                        map[i] = max(map[i], Float(amount * value(y - py, x - px)))
                    }
                }
            }
        }
        for cell in cells {
            draw(&body, cell.body, height: cell.height)
            draw(&nucleus, cell.nucleus.shape, height: 0.7 * cell.height, value: { y, x in cell.nucleus.texture(y: y, x: x) })
            for g in cell.granules { draw(&granule, g, height: 2 * g.radii.y * optics.pixelSize) }
        }

        // Phase from the optical path (index excess × thickness), and absorption; in 3D per
        // slice of zStep.
        let canvas = is3D ? [nz, cy, cx] : [cy, cx]
        let thickness = is3D ? zStep : 1
        let k = 2 * Double.pi / optics.wavelength
        var phase = Tensor(uninitialized: canvas), absorb = Tensor(uninitialized: canvas)
        phase.withUnsafeMutableBufferPointer { p in
            absorb.withUnsafeMutableBufferPointer { a in
                for i in p.indices {
                    let all = Double(max(body[i], nucleus[i], granule[i]))
                    let (nu, gr) = (Double(nucleus[i]), Double(granule[i]))
                    p[i] = Float(k * thickness * indexContrast * (all + 0.5 * nu + 2 * gr))
                    a[i] = Float(thickness * absorption * (0.25 * all + 0.75 * nu + 3.75 * gr))
                }
            }
        }
        let full = is3D
            ? try optics.stack(phase: phase, absorption: absorb, sliceSpacing: zStep, defocus: defocus)
            : try optics.image(phase: phase, absorption: absorb, defocus: defocus)
        var out = Tensor(uninitialized: shape)
        out.withUnsafeMutableBufferPointer { o in
            full.withUnsafeBufferPointer { f in
                for z in 0..<nz { for y in 0..<ny {
                    (o.baseAddress! + (z * ny + y) * nx).update(from: f.baseAddress! + (z * cy + y + py) * cx + px, count: nx)
                }}
            }
        }
        return out
    }

    /// The indices within `reach` of `center`, clipped to `0..<count` (possibly empty).
    private static func span(_ center: Double, _ reach: Int, _ count: Int) -> Range<Int> {
        let c = Int(center.rounded(.down))
        let lo = min(max(0, c - reach), count), hi = max(min(count, c + reach + 1), lo)
        return lo..<hi
    }

    /// A separable Gaussian blur (σ per axis in pixels, kernels cut at 4σ, mirrored edges). Direct
    /// rather than by FFT: small kernels, and no FFTW planning on each new shape.
    static func gaussianBlur(_ x: Tensor, sigmas: [Double]) throws -> Tensor {
        var current = x.scalars, next = current
        let shape = x.shape
        for (axis, sigma) in sigmas.enumerated() where sigma > 0 {
            let radius = Int((4 * sigma).rounded(.up))
            var weights = (-radius...radius).map { exp(-Double($0 * $0) / (2 * sigma * sigma)) }
            let total = weights.reduce(0, +)
            weights = weights.map { $0 / total }
            let n = shape[axis], inner = shape[(axis + 1)...].reduce(1, *), outer = shape[..<axis].reduce(1, *)
            let mirror = (-radius..<(n + radius)).map { i -> Int in
                guard n > 1 else { return 0 }
                var j = i
                while j < 0 || j >= n { j = j < 0 ? -j : 2 * (n - 1) - j }
                return j
            }
            for o in 0..<outer {
                for i in 0..<n {
                    let base = o * n * inner
                    for r in 0..<inner {
                        var acc = 0.0
                        for (t, w) in weights.enumerated() { acc += w * Double(current[base + mirror[i + t] * inner + r]) }
                        next[base + i * inner + r] = Float(acc)
                    }
                }
            }
            swap(&current, &next)
        }
        return try Tensor(shape: shape, scalars: current)
    }
}
