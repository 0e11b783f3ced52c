import Foundation
import LucidCore

/// Down-sampling factors of the simulated acquisition.
public struct Downsample: Codable, Equatable, Sendable {
    /// Keep every `z`-th plane (a coarser axial step).
    public var z: Int
    /// Average `xy`×`xy` pixel blocks (camera binning).
    public var xy: Int

    public init(z: Int = 1, xy: Int = 1) { self.z = z; self.xy = xy }

    enum CodingKeys: String, CodingKey { case z, xy }

    /// Decodes `{z: 4, xy: 2}` or a single integer, which is the `z` factor.
    public init(from decoder: Decoder) throws {
        if let single = try? decoder.singleValueContainer().decode(Int.self) {
            self.init(z: single)
            return
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(z: try c.decodeIfPresent(Int.self, forKey: .z) ?? 1, xy: try c.decodeIfPresent(Int.self, forKey: .xy) ?? 1)
    }
}

/// How a clean image is degraded into a simulated acquisition, decodable from a recipe
/// (`simulate: {psf: {model: born-wolf, na: 1.2, wavelength: 0.52}, photons: 20, read_noise: 2}`).
public struct SimulationConfig: Codable, Equatable, Sendable {
    /// PSF to blur with (nil: no blur, or the PSF handed to the simulator).
    public var psf: PSFConfig?
    /// Expected photo-electrons at the brightest pixel of the blurred image.
    public var photons: Double
    /// Gaussian read noise (electrons rms).
    public var readNoise: Double
    /// Camera gain (ADU per electron).
    public var gain: Double
    /// Camera offset (ADU).
    public var offset: Double
    /// Down-sampling after the blur (nil: none).
    public var downsample: Downsample?
    /// Quantize to unsigned integers of this many bits (nil: keep floats).
    public var bits: Int?
    /// Edge handling of the blur.
    public var boundary: Boundary

    enum CodingKeys: String, CodingKey {
        case psf, photons, readNoise = "read_noise", gain, offset, downsample, bits, boundary
    }

    public init(psf: PSFConfig? = nil, photons: Double, readNoise: Double = 0, gain: Double = 1, offset: Double = 0,
                downsample: Downsample? = nil, bits: Int? = 16, boundary: Boundary = .reflect) {
        self.psf = psf; self.photons = photons; self.readNoise = readNoise; self.gain = gain; self.offset = offset
        self.downsample = downsample; self.bits = bits; self.boundary = boundary
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(psf: try c.decodeIfPresent(PSFConfig.self, forKey: .psf),
                  photons: try c.decode(Double.self, forKey: .photons),
                  readNoise: try c.decodeIfPresent(Double.self, forKey: .readNoise) ?? 0,
                  gain: try c.decodeIfPresent(Double.self, forKey: .gain) ?? 1,
                  offset: try c.decodeIfPresent(Double.self, forKey: .offset) ?? 0,
                  downsample: try c.decodeIfPresent(Downsample.self, forKey: .downsample),
                  bits: c.contains(.bits) ? try c.decodeIfPresent(Int.self, forKey: .bits) : 16,
                  boundary: try c.decodeIfPresent(Boundary.self, forKey: .boundary) ?? .reflect)
    }

    /// Refuses impossible settings with a message naming the parameter.
    public func validate() throws {
        func fail(_ d: String) -> TensorError { .invalidArgument(op: "simulate", detail: d) }
        guard photons > 0, photons.isFinite else { throw fail("photons \(photons) must be positive") }
        guard readNoise >= 0, readNoise.isFinite else { throw fail("read_noise \(readNoise) must be ≥ 0") }
        guard gain > 0, gain.isFinite else { throw fail("gain \(gain) must be positive") }
        guard offset.isFinite else { throw fail("offset \(offset) must be finite") }
        if let d = downsample { guard d.z >= 1, d.xy >= 1 else { throw fail("downsample z \(d.z), xy \(d.xy) must be ≥ 1") } }
        if let b = bits { guard (1...32).contains(b) else { throw fail("bits \(b) must be in 1...32") } }
    }
}

/// Turns clean images into simulated acquisitions: blur with a PSF → down-sampling → Poisson
/// noise at a photon budget → Gaussian read noise → gain and offset → quantization.
///
/// The ADU value of a pixel with expected `λ` electrons has mean `gain·λ + offset` and variance
/// `gain²·(λ + read_noise²)`, i.e. `var = gain·(mean − offset) + gain²·read_noise²`.
public struct DegradationSimulator: Sendable {
    /// The settings.
    public let config: SimulationConfig
    /// The PSF used for blurring (nil: none).
    public let psf: Tensor?

    /// Prepares a simulator; `psf` overrides `config.psf`, which is otherwise computed once here.
    public init(config: SimulationConfig, psf: Tensor? = nil) throws {
        try config.validate()
        self.config = config
        self.psf = try psf ?? config.psf?.generate()
    }

