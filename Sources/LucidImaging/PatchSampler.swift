import Foundation
import LucidCore

/// A flip/rotation applied to a patch in the YX plane: flip Y, then flip X, then `rotations`
/// quarter turns counter-clockwise (as `numpy.rot90` on the last two axes).
public struct PatchTransform: Equatable, Codable, Sendable {
    public var flipY: Bool
    public var flipX: Bool
    /// Quarter turns, 0...3 (non-zero only for square YX patches).
    public var rotations: Int

    public init(flipY: Bool = false, flipX: Bool = false, rotations: Int = 0) {
        self.flipY = flipY
        self.flipX = flipX
        self.rotations = rotations
    }

    /// The identity.
    public static let identity = PatchTransform()

    /// Source (y, x) in an `h`×`w` patch of the output pixel (y, x).
    @inline(__always) func source(_ y: Int, _ x: Int, _ h: Int, _ w: Int) -> (Int, Int) {
        var (i, j) = (y, x)
        // Undo rot90 k times: out[i][j] = in[j][n−1−i] for a square n×n patch.
        for _ in 0..<rotations { (i, j) = (j, w - 1 - i) }
        if flipX { j = w - 1 - j }
        if flipY { i = h - 1 - i }
        return (i, j)
    }
}

/// Rejects background patches, like CSBDeep's patch filter: a patch is kept when its
/// `statistic` (max or mean over the patch) reaches `threshold` × the image's `percentile`.
public struct BackgroundFilter: Codable, Equatable, Sendable {
    public enum Statistic: String, Codable, Sendable { case max, mean }

    public var threshold: Float
    public var percentile: Double
    public var statistic: Statistic
    /// Which of the aligned images is tested; `nil` tests the last (the target of a pair).
    public var imageIndex: Int?

    public init(threshold: Float = 0.4, percentile: Double = 99.9, statistic: Statistic = .max, imageIndex: Int? = nil) {
        self.threshold = threshold
        self.percentile = percentile
        self.statistic = statistic
        self.imageIndex = imageIndex
    }
}

/// How to hold out validation patches.
public enum ValidationSplit: Equatable, Sendable {
    /// No validation set.
    case none
    /// A random `fraction` of all sampled patches.
    case patches(fraction: Double)
    /// A random `fraction` of the sources (files): their patches never appear in training.
    case files(fraction: Double)
}

/// Patches sampled from a list of sources, stacked for training.
public struct PatchSet: Sendable {
    /// One tensor per aligned image of the sources, each `[N, C, (Z,) Y, X]`.
    public var tensors: [Tensor]
    /// Index of the source each patch came from.
    public var sourceIndices: [Int]
    /// Corner of each patch in its source's spatial axes.
    public var origins: [[Int]]
    /// Flip/rotation applied to each patch.
    public var transforms: [PatchTransform]

    /// Number of patches.
    public var count: Int { sourceIndices.count }
}

/// Draws random patches (2D `[Y, X]` or 3D `[Z, Y, X]`) from sources of aligned images, with an
/// optional background filter and random XY flips / quarter turns, reproducibly from a seed.
///
/// A source is a list of aligned images (e.g. `[noisy, clean]` for CARE, `[noisy]` for N2V) of
/// equal spatial shape; each image is `[spatial…]` or `[C, spatial…]`, with as many spatial axes
/// as `patchShape` (see `Image.patchLayout(spatialRank:)`).
/// ```swift
/// let sampler = try PatchSampler(patchShape: [64, 64], patchesPerImage: 128, filter: BackgroundFilter())
/// var rng = RandomGenerator(seed: 42)
/// let (train, val) = try sampler.sample(sources, split: .patches(fraction: 0.1), rng: &rng)
/// ```
public struct PatchSampler: Sendable {
    public var patchShape: [Int]
    public var patchesPerImage: Int
    public var filter: BackgroundFilter?
    /// Random flips in Y and X, and quarter turns when the Y and X patch sizes match.
    public var augment: Bool
    /// Candidate positions tried per wanted patch before giving up on a source.
    public var attemptsPerPatch: Int

