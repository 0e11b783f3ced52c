import Foundation
import LucidCore

/// An OME-Zarr image (OME-NGFF 0.4): a zarr v2 group whose `.zattrs` hold `multiscales`, the
/// axes (`t`, `c`, `z`, `y`, `x` with their types and units) and, per resolution level, an
/// array path and its `coordinateTransformations` (scale, optional translation).
///
/// Level 0 is the full-resolution image; pixel sizes come from its scale (converted to µm).
/// ```swift
/// let stack = try OMEZarr.open("cells.ome.zarr")
/// let image = try stack.read()                       // level 0 as an Image, axes e.g. "ZYX"
/// try OMEZarr.write(image, to: "copy.ome.zarr", as: .uint16, levels: 3)
/// ```
public struct OMEZarr: Sendable {
    /// One axis of the multiscale image.
    public struct Axis: Equatable, Sendable {
        /// `t`, `c`, `z`, `y` or `x`.
        public var name: String
        /// `time`, `channel` or `space` (nil when the file gives none).
        public var type: String?
        /// A UDUNITS-2 unit name such as `micrometer` (nil when the file gives none).
        public var unit: String?
    }

    /// One resolution level: its array's path inside the group and its scale per axis.
    public struct Level: Equatable, Sendable {
        public var path: String
        public var scale: [Double]
        public var translation: [Double]?
    }

    /// The group's folder.
    public let path: String
    public let axes: [Axis]
    /// Levels from full resolution down.
    public let levels: [Level]
    /// The multiscale's `name`, if any.
    public let name: String?

    /// Lucid's axes letters (`ZYX`, `CZYX`, `TCZYX`, …) for the NGFF axes.
    public var lucidAxes: String { axes.map { $0.name.uppercased() }.joined() }

    /// Lateral pixel size in µm at level 0 (nil unless X has a length unit).
    public var pixelSize: Double? { micrometers(of: "x") }
    /// Z step in µm at level 0 (nil without Z or a length unit).
    public var zSpacing: Double? { micrometers(of: "z") }

    private func micrometers(of axis: String) -> Double? {
        guard let i = axes.firstIndex(where: { $0.name == axis }), let unit = axes[i].unit,
              let factor = OMEZarr.micrometersPerUnit[unit], let level = levels.first else { return nil }
        return level.scale[i] * factor
    }

    /// Length units NGFF allows that Lucid converts, in µm.
    static let micrometersPerUnit: [String: Double] = [
        "angstrom": 1e-4, "nanometer": 1e-3, "micrometer": 1, "micron": 1, "millimeter": 1e3,
        "centimeter": 1e4, "meter": 1e6,
    ]

    /// True when `path` is a folder whose `.zattrs` hold `multiscales`.
    public static func isGroup(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue,
              let attrs = try? ZarrArray.readJSON(ZarrArray.join(path, ".zattrs")) else { return false }
        return attrs["multiscales"] != nil
    }

    /// True for a path Lucid writes as OME-Zarr (ending in `.zarr`, optionally with a trailing `/`).
    public static func isZarrPath(_ path: String) -> Bool {
        var p = path
        while p.hasSuffix("/") && p.count > 1 { p.removeLast() }
        return p.lowercased().hasSuffix(".zarr")
    }

