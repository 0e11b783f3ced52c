import Foundation
import LucidCore

/// Transmitted-light (brightfield) imaging of a specimen given as phase and absorption: Köhler
/// illumination through a condenser, angular-spectrum propagation through the specimen and to
/// the focal plane, and the objective's pupil. Lengths are in µm.
///
/// The specimen multiplies the light by `t = exp(−a + iφ)` (`a`: amplitude absorption, `φ`:
/// phase delay in radians). A partially coherent source is a set of mutually incoherent tilted
/// plane waves filling the condenser aperture (`sourcePoints` of them on a sunflower spiral);
/// their intensities add. Each wave is propagated with the exact angular-spectrum transfer
/// function `exp(2πi·d·√((n/λ)² − |f|²))`, evanescent waves dropped, and cut by the pupil
/// `|f| ≤ NA/λ`. A thick specimen (`stack`) is traversed slice by slice (multislice); the image
/// of a focal plane is the exit field propagated back to it. Boundaries are periodic.
///
/// ```swift
/// let optics = BrightfieldOptics(objectiveNA: 0.5, condenserNA: 0.25, pixelSize: 0.25)
/// let image = try optics.image(phase: phi, absorption: a, defocus: 2)   // 1 where t = 1
/// ```
public struct BrightfieldOptics: Equatable, Sendable {
    /// Illumination wavelength in vacuum.
    public var wavelength: Double
    /// Refractive index of the medium around the specimen (and between it and the focal plane).
    public var mediumIndex: Double
    /// Numerical aperture of the objective (the pupil's cut-off).
    public var objectiveNA: Double
    /// Numerical aperture of the condenser (0: coherent axial illumination; at most `objectiveNA`).
    public var condenserNA: Double
    /// Pixel size in the specimen plane.
    public var pixelSize: Double
    /// Tilted plane waves sampling the condenser aperture (1 is used when `condenserNA` is 0).
    public var sourcePoints: Int

    public init(wavelength: Double = 0.55, mediumIndex: Double = 1.33, objectiveNA: Double = 0.5,
                condenserNA: Double = 0.25, pixelSize: Double = 0.25, sourcePoints: Int = 16) {
        self.wavelength = wavelength; self.mediumIndex = mediumIndex; self.objectiveNA = objectiveNA
        self.condenserNA = condenserNA; self.pixelSize = pixelSize; self.sourcePoints = sourcePoints
    }

    /// Refuses impossible optics with a message naming the parameter.
    public func validate() throws {
        func fail(_ d: String) -> TensorError { .invalidArgument(op: "brightfield", detail: d) }
        guard wavelength > 0, wavelength.isFinite else { throw fail("wavelength \(wavelength) µm must be positive") }
        guard mediumIndex >= 1, mediumIndex.isFinite else { throw fail("medium index \(mediumIndex) must be ≥ 1") }
        guard objectiveNA > 0, objectiveNA < mediumIndex else {
            throw fail("objective NA \(objectiveNA) must be positive and below the medium index \(mediumIndex)")
        }
        guard condenserNA >= 0, condenserNA <= objectiveNA else {
            throw fail("condenser NA \(condenserNA) must lie in [0, objective NA \(objectiveNA)] (brightfield)")
        }
        guard pixelSize > 0, pixelSize.isFinite else { throw fail("pixel size \(pixelSize) µm must be positive") }
        guard sourcePoints >= 1 else { throw fail("source points \(sourcePoints) must be ≥ 1") }
    }

    /// The image of a thin specimen (`phase` and `absorption` of shape `[Y, X]`) with the focal
    /// plane `defocus` µm beyond it along the light; intensity relative to the illumination.
    public func image(phase: Tensor, absorption: Tensor, defocus: Double) throws -> Tensor {
        guard phase.rank == 2 else {
            throw TensorError.invalidArgument(op: "brightfield", detail: "thin specimen phase \(phase.shape) must be [Y, X]")
        }
        let out = try stack(phase: phase.reshaped([1] + phase.shape), absorption: absorption.reshaped([1] + absorption.shape),
                            sliceSpacing: 1, defocus: defocus)
        return try out.reshaped(phase.shape)
    }

