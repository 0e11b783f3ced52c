import Foundation
import LucidCore

/// The input a self-supervised method feeds the network, and where its loss is taken.
public struct MaskedBatch {
    /// The batch with masked pixels replaced, `[B, C, spatial…]`.
    public var input: Tensor
    /// 1 where a pixel was masked (the loss is taken there only), 0 elsewhere; same shape.
    public var mask: Tensor
}

/// Spatial geometry of a `[B, C, spatial…]` batch.
struct BatchGeometry {
    let batch: Int, channels: Int
    let spatial: [Int]
    let strides: [Int]
    var pixels: Int { spatial.reduce(1, *) }

    init(_ shape: [Int], op: String) throws {
        guard shape.count == 4 || shape.count == 5 else {
            throw TensorError.invalidArgument(op: op, detail: "expected a [B, C, Y, X] or [B, C, Z, Y, X] batch, got \(shape)")
        }
        batch = shape[0]; channels = shape[1]
        spatial = Array(shape[2...])
        strides = Tensor.strides(of: spatial)
    }

    /// Index of `coordinate` reflected into the image (PyTorch 'reflect': the edge is not repeated).
    @inline(__always) func reflect(_ c: Int, _ n: Int) -> Int {
        if n == 1 { return 0 }
        let period = 2 * (n - 1)
        var m = c % period
        if m < 0 { m += period }
        return m < n ? m : period - m
    }

    func coordinates(of flat: Int) -> [Int] {
        var rest = flat
        return strides.map { s in defer { rest %= s }; return rest / s }
    }
}

/// Noise2Self's J-invariant grid masking (Batson & Royer 2019).
///
/// The pixels whose coordinates are all ≡ `phase` (mod `grid`) along each spatial axis are
/// masked; cycling the phase over `grid^d` steps visits every pixel. A masked pixel is replaced by
/// the mean of its face neighbours (`interpolate`, reflect at the border) or by zero, so the
/// network's output there never depends on the pixel's own value.
public struct GridMasker: Equatable, Sendable {
    /// How a masked pixel's value is replaced.
    public enum Replacement: String, CaseIterable, Sendable, Codable { case interpolate, zero }

    public var grid: Int
    public var replacement: Replacement

    public init(grid: Int = 4, replacement: Replacement = .interpolate) {
        self.grid = grid
        self.replacement = replacement
    }

    /// Number of distinct phases for `spatialRank` axes.
    public func phaseCount(spatialRank: Int) -> Int { Int(pow(Double(grid), Double(spatialRank))) }

    /// Masks `batch` (`[B, C, spatial…]`) at `phase` (taken modulo the phase count).
    public func apply(_ batch: Tensor, phase: Int) throws -> MaskedBatch {
        let g = try BatchGeometry(batch.shape, op: "GridMasker")
        guard grid >= 2 else {
            throw TensorError.invalidArgument(op: "GridMasker", detail: "grid \(grid) must be at least 2 (a masked pixel needs unmasked neighbours)")
        }
        let rank = g.spatial.count
        var p = phase % phaseCount(spatialRank: rank)
        var offset = [Int](repeating: 0, count: rank)
        for a in stride(from: rank - 1, through: 0, by: -1) { offset[a] = p % grid; p /= grid }

        var input = batch.copy()
        var mask = Tensor(zeros: batch.shape)
        let src = batch.storage.base, dst = input.storage.base, m = mask.storage.base
        let pixels = g.pixels
        for flat in 0..<pixels {
            let c = g.coordinates(of: flat)
            guard zip(c, offset).allSatisfy({ ($0.0 - $0.1) % grid == 0 }) else { continue }
            for plane in 0..<(g.batch * g.channels) {
                let base = plane * pixels
                m[base + flat] = 1
                switch replacement {
                case .zero:
                    dst[base + flat] = 0
                case .interpolate:
                    var sum: Float = 0
                    for a in 0..<rank {
                        for d in [-1, 1] {
                            let n = g.reflect(c[a] + d, g.spatial[a])
                            sum += src[base + flat + (n - c[a]) * g.strides[a]]
                        }
                    }
                    dst[base + flat] = sum / Float(2 * rank)
                }
            }
        }
        return MaskedBatch(input: input, mask: mask)
    }
}

/// Noise2Void's blind-spot masking (Krull et al. 2019) and its N2V2 variant.
///
/// A patch is split into boxes of about `1/pixelFraction` pixels; one random pixel per box is
/// masked (stratified sampling) and replaced by a uniformly drawn pixel of its
/// `neighborhood`-wide window that is never the pixel itself (`uniform`), or by the median of that
/// window without its centre (`median`, N2V2).
public struct BlindSpotMasker: Equatable, Sendable {
    /// How a masked pixel's value is replaced.
    public enum Replacement: String, CaseIterable, Sendable, Codable { case uniform, median }