    /// Reads the group's metadata; throws naming `.zattrs` and the key for anything malformed
    /// or outside what Lucid reads (axes other than t, c, z, y, x; other versions than 0.4 or
    /// earlier layouts with the same keys).
    public static func open(_ path: String) throws -> OMEZarr {
        let file = ZarrArray.join(path, ".zattrs")
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw ImagingError.unreadable(path: path, reason: "no such OME-Zarr folder")
        }
        let attrs = try ZarrArray.readJSON(file)
        guard let list = attrs["multiscales"] as? [[String: Any]], let m = list.first else {
            throw ImagingError.unreadable(path: file, reason: "no 'multiscales' list (not an OME-Zarr image)")
        }
        if let version = m["version"] as? String, !["0.4", "0.3", "0.2", "0.1"].contains(version) {
            throw ImagingError.unsupported(path: file, reason: "multiscales version \(version) (Lucid reads NGFF 0.4, zarr v2)")
        }
        guard let axesJSON = m["axes"] as? [Any] else {
            throw ImagingError.unreadable(path: file, reason: "multiscales[0].axes is missing")
        }
        let axes: [Axis] = try axesJSON.map { a in
            if let name = a as? String { return Axis(name: name, type: nil, unit: nil) }
            guard let d = a as? [String: Any], let name = d["name"] as? String else {
                throw ImagingError.unreadable(path: file, reason: "multiscales[0].axes entries need a 'name'")
            }
            return Axis(name: name, type: d["type"] as? String, unit: d["unit"] as? String)
        }
        let letters = axes.map { $0.name.uppercased() }.joined()
        do { try Image.validate(axes: letters, rank: axes.count) } catch {
            throw ImagingError.unsupported(path: file, reason: "axes \(axes.map(\.name)) (Lucid reads t, c, z, y, x in that order, ending in y, x)")
        }
        guard letters == Image.canonicalAxes(letters) else {
            throw ImagingError.unsupported(path: file, reason: "axes \(axes.map(\.name)) are not in NGFF order t, c, z, y, x")
        }
        guard let datasets = m["datasets"] as? [[String: Any]], !datasets.isEmpty else {
            throw ImagingError.unreadable(path: file, reason: "multiscales[0].datasets is missing or empty")
        }
        let levels: [Level] = try datasets.enumerated().map { k, d in
            guard let p = d["path"] as? String else {
                throw ImagingError.unreadable(path: file, reason: "multiscales[0].datasets[\(k)].path is missing")
            }
            var scale = [Double](repeating: 1, count: axes.count)
            var translation: [Double]?
            for t in d["coordinateTransformations"] as? [[String: Any]] ?? [] {
                let values = (t["scale"] ?? t["translation"]) as? [NSNumber]
                guard let values, values.count == axes.count else { continue }
                if t["type"] as? String == "scale" { scale = values.map(\.doubleValue) }
                if t["type"] as? String == "translation" { translation = values.map(\.doubleValue) }
            }
            return Level(path: p, scale: scale, translation: translation)
        }
        return OMEZarr(path: path, axes: axes, levels: levels, name: m["name"] as? String)
    }

    /// The zarr array of resolution `level` (checked against the axes).
    public func array(level: Int = 0) throws -> ZarrArray {
        guard levels.indices.contains(level) else {
            throw ImagingError.invalidArgument(op: "OMEZarr.array", detail: "level \(level) of '\(path)' (it has \(levels.count))")
        }
        let array = try ZarrArray.open(ZarrArray.join(path, levels[level].path))
        guard array.shape.count == axes.count else {
            throw ImagingError.unreadable(path: array.path, reason: "array of rank \(array.shape.count) for \(axes.count) axes \(lucidAxes)")
        }
        return array
    }

    /// Resolution `level` as an image (whole, in memory): axes, pixel size and Z step of that level.
    public func read(level: Int = 0) throws -> Image {
        let a = try array(level: level)
        let data = try a.read(origin: [Int](repeating: 0, count: a.shape.count), size: a.shape)
        let ratio = levels[level].scale.enumerated().map { i, s in levels[0].scale[i] == 0 ? 1 : s / levels[0].scale[i] }
        let xi = axes.count - 1, zi = axes.firstIndex { $0.name == "z" }
        return Image(data: data, axes: lucidAxes, pixelSize: pixelSize.map { $0 * ratio[xi] },
                     zSpacing: zi.flatMap { i in zSpacing.map { $0 * ratio[i] } }, sourceType: a.dataType.pixelType)
    }

    /// Default chunks: one plane of T and C, up to 16 planes of Z, up to 512×512 in YX.
    public static func defaultChunks(axes: String, shape: [Int]) -> [Int] {
        zip(axes, shape).map { letter, n in
            switch letter {
            case "Y", "X": return max(1, min(n, 512))
            case "Z": return max(1, min(n, 16))
            default: return 1
            }
        }
    }

    /// Writes `image` as an OME-Zarr group at `path` with `levels` resolutions (each halving Y and
    /// X by 2×2 means), replacing an OME-Zarr already there; the group appears whole or not at all.
    public static func write(_ image: Image, to path: String, as type: PixelType = .float32, chunks: [Int]? = nil,
                             compressor: ZarrCompressor = .defaultBlosc, levels: Int = 1) throws {
        try image.validate()
        let image = try image.transposed(to: Image.canonicalAxes(image.axes))
        guard levels >= 1 else { throw ImagingError.invalidArgument(op: "OMEZarr.write", detail: "levels \(levels) must be at least 1") }
        let writer = try OMEZarrWriter(path: path, axes: image.axes, shape: image.data.shape, pixelSize: image.pixelSize,
                                       zSpacing: image.zSpacing, type: type, chunks: chunks, compressor: compressor,
                                       levels: levels)
        do {
            var level = image.data
            for k in 0..<levels {
                if k > 0 { level = try OMEZarr.halveYX(level) }
                try writer.arrays[k].write(origin: [Int](repeating: 0, count: level.rank), level)
            }
            try writer.commit()
        } catch {
            writer.discard()
            throw error
        }
    }

    /// Shape of level `k`: Y and X halved `k` times (at least 1).
    static func levelShape(_ shape: [Int], _ k: Int) -> [Int] {
        shape.enumerated().map { i, n in i >= shape.count - 2 ? max(1, n >> k) : n }
    }

    /// 2×2 means over the last two axes (a trailing odd row or column is dropped; extents of 1 stay).
    static func halveYX(_ x: Tensor) throws -> Tensor {
        let r = x.rank, h = x.shape[r - 2], w = x.shape[r - 1]
        let (oh, ow) = (max(1, h / 2), max(1, w / 2))
        let (sy, sx) = (h > 1 ? 2 : 1, w > 1 ? 2 : 1)
        let planes = x.count / max(1, h * w)
        let out = Tensor(uninitialized: Array(x.shape.dropLast(2)) + [oh, ow])
        let src = x.storage.base, dst = out.storage.base
        let weight = 1 / Float(sy * sx)
        Threads.parallelFor(planes) { p in
            let s = src + p * h * w, d = dst + p * oh * ow
            for y in 0..<oh {
                for xx in 0..<ow {
                    var sum: Float = 0
                    for dy in 0..<sy { for dx in 0..<sx { sum += s[(y * sy + dy) * w + xx * sx + dx] } }
                    d[y * ow + xx] = sum * weight
                }
            }
        }
        return out
    }
}