    /// The through-focus stack of a thick specimen: slice `k` of `phase` and `absorption`
    /// (`[Z, Y, X]`, the delay and absorption of a layer `sliceSpacing` µm thick) sits at
    /// `z = k·sliceSpacing`, and plane `k` of the result is focused at `z + defocus`.
    public func stack(phase: Tensor, absorption: Tensor, sliceSpacing: Double, defocus: Double) throws -> Tensor {
        try validate()
        guard phase.rank == 3, phase.shape.allSatisfy({ $0 > 0 }) else {
            throw TensorError.invalidArgument(op: "brightfield", detail: "specimen phase \(phase.shape) must be [Z, Y, X]")
        }
        guard absorption.shape == phase.shape else {
            throw TensorError.shapeMismatch(op: "brightfield", detail: "absorption \(absorption.shape) must match phase \(phase.shape)")
        }
        guard sliceSpacing > 0, sliceSpacing.isFinite, defocus.isFinite else {
            throw TensorError.invalidArgument(op: "brightfield", detail: "slice spacing \(sliceSpacing) must be positive and defocus \(defocus) finite")
        }
        let (nz, ny, nx) = (phase.shape[0], phase.shape[1], phase.shape[2])
        let n = ny * nx
        let plan = try FFT.complexPlan(shape: [ny, nx], threads: 1)

        // The specimen's transmission, slice by slice (interleaved complex).
        let transmission = FFTWBuffer(count: 2 * nz * n)
        phase.withUnsafeBufferPointer { ph in
            absorption.withUnsafeBufferPointer { ab in
                let t = transmission.base
                Threads.parallelFor(nz) { z in
                    for i in (z * n)..<((z + 1) * n) {
                        let m = exp(-ab[i]), p = ph[i]
                        t[2 * i] = m * cos(p); t[2 * i + 1] = m * sin(p)
                    }
                }
            }
        }

        // Source points in a fixed number of groups, each summed in order, then the groups in
        // order: the same result whatever the thread count.
        let sources = sourceTilts()
        let groups = min(sources.count, 4), size = nz * n
        let partial = FFTWBuffer(count: groups * size)
        Threads.parallelFor(groups) { group in
            let sum = partial.base + group * size, one = FFTWBuffer(count: size)
            sum.initialize(repeating: 0, count: size)
            for s in stride(from: group, to: sources.count, by: groups) {
                propagate(tilt: sources[s], transmission: transmission.base, shape: (nz, ny, nx), plan: plan,
                          sliceSpacing: sliceSpacing, defocus: defocus, into: one.base)
                for i in 0..<size { sum[i] += one.base[i] }
            }
        }
        var out = Tensor(shape: phase.shape, repeating: 0)
        let weight = 1 / Float(sources.count)
        out.withUnsafeMutableBufferPointer { o in
            for group in 0..<groups {
                let sum = partial.base + group * size
                for i in 0..<size { o[i] += sum[i] * weight }
            }
        }
        return out
    }

    /// Transverse wave vectors `(fy, fx)` (cycles/µm) of the plane waves filling the condenser
    /// aperture uniformly (a sunflower spiral), or the axial wave alone.
    func sourceTilts() -> [(y: Double, x: Double)] {
        let count = condenserNA == 0 ? 1 : sourcePoints
        let radius = condenserNA / wavelength
        let golden = Double.pi * (3 - 5.0.squareRoot())
        return (0..<count).map { i in
            let r = count == 1 ? 0 : radius * ((Double(i) + 0.5) / Double(count)).squareRoot()
            let a = Double(i) * golden
            return (r * sin(a), r * cos(a))
        }
    }