    /// The simulated acquisition of `clean` (2-D `[y, x]` or 3-D `[z, y, x]`).
    public func degrade(_ clean: Tensor, rng: inout RandomGenerator) throws -> Tensor {
        guard clean.rank == 2 || clean.rank == 3 else {
            throw TensorError.invalidArgument(op: "simulate", detail: "image shape \(clean.shape) must be 2-D or 3-D")
        }
        var x = clean
        if let psf {
            guard psf.rank == clean.rank else {
                throw TensorError.shapeMismatch(op: "simulate", detail: "PSF \(psf.shape) and image \(clean.shape) must have the same rank")
            }
            x = try fftConvolve(clean, psf, boundary: config.boundary)
        }
        if let d = config.downsample { x = try Self.downsample(x, d) }
        let peak = x.withUnsafeBufferPointer { $0.max() ?? 0 }
        guard peak > 0 else {
            throw TensorError.invalidArgument(op: "simulate", detail: "image of shape \(clean.shape) has no positive value to scale to \(config.photons) photons")
        }
        let scale = Float(config.photons) / peak
        let (gain, offset, read) = (Float(config.gain), Float(config.offset), Float(config.readNoise))
        let top = config.bits.map { Float((1 << UInt64($0)) - 1) }
        let seed = rng.next()
        let block = 1 << 15, n = x.count
        x.withUnsafeMutableBufferPointer { p in
            let base = p.baseAddress!
            Threads.parallelFor((n + block - 1) / block) { b in
                var local = RandomGenerator(seed: seed &+ UInt64(b) &* 0x9E37_79B9_7F4A_7C15)
                for i in (b * block)..<min(n, (b + 1) * block) {
                    let lambda = Double(max(base[i], 0) * scale)
                    var e = Float(Self.poisson(lambda, &local))
                    if read > 0 { e += read * local.normal() }
                    var adu = gain * e + offset
                    if let top { adu = min(max(adu.rounded(), 0), top) }
                    base[i] = adu
                }
            }
        }
        return x
    }

    /// A CARE training pair: the simulated acquisition and the clean image.
    public func pair(_ clean: Tensor, rng: inout RandomGenerator) throws -> (input: Tensor, target: Tensor) {
        (try degrade(clean, rng: &rng), clean)
    }

    /// Keeps every `z`-th plane (3-D) and averages `xy`×`xy` blocks (dropping partial blocks).
    static func downsample(_ x: Tensor, _ d: Downsample) throws -> Tensor {
        let s = FFTGrid.promote(x.shape)
        let fz = x.rank == 3 ? d.z : 1
        let oz = (s[0] + fz - 1) / fz, oy = s[1] / d.xy, ox = s[2] / d.xy
        guard oy > 0, ox > 0 else {
            throw TensorError.invalidArgument(op: "simulate", detail: "downsample xy \(d.xy) is larger than image \(x.shape)")
        }
        var out = Tensor(uninitialized: Array([oz, oy, ox].suffix(x.rank)))
        let inv = 1 / Float(d.xy * d.xy)
        x.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBufferPointer { o in
                for z in 0..<oz { for y in 0..<oy { for xx in 0..<ox {
                    var acc: Float = 0
                    for a in 0..<d.xy { for b in 0..<d.xy { acc += v[(z * fz * s[1] + y * d.xy + a) * s[2] + xx * d.xy + b] } }
                    o[(z * oy + y) * ox + xx] = acc * inv
                }}}
            }
        }
        return out
    }

    /// A Poisson sample: inversion by multiplication for small means, Hörmann's transformed
    /// rejection (PTRS) above.
    static func poisson(_ lambda: Double, _ rng: inout RandomGenerator) -> Int {
        if lambda <= 0 { return 0 }
        if lambda < 10 {
            let limit = exp(-lambda)
            var product = 1.0, k = -1
            repeat { product *= Double(rng.uniform()) + 0x1p-25; k += 1 } while product > limit
            return k
        }
        let slam = lambda.squareRoot(), loglam = log(lambda)
        let b = 0.931 + 2.53 * slam, a = -0.059 + 0.02483 * b
        let invAlpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2)
        while true {
            let u = Double(rng.next() >> 11) * 0x1p-53 - 0.5
            let v = Double(rng.next() >> 11) * 0x1p-53
            let us = 0.5 - abs(u)
            let k = floor((2 * a / us + b) * u + lambda + 0.43)
            if us >= 0.07 && v <= vr { return Int(k) }
            if k < 0 || (us < 0.013 && v > us) { continue }
            if log(v) + log(invAlpha) - log(a / (us * us) + b) <= -lambda + k * loglam - lgamma(k + 1) { return Int(k) }
        }
    }
}