/// Writes an OME-Zarr group into a temporary folder next to `path` and moves it into place on
/// `commit()` (so a run that fails or is killed leaves no half-written image under `path`).
/// Streaming writers fill `arrays[0]` chunk by chunk.
public final class OMEZarrWriter {
    /// Where the group goes.
    public let path: String
    /// The temporary folder being written.
    public let temporaryPath: String
    /// The arrays of the levels, inside the temporary folder.
    public let arrays: [ZarrArray]

    /// Creates the temporary group with its metadata and empty arrays. `chunks` defaults to
    /// `OMEZarr.defaultChunks`. Refuses to replace an existing `path` that is not an OME-Zarr group.
    public init(path: String, axes: String, shape: [Int], pixelSize: Double?, zSpacing: Double?, type: PixelType,
                chunks: [Int]? = nil, compressor: ZarrCompressor = .defaultBlosc, levels: Int = 1, name: String? = nil) throws {
        try Image.validate(axes: axes, rank: shape.count)
        guard axes == Image.canonicalAxes(axes) else {
            throw ImagingError.invalidAxes(axes: axes, reason: "OME-Zarr needs the axes in t, c, z, y, x order")
        }
        var p = path
        while p.hasSuffix("/") && p.count > 1 { p.removeLast() }
        if FileManager.default.fileExists(atPath: p) && !OMEZarr.isGroup(p) {
            throw ImagingError.unwritable(path: p, reason: "exists and is not an OME-Zarr image; refusing to replace it")
        }
        self.path = p
        let url = URL(fileURLWithPath: p)
        temporaryPath = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).lucid-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tmp").path
        let chunks = chunks ?? OMEZarr.defaultChunks(axes: axes, shape: shape)
        do {
            try FileManager.default.createDirectory(atPath: temporaryPath, withIntermediateDirectories: false)
        } catch {
            throw ImagingError.unwritable(path: p, reason: "cannot create a folder next to it (\(error.localizedDescription))")
        }
        do {
            try ZarrArray.writeJSON(["zarr_format": 2], to: ZarrArray.join(temporaryPath, ".zgroup"))
            var datasets: [[String: Any]] = []
            var arrays: [ZarrArray] = []
            let letters = Array(axes)
            for k in 0..<levels {
                let scale = letters.map { a -> Double in
                    switch a {
                    case "Y", "X": return (pixelSize ?? 1) * Double(1 << k)
                    case "Z": return zSpacing ?? 1
                    default: return 1
                    }
                }
                var transforms: [[String: Any]] = [["type": "scale", "scale": scale]]
                if k > 0 {
                    // A 2×2 mean's sample sits between the four it averages.
                    let shift = letters.map { a in a == "Y" || a == "X" ? 0.5 * Double((1 << k) - 1) * (pixelSize ?? 1) : 0 }
                    transforms.append(["type": "translation", "translation": shift])
                }
                datasets.append(["path": String(k), "coordinateTransformations": transforms])
                arrays.append(try ZarrArray.create(at: ZarrArray.join(temporaryPath, String(k)),
                                                   shape: OMEZarr.levelShape(shape, k), chunks: chunks,
                                                   dataType: ZarrDataType(type), compressor: compressor))
            }
            let axesJSON: [[String: Any]] = letters.map { a in
                var d: [String: Any] = ["name": String(a).lowercased()]
                switch a {
                case "T": d["type"] = "time"
                case "C": d["type"] = "channel"
                default:
                    d["type"] = "space"
                    if (a == "Z" ? zSpacing : pixelSize) != nil { d["unit"] = "micrometer" }
                }
                return d
            }
            var multiscale: [String: Any] = ["version": "0.4", "axes": axesJSON, "datasets": datasets]
            multiscale["name"] = name ?? url.deletingPathExtension().lastPathComponent
            if levels > 1 { multiscale["type"] = "mean"; multiscale["metadata"] = ["method": "2x2 mean of Y and X", "software": "Lucid"] }
            try ZarrArray.writeJSON(["multiscales": [multiscale]], to: ZarrArray.join(temporaryPath, ".zattrs"))
            self.arrays = arrays
        } catch {
            try? FileManager.default.removeItem(atPath: temporaryPath)
            throw error
        }
    }

    /// Moves the finished group to `path`, replacing the OME-Zarr there.
    public func commit() throws {
        let fm = FileManager.default
        var old: String?
        if fm.fileExists(atPath: path) {
            old = temporaryPath + ".old"
            guard rename(path, old!) == 0 else {
                throw ImagingError.unwritable(path: path, reason: "cannot move the existing image aside (\(String(cString: strerror(errno))))")
            }
        }
        guard rename(temporaryPath, path) == 0 else {
            let reason = String(cString: strerror(errno))
            if let old { _ = rename(old, path) }
            throw ImagingError.unwritable(path: path, reason: "cannot move the written image into place (\(reason))")
        }
        if let old { try? fm.removeItem(atPath: old) }
    }

    /// Removes the temporary folder.
    public func discard() {
        try? FileManager.default.removeItem(atPath: temporaryPath)
    }
}