    public var pixelFraction: Double
    public var neighborhood: Int
    public var replacement: Replacement
    /// structN2V: the pixels around each blind spot that are hidden too (nil: the blind spot alone).
    public var structMask: StructMask?

    public init(pixelFraction: Double = 0.002, neighborhood: Int = 5, replacement: Replacement = .uniform,
                structMask: StructMask? = nil) {
        self.pixelFraction = pixelFraction
        self.neighborhood = neighborhood
        self.replacement = replacement
        self.structMask = structMask
    }

    /// Masks every patch of `batch` (`[B, C, spatial…]`) independently. Patch `b` is patch
    /// `firstSample + b` of a larger batch split over processes: its blind spots come from a
    /// stream of its own (one draw of `rng` and that index), the same however the batch is split.
    public func apply(_ batch: Tensor, firstSample: Int = 0, rng: inout RandomGenerator) throws -> MaskedBatch {
        let g = try BatchGeometry(batch.shape, op: "BlindSpotMasker")
        guard pixelFraction > 0, pixelFraction < 1 else {
            throw TensorError.invalidArgument(op: "BlindSpotMasker", detail: "pixel fraction \(pixelFraction) must be in (0, 1)")
        }
        guard neighborhood >= 3, neighborhood % 2 == 1 else {
            throw TensorError.invalidArgument(op: "BlindSpotMasker", detail: "neighborhood \(neighborhood) must be odd and at least 3")
        }
        let rank = g.spatial.count
        let radius = neighborhood / 2
        // Box side so that one pixel per box masks about `pixelFraction` of the patch.
        let side = max(1.0, pow(1.0 / pixelFraction, 1.0 / Double(rank)))
        let boxes = g.spatial.map { max(1, Int((Double($0) / side).rounded())) }
        let boxCount = boxes.reduce(1, *)
        let boxStrides = Tensor.strides(of: boxes)

        var input = batch.copy()
        var mask = Tensor(zeros: batch.shape)
        let src = batch.storage.base, dst = input.storage.base, m = mask.storage.base
        let pixels = g.pixels
        var window: [Float] = []
        let hidden = try structMask?.offsets(spatialRank: rank) ?? []
        if !hidden.isEmpty {
            let h = Set(hidden)
            let free = Int(pow(Double(neighborhood), Double(rank))) - 1
                - h.filter { $0.allSatisfy { abs($0) <= radius } }.count
            guard free > 0 else {
                throw TensorError.invalidArgument(op: "BlindSpotMasker", detail: "the struct mask hides the whole \(neighborhood)-wide neighbourhood: no pixel is left to replace the blind spot with")
            }
        }
        let streams = rng.next()
        for b in 0..<g.batch {
            var rng = RandomGenerator(seed: streams ^ (UInt64(firstSample + b) &* 0xD1B5_4A32_D192_ED03))
            // structN2V hides with values drawn uniformly in each patch's range, so nothing of the
            // hidden pixels' own values reaches the network.
            var ranges: [(Float, Float)] = []
            if !hidden.isEmpty {
                ranges = (0..<g.channels).map { ch in
                    let plane = UnsafeBufferPointer(start: src + (b * g.channels + ch) * pixels, count: pixels)
                    return (plane.min() ?? 0, plane.max() ?? 0)
                }
            }
            // One random pixel inside every box.
            var spots: [(c: [Int], flat: Int)] = []
            for box in 0..<boxCount {
                var c = [Int](repeating: 0, count: rank)
                var flat = 0
                for a in 0..<rank {
                    let k = (box / boxStrides[a]) % boxes[a]
                    let lo = g.spatial[a] * k / boxes[a], hi = g.spatial[a] * (k + 1) / boxes[a]
                    c[a] = lo + rng.int(below: max(1, hi - lo))
                    flat += c[a] * g.strides[a]
                }
                spots.append((c, flat))
            }
            // structN2V: every pixel hidden around any blind spot of the patch, never a replacement's source.
            var hiddenFlats = Set<Int>()
            for (c, _) in spots {
                for offset in hidden {
                    var at = 0, inside = true
                    for a in 0..<rank {
                        let q = c[a] + offset[a]
                        if q < 0 || q >= g.spatial[a] { inside = false; break }
                        at += q * g.strides[a]
                    }
                    if inside { hiddenFlats.insert(at) }
                }
            }
            for ch in 0..<g.channels {
                let base = (b * g.channels + ch) * pixels
                for (c, flat) in spots {
                    m[base + flat] = 1
                    switch replacement {
                    case .uniform:
                        dst[base + flat] = src[base + neighbour(of: c, g: g, radius: radius, avoiding: hiddenFlats, rng: &rng)]
                    case .median:
                        window.removeAll(keepingCapacity: true)
                        forEachNeighbour(of: c, g: g, radius: radius) { if !hiddenFlats.contains($0) { window.append(src[base + $0]) } }
                        window.sort()
                        let n = window.count
                        if n == 0 { dst[base + flat] = 0.5 * (ranges[ch].0 + ranges[ch].1); continue }
                        dst[base + flat] = n % 2 == 1 ? window[n / 2] : 0.5 * (window[n / 2 - 1] + window[n / 2])
                    }
                }
                let (lo, hi) = ranges.isEmpty ? (0, 0) : ranges[ch]
                for at in hiddenFlats.sorted() where m[base + at] == 0 { dst[base + at] = lo + (hi - lo) * rng.uniform() }
            }
        }
        return MaskedBatch(input: input, mask: mask)
    }