    /// The intensity stack of one tilted plane wave, written to `out` (`nz·ny·nx` floats).
    ///
    /// In the frame of the tilt the field is `χ` with `ψ = χ·e^{2πi k·x}`: multiplying by the
    /// transmission commutes with the tilt, and propagation becomes the transfer function
    /// evaluated at `f + k` — no periodicity is asked of the tilt.
    private func propagate(tilt: (y: Double, x: Double), transmission: UnsafeMutablePointer<Float>,
                           shape: (z: Int, y: Int, x: Int), plan: ComplexFFTPlan,
                           sliceSpacing: Double, defocus: Double, into out: UnsafeMutablePointer<Float>) {
        let (nz, ny, nx) = shape
        let n = ny * nx
        let k = mediumIndex / wavelength, cutoff = objectiveNA / wavelength
        let axial = (k * k - tilt.y * tilt.y - tilt.x * tilt.x).squareRoot()
        // Per frequency: the one-slice step (with FFTW's 1/n), the step back by one slice, and
        // the pupil-cut field at the last focal plane, built below.
        let step = FFTWBuffer(count: 2 * n), back = FFTWBuffer(count: 2 * n), focus = FFTWBuffer(count: 2 * n)
        let field = FFTWBuffer(count: 2 * n), work = FFTWBuffer(count: 2 * n)
        let inPupil = UnsafeMutablePointer<Bool>.allocate(capacity: n)
        defer { inPupil.deallocate() }
        for iy in 0..<ny {
            let fy = Double(iy < (ny + 1) / 2 ? iy : iy - ny) / (Double(ny) * pixelSize) + tilt.y
            for ix in 0..<nx {
                let fx = Double(ix < (nx + 1) / 2 ? ix : ix - nx) / (Double(nx) * pixelSize) + tilt.x
                let i = iy * nx + ix, g2 = fy * fy + fx * fx
                inPupil[i] = g2 <= cutoff * cutoff
                guard g2 < k * k else {
                    step.base[2 * i] = 0; step.base[2 * i + 1] = 0
                    back.base[2 * i] = 0; back.base[2 * i + 1] = 0
                    continue
                }
                let w = 2 * Double.pi * ((k * k - g2).squareRoot() - axial)
                let a = w * sliceSpacing
                step.base[2 * i] = Float(cos(a) / Double(n)); step.base[2 * i + 1] = Float(sin(a) / Double(n))
                back.base[2 * i] = Float(cos(a)); back.base[2 * i + 1] = Float(-sin(a))
                // Focus of the last plane: from the exit plane (z = last) to z = last + defocus.
                focus.base[2 * i] = Float(cos(w * defocus) / Double(n)); focus.base[2 * i + 1] = Float(sin(w * defocus) / Double(n))
            }
        }

        // Multislice: χ ← t₀; then per slice: propagate one spacing, multiply by tⱼ.
        let f = field.base
        f.update(from: transmission, count: 2 * n)
        for z in 1..<max(1, nz) {
            plan.forward(f)
            Self.multiply(f, by: step.base, count: n)
            plan.inverse(f)
            Self.multiply(f, by: transmission + 2 * z * n, count: n)
        }
        plan.forward(f)
        // Spectrum at the last focal plane, pupil-cut; earlier planes step back one spacing each.
        Self.multiply(f, by: focus.base, count: n)
        for i in 0..<n where !inPupil[i] { f[2 * i] = 0; f[2 * i + 1] = 0 }
        let w = work.base
        for plane in stride(from: nz - 1, through: 0, by: -1) {
            if plane < nz - 1 { Self.multiply(f, by: back.base, count: n) }
            w.update(from: f, count: 2 * n)
            plan.inverse(w)
            let o = out + plane * n
            for i in 0..<n { o[i] = w[2 * i] * w[2 * i] + w[2 * i + 1] * w[2 * i + 1] }
        }
    }

    /// `a[i] *= b[i]` over `count` interleaved complex numbers.
    @inline(__always)
    private static func multiply(_ a: UnsafeMutablePointer<Float>, by b: UnsafePointer<Float>, count: Int) {
        for i in 0..<count {
            let (ar, ai, br, bi) = (a[2 * i], a[2 * i + 1], b[2 * i], b[2 * i + 1])
            a[2 * i] = ar * br - ai * bi
            a[2 * i + 1] = ar * bi + ai * br
        }
    }
}