    public init(patchShape: [Int], patchesPerImage: Int, filter: BackgroundFilter? = nil,
                augment: Bool = true, attemptsPerPatch: Int = 20) throws {
        guard patchShape.count == 2 || patchShape.count == 3, patchShape.allSatisfy({ $0 > 0 }) else {
            throw ImagingError.invalidArgument(op: "PatchSampler", detail: "patch shape \(patchShape) must be 2 or 3 positive sizes")
        }
        guard patchesPerImage > 0, attemptsPerPatch > 0 else {
            throw ImagingError.invalidArgument(op: "PatchSampler",
                detail: "patchesPerImage \(patchesPerImage) and attemptsPerPatch \(attemptsPerPatch) must be positive")
        }
        if let f = filter, !(0...100).contains(f.percentile) || !f.threshold.isFinite {
            throw ImagingError.invalidArgument(op: "PatchSampler",
                detail: "background filter percentile \(f.percentile) (0...100), threshold \(f.threshold)")
        }
        self.patchShape = patchShape
        self.patchesPerImage = patchesPerImage
        self.filter = filter
        self.augment = augment
        self.attemptsPerPatch = attemptsPerPatch
    }

    /// One accepted draw.
    private struct Draw {
        var source: Int
        var origin: [Int]
        var transform: PatchTransform
    }

    /// One random crop: its source, corner and XY transform.
    private struct Crop {
        var source: Int
        var origin: [Int]
        var flipY = false, flipX = false, transpose = false
    }

    /// A training batch of `size` random crops of `sources` (aligned `[C, spatial…]` images),
    /// every patch position of the data equally likely, with random flips in Y and X and (for
    /// square patches) transposes when `augment`: one `[size, C, patch…]` tensor per aligned
    /// image. A batch is a pure function of the generator state. With `rows`, all `size` crops
    /// are drawn but only those rows are cut (a data-parallel process's share of the batch).
    public static func uniformBatch(_ sources: [[Tensor]], patchShape: [Int], size: Int, rows: Range<Int>? = nil,
                                    augment: Bool, rng: inout RandomGenerator) -> [Tensor] {
        let d = patchShape.count
        let square = patchShape[d - 1] == patchShape[d - 2]
        // Positions per source, so that every patch position of the data is equally likely.
        let positions = sources.map { s in zip(s[0].shape.dropFirst(), patchShape).reduce(1) { $0 * ($1.0 - $1.1 + 1) } }
        let total = positions.reduce(0, +)
        var crops: [Crop] = []
        for _ in 0..<size {
            var r = rng.int(below: total), source = 0
            while r >= positions[source] { r -= positions[source]; source += 1 }
            let spatial = Array(sources[source][0].shape.dropFirst())
            var crop = Crop(source: source, origin: (0..<d).map { rng.int(below: spatial[$0] - patchShape[$0] + 1) })
            if augment {
                crop.flipY = rng.int(below: 2) == 1
                crop.flipX = rng.int(below: 2) == 1
                crop.transpose = square && rng.int(below: 2) == 1
            }
            crops.append(crop)
        }
        if let rows { crops = Array(crops[rows]) }
        func gather(_ k: Int) -> Tensor {
            let c = sources[0][k].shape[0], size = crops.count
            let out = Tensor(uninitialized: [size, c] + patchShape)
            let ph = patchShape[d - 2], pw = patchShape[d - 1], pz = d == 3 ? patchShape[0] : 1
            let dst = out.storage.base
            Threads.parallelFor(size) { b in
                let crop = crops[b]
                let image = sources[crop.source][k]
                let (H, W) = (image.shape[d - 1], image.shape[d])
                let D = d == 3 ? image.shape[1] : 1
                let z0 = d == 3 ? crop.origin[0] : 0, y0 = crop.origin[d - 2], x0 = crop.origin[d - 1]
                for plane in 0..<(c * pz) {
                    let (ci, z) = (plane / pz, plane % pz)
                    let s = image.storage.base + ((ci * D + z0 + z) * H + y0) * W + x0
                    let o = dst + (b * c * pz + plane) * ph * pw
                    if !crop.flipY && !crop.flipX && !crop.transpose {
                        for y in 0..<ph { (o + y * pw).update(from: s + y * W, count: pw) }
                        continue
                    }
                    for y in 0..<ph {
                        for x in 0..<pw {
                            // Output (y, x) reads crop (sy, sx): optional transpose, then flips.
                            var (sy, sx) = crop.transpose ? (x, y) : (y, x)
                            if crop.flipY { sy = ph - 1 - sy }
                            if crop.flipX { sx = pw - 1 - sx }
                            o[y * pw + x] = s[sy * W + sx]
                        }
                    }
                }
            }
            return out
        }
        return sources[0].indices.map(gather)
    }