    /// Flat index of a random pixel of the window around `c` that is neither `c` nor (for the
    /// first 256 draws, in case other blind spots hide the whole window) in `avoiding`.
    private func neighbour(of c: [Int], g: BatchGeometry, radius: Int, avoiding: Set<Int>, rng: inout RandomGenerator) -> Int {
        var tries = 0
        while true {
            tries += 1
            var flat = 0
            var isCentre = true
            for a in 0..<c.count {
                let n = g.reflect(c[a] + rng.int(below: 2 * radius + 1) - radius, g.spatial[a])
                if n != c[a] { isCentre = false }
                flat += n * g.strides[a]
            }
            if !isCentre && (tries > 256 || !avoiding.contains(flat)) { return flat }
        }
    }

    /// Calls `body` with the flat index of every window pixel around `c` except `c` itself.
    private func forEachNeighbour(of c: [Int], g: BatchGeometry, radius: Int, _ body: (Int) -> Void) {
        let rank = c.count
        let width = 2 * radius + 1
        let total = Int(pow(Double(width), Double(rank)))
        for w in 0..<total {
            var rest = w, flat = 0, isCentre = true
            for a in stride(from: rank - 1, through: 0, by: -1) {
                let n = g.reflect(c[a] + rest % width - radius, g.spatial[a])
                rest /= width
                if n != c[a] { isCentre = false }
                flat += n * g.strides[a]
            }
            if !isCentre { body(flat) }
        }
    }
}

/// structN2V's mask (Broaddus et al. 2020): the pixels hidden around every blind spot, so that
/// noise correlated along rows or columns (sCMOS read-out, scanning) cannot be read from its
/// neighbours. A line of `length` pixels centred on the blind spot along X (`horizontal`), Y
/// (`vertical`) or Z (`depth`, 3-D only), or an explicit mask of 0/1 with odd extents whose
/// centre is the blind spot (2-D masks apply in the blind spot's YX plane of 3-D data).
public enum StructMask: Equatable, Sendable {
    public enum Axis: String, CaseIterable, Sendable { case horizontal, vertical, depth }
    case line(Axis, length: Int)
    /// Rows of a 2-D mask (`[Y][X]`) or planes of a 3-D one (`[Z][Y][X]`), flattened with its shape.
    case explicit(shape: [Int], values: [Bool])

    /// The default line length.
    public static let defaultLength = 5

    /// The hidden offsets (every spatial axis, the blind spot itself excluded) for data of
    /// `spatialRank` axes.
    public func offsets(spatialRank: Int) throws -> [[Int]] {
        switch self {
        case let .line(axis, length):
            guard length >= 3, length % 2 == 1 else {
                throw TensorError.invalidArgument(op: "structN2V", detail: "line length \(length) must be odd and at least 3")
            }
            let a: Int
            switch axis {
            case .horizontal: a = spatialRank - 1
            case .vertical: a = spatialRank - 2
            case .depth:
                guard spatialRank == 3 else {
                    throw TensorError.invalidArgument(op: "structN2V", detail: "a depth mask needs 3-D data (axes ZYX)")
                }
                a = 0
            }
            return (-(length / 2)...(length / 2)).filter { $0 != 0 }.map { d in
                var o = [Int](repeating: 0, count: spatialRank)
                o[a] = d
                return o
            }
        case let .explicit(shape, values):
            guard shape.count == 2 || shape.count == 3, shape.count <= spatialRank, shape.allSatisfy({ $0 % 2 == 1 }),
                  values.count == shape.reduce(1, *) else {
                throw TensorError.invalidArgument(op: "structN2V", detail: "a mask \(shape) must be 2-D (or 3-D for 3-D data) with odd extents")
            }
            let strides = Tensor.strides(of: shape)
            var out: [[Int]] = []
            for (flat, on) in values.enumerated() where on {
                var o = shape.indices.map { (flat / strides[$0]) % shape[$0] - shape[$0] / 2 }
                if o.allSatisfy({ $0 == 0 }) { continue }
                o = [Int](repeating: 0, count: spatialRank - o.count) + o
                out.append(o)
            }
            return out
        }
    }
}