    /// Samples `patchesPerImage` patches from every source.
    public func sample(_ sources: [[Tensor]], rng: inout RandomGenerator) throws -> PatchSet {
        let channels = try check(sources)
        let draws = try (0..<sources.count).flatMap { try draw(sources, $0, rng: &rng) }
        return assemble(sources, channels, draws)
    }

    /// Samples patches and splits them into training and validation sets.
    ///
    /// `groups` gives the file each source came from (e.g. the planes of one stack share a
    /// group) so `.files` holds out whole files; by default every source is its own file.
    public func sample(_ sources: [[Tensor]], groups: [Int]? = nil, split: ValidationSplit,
                       rng: inout RandomGenerator) throws -> (training: PatchSet, validation: PatchSet) {
        let channels = try check(sources)
        let groups = groups ?? Array(0..<sources.count)
        guard groups.count == sources.count else {
            throw ImagingError.invalidArgument(op: "PatchSampler", detail: "\(groups.count) groups for \(sources.count) sources")
        }
        switch split {
        case .none:
            let draws = try (0..<sources.count).flatMap { try draw(sources, $0, rng: &rng) }
            return (assemble(sources, channels, draws), assemble(sources, channels, []))
        case let .patches(fraction):
            try checkFraction(fraction)
            var draws = try (0..<sources.count).flatMap { try draw(sources, $0, rng: &rng) }
            draws.shuffle(using: &rng)
            let nVal = PatchSampler.holdOut(fraction, of: draws.count)
            return (assemble(sources, channels, Array(draws[nVal...])), assemble(sources, channels, Array(draws[..<nVal])))
        case let .files(fraction):
            try checkFraction(fraction)
            var files = Array(Set(groups)).sorted()
            guard files.count >= 2 else {
                throw ImagingError.invalidArgument(op: "PatchSampler", detail: "splitting by files needs at least 2 files, got \(files.count)")
            }
            files.shuffle(using: &rng)
            let validation = Set(files.prefix(PatchSampler.holdOut(fraction, of: files.count)))
            var train: [Draw] = [], val: [Draw] = []
            for s in 0..<sources.count {
                let d = try draw(sources, s, rng: &rng)
                if validation.contains(groups[s]) { val += d } else { train += d }
            }
            return (assemble(sources, channels, train), assemble(sources, channels, val))
        }
    }

    private func checkFraction(_ f: Double) throws {
        guard f > 0 && f < 1 else {
            throw ImagingError.invalidArgument(op: "PatchSampler", detail: "validation fraction \(f) must lie in (0, 1)")
        }
    }

    /// Held-out count: the rounded fraction, at least 1 and at most n − 1.
    static func holdOut(_ fraction: Double, of n: Int) -> Int {
        guard n >= 2 else { return 0 }
        return min(n - 1, max(1, Int((fraction * Double(n)).rounded())))
    }

    /// Validates sources; returns the channel count of each aligned image.
    private func check(_ sources: [[Tensor]]) throws -> [Int] {
        guard let first = sources.first, !first.isEmpty else {
            throw ImagingError.invalidArgument(op: "PatchSampler", detail: "no sources (or a source without images)")
        }
        let d = patchShape.count
        var channels: [Int] = []
        for (s, images) in sources.enumerated() {
            guard images.count == first.count else {
                throw ImagingError.invalidArgument(op: "PatchSampler",
                    detail: "source \(s) has \(images.count) aligned images, source 0 has \(first.count)")
            }
            var spatial: [Int]?
            for (k, t) in images.enumerated() {
                guard t.rank == d || t.rank == d + 1 else {
                    throw ImagingError.invalidArgument(op: "PatchSampler",
                        detail: "source \(s) image \(k) of shape \(t.shape) needs rank \(d) or \(d + 1) for patch shape \(patchShape)")
                }
                let sp = Array(t.shape.suffix(d)), c = t.rank == d ? 1 : t.shape[0]
                if let spatial, spatial != sp {
                    throw ImagingError.invalidArgument(op: "PatchSampler",
                        detail: "source \(s) image \(k) spatial shape \(sp) differs from image 0's \(spatial)")
                }
                spatial = sp
                if s == 0 { channels.append(c) } else if channels[k] != c {
                    throw ImagingError.invalidArgument(op: "PatchSampler",
                        detail: "source \(s) image \(k) has \(c) channels, source 0 has \(channels[k])")
                }
                guard zip(sp, patchShape).allSatisfy({ $0 >= $1 }) else {
                    throw ImagingError.invalidArgument(op: "PatchSampler",
                        detail: "patch shape \(patchShape) larger than source \(s) spatial shape \(sp)")
                }
            }
        }
        if let k = filter?.imageIndex, !(0..<first.count).contains(k) {
            throw ImagingError.invalidArgument(op: "PatchSampler",
                detail: "background filter image index \(k) outside 0..<\(first.count)")
        }
        return channels
    }

    /// Random accepted positions (and transforms) for one source.
    private func draw(_ sources: [[Tensor]], _ s: Int, rng: inout RandomGenerator) throws -> [Draw] {
        let images = sources[s]
        let d = patchShape.count
        let spatial = Array(images[0].shape.suffix(d))
        var reference: Float = -.infinity
        var tested: Tensor?
        if let f = filter {
            let t = images[f.imageIndex ?? images.count - 1]
            reference = f.threshold * (try percentiles(t, [f.percentile])[0])
            tested = t
        }
        let square = patchShape[d - 1] == patchShape[d - 2]
        var out: [Draw] = []
        var attempts = 0
        while out.count < patchesPerImage && attempts < patchesPerImage * attemptsPerPatch {
            attempts += 1
            let origin = (0..<d).map { rng.int(below: spatial[$0] - patchShape[$0] + 1) }
            if let f = filter, let t = tested, statistic(t, origin: origin, f.statistic) < reference { continue }
            var tr = PatchTransform.identity
            if augment {
                tr.flipY = rng.int(below: 2) == 1
                tr.flipX = rng.int(below: 2) == 1
                if square { tr.rotations = rng.int(below: 4) }
            }
            out.append(Draw(source: s, origin: origin, transform: tr))
        }
        guard !out.isEmpty else {
            throw ImagingError.invalidArgument(op: "PatchSampler",
                detail: "background filter rejected all \(attempts) candidate patches of source \(s); lower its threshold")
        }
        return out
    }

    /// Max or mean over the patch at `origin` (all channels).
    private func statistic(_ t: Tensor, origin: [Int], _ kind: BackgroundFilter.Statistic) -> Float {
        var best = -Float.infinity
        var sum: Double = 0
        var n = 0
        forEachRow(t, origin: origin) { row, len in
            for i in 0..<len {
                let v = row[i]
                if v.isNaN { continue }
                best = Swift.max(best, v); sum += Double(v); n += 1
            }
        }
        return kind == .max ? best : (n > 0 ? Float(sum / Double(n)) : -.infinity)
    }

    /// Calls `body` with the start of each patch row (X run) of `t`, over channels, Z and Y.
    private func forEachRow(_ t: Tensor, origin: [Int], _ body: (UnsafePointer<Float>, Int) -> Void) {
        let d = patchShape.count
        let spatial = Array(t.shape.suffix(d))
        let c = t.rank == d ? 1 : t.shape[0]
        let (H, W) = (spatial[d - 2], spatial[d - 1])
        let D = d == 3 ? spatial[0] : 1
        let pz = d == 3 ? patchShape[0] : 1, z0 = d == 3 ? origin[0] : 0
        let (py, y0, x0) = (patchShape[d - 2], origin[d - 2], origin[d - 1])
        let base = t.storage.base
        for ci in 0..<c {
            for z in 0..<pz {
                for y in 0..<py {
                    body(base + ((ci * D + z0 + z) * H + y0 + y) * W + x0, patchShape[d - 1])
                }
            }
        }
    }

    /// Copies the draws into `[N, C, patch…]` tensors, one per aligned image.
    private func assemble(_ sources: [[Tensor]], _ channels: [Int], _ draws: [Draw]) -> PatchSet {
        let d = patchShape.count
        let pz = d == 3 ? patchShape[0] : 1
        let (ph, pw) = (patchShape[d - 2], patchShape[d - 1])
        var tensors: [Tensor] = []
        for (k, c) in channels.enumerated() {
            let out = Tensor(uninitialized: [draws.count, c] + patchShape)
            let dst = out.storage.base
            let per = c * pz * ph * pw
            Threads.parallelFor(draws.count) { n in
                let draw = draws[n]
                let t = sources[draw.source][k]
                let spatial = Array(t.shape.suffix(d))
                let (H, W) = (spatial[d - 2], spatial[d - 1])
                let D = d == 3 ? spatial[0] : 1
                let z0 = d == 3 ? draw.origin[0] : 0
                let (y0, x0) = (draw.origin[d - 2], draw.origin[d - 1])
                let src = t.storage.base
                let o = dst + n * per
                let tr = draw.transform
                for ci in 0..<c {
                    for z in 0..<pz {
                        let plane = src + (ci * D + z0 + z) * H * W
                        let outPlane = o + (ci * pz + z) * ph * pw
                        if tr == .identity {
                            for y in 0..<ph { (outPlane + y * pw).update(from: plane + (y0 + y) * W + x0, count: pw) }
                        } else {
                            // Each output row is a straight line through the source region.
                            for y in 0..<ph {
                                let (ay, ax) = tr.source(y, 0, ph, pw)
                                let start = (y0 + ay) * W + x0 + ax
                                var step = 0
                                if pw > 1 {
                                    let (by, bx) = tr.source(y, 1, ph, pw)
                                    step = (by - ay) * W + (bx - ax)
                                }
                                let row = outPlane + y * pw
                                for x in 0..<pw { row[x] = plane[start + x * step] }
                            }
                        }
                    }
                }
            }
            tensors.append(out)
        }
        return PatchSet(tensors: tensors, sourceIndices: draws.map(\.source),
                        origins: draws.map(\.origin), transforms: draws.map(\.transform))
    }
}

extension Image {
    /// The image as sampler inputs of `[C, spatial…]` (C = 1 without a channel axis).
    ///
    /// For `spatialRank` 2, every (T, Z) plane becomes its own `[C, Y, X]` tensor; for 3 the
    /// image needs a Z axis and every time point becomes its own `[C, Z, Y, X]` tensor.
    public func patchLayout(spatialRank: Int) throws -> [Tensor] {
        try validate()
        guard spatialRank == 2 || spatialRank == 3 else {
            throw ImagingError.invalidArgument(op: "Image.patchLayout", detail: "spatial rank \(spatialRank) must be 2 or 3")
        }
        if spatialRank == 3 && axisIndex("Z") == nil {
            throw ImagingError.invalidAxes(axes: axes, reason: "3D patches need a Z axis")
        }
        let (T, C, Z, H, W) = (size("T"), size("C"), size("Z"), size("Y"), size("X"))
        // Reorder to [T, C, Z, Y, X] (the order Lucid reads; written images may differ).
        let order: [Character] = ["T", "C", "Z"]
        let present = axes.dropLast(2)
        let strides = Tensor.strides(of: Array(data.shape.dropLast(2)))
        func stride(_ a: Character) -> Int { present.firstIndex(of: a).map { strides[present.distance(from: present.startIndex, to: $0)] } ?? 0 }
        let (st, sc, sz) = (stride(order[0]), stride(order[1]), stride(order[2]))
        let plane = H * W
        let groups = spatialRank == 2 ? T * Z : T
        let planesPerGroup = spatialRank == 2 ? C : C * Z
        var out: [Tensor] = []
        for g in 0..<groups {
            let t = spatialRank == 2 ? g / Z : g
            let shape = spatialRank == 2 ? [C, H, W] : [C, Z, H, W]
            let tensor = Tensor(uninitialized: shape)
            for p in 0..<planesPerGroup {
                let c = spatialRank == 2 ? p : p / Z
                let z = spatialRank == 2 ? g % Z : p % Z
                let src = data.storage.base + (t * st + c * sc + z * sz) * plane
                (tensor.storage.base + p * plane).update(from: src, count: plane)
            }
            out.append(tensor)
        }
        return out
    }
}
