import Foundation
import LucidCore

/// Element type of a zarr v2 array (`.zarray`'s `dtype`, a NumPy type string such as `<u2`).
public struct ZarrDataType: Equatable, Sendable {
    /// Sample kinds Lucid reads; it writes `uint8`, `uint16`, `int16` and `float32`.
    public enum Kind: String, Sendable { case u1, i1, u2, i2, u4, i4, f4, f8 }
    public var kind: Kind
    public var bigEndian: Bool

    public init(_ kind: Kind, bigEndian: Bool = false) {
        self.kind = kind
        self.bigEndian = bigEndian
    }

    /// Parses `<u2`, `>f4`, `|u1`, … ; throws naming `path` for other types.
    public init(numpy s: String, path: String) throws {
        guard s.count == 3, let kind = Kind(rawValue: String(s.dropFirst())), ["<", ">", "|"].contains(s.first!) else {
            throw ImagingError.unsupported(path: path, reason: "dtype '\(s)' (Lucid reads u1, i1, u2, i2, u4, i4, f4 and f8 in either byte order)")
        }
        self.kind = kind
        bigEndian = s.first == ">"
    }

    /// The type for writing `type` pixels.
    public init(_ type: PixelType) {
        switch type {
        case .uint8: self.init(.u1)
        case .uint16: self.init(.u2)
        case .int16: self.init(.i2)
        case .float32: self.init(.f4)
        }
    }

    /// Bytes per item.
    public var size: Int {
        switch kind {
        case .u1, .i1: return 1
        case .u2, .i2: return 2
        case .u4, .i4, .f4: return 4
        case .f8: return 8
        }
    }

    /// The NumPy type string.
    public var numpy: String { (size == 1 ? "|" : bigEndian ? ">" : "<") + kind.rawValue }

    /// The pixel type an image read from such an array reports (`float32` for wider types).
    public var pixelType: PixelType {
        switch kind {
        case .u1: return .uint8
        case .u2: return .uint16
        case .i2: return .int16
        default: return .float32
        }
    }

    /// Decodes `count` items at `src` into floats.
    func decode(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
        @inline(__always) func load<T: FixedWidthInteger>(_: T.Type, _ i: Int) -> T {
            let v = src.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self)
            return bigEndian ? T(bigEndian: v) : T(littleEndian: v)
        }
        switch kind {
        case .u1: for i in 0..<count { dst[i] = Float(load(UInt8.self, i)) }
        case .i1: for i in 0..<count { dst[i] = Float(load(Int8.self, i)) }
        case .u2: for i in 0..<count { dst[i] = Float(load(UInt16.self, i)) }
        case .i2: for i in 0..<count { dst[i] = Float(load(Int16.self, i)) }
        case .u4: for i in 0..<count { dst[i] = Float(load(UInt32.self, i)) }
        case .i4: for i in 0..<count { dst[i] = Float(load(Int32.self, i)) }
        case .f4: for i in 0..<count { dst[i] = Float(bitPattern: load(UInt32.self, i)) }
        case .f8: for i in 0..<count { dst[i] = Float(Double(bitPattern: load(UInt64.self, i))) }
        }
    }

    /// Encodes floats (rounded and clamped for integer types, NaN → 0) little-endian.
    func encode(_ src: UnsafePointer<Float>, count: Int, into dst: UnsafeMutableRawPointer) {
        @inline(__always) func store<T: FixedWidthInteger>(_: T.Type, _ i: Int, _ v: Float) {
            let lo = Float(T.min), hi = Float(T.max)
            let q = v.isNaN ? 0 : Swift.min(Swift.max(v.rounded(), lo), hi)
            dst.storeBytes(of: T(q).littleEndian, toByteOffset: i * MemoryLayout<T>.size, as: T.self)
        }
        switch kind {
        case .u1: for i in 0..<count { store(UInt8.self, i, src[i]) }
        case .i1: for i in 0..<count { store(Int8.self, i, src[i]) }
        case .u2: for i in 0..<count { store(UInt16.self, i, src[i]) }
        case .i2: for i in 0..<count { store(Int16.self, i, src[i]) }
        case .u4, .i4:
            // Float cannot hold UInt32.max/Int32.max exactly; clamp in Double.
            for i in 0..<count {
                let v = src[i].isNaN ? 0 : Double(src[i]).rounded()
                if kind == .u4 { dst.storeBytes(of: UInt32(Swift.min(Swift.max(v, 0), 4_294_967_295)).littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
                else { dst.storeBytes(of: Int32(Swift.min(Swift.max(v, -2_147_483_648), 2_147_483_647)).littleEndian, toByteOffset: 4 * i, as: Int32.self) }
            }
        case .f4: for i in 0..<count { dst.storeBytes(of: src[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
        case .f8: for i in 0..<count { dst.storeBytes(of: Double(src[i]).bitPattern.littleEndian, toByteOffset: 8 * i, as: UInt64.self) }
        }
    }
}

/// A zarr v2 array in a folder: `.zarray` and one file per chunk (row-major `C` order,
/// keys `i.j.k` or `i/j/k`). Chunks at the edges are stored whole; missing chunks read as the
/// fill value. Regions are read and written with the chunks they touch decoded in parallel.
/// ```swift
/// let array = try ZarrArray.open("image.zarr/0")
/// let slab = try array.read(origin: [16, 0, 0], size: [8, array.shape[1], array.shape[2]])
/// ```
public struct ZarrArray: Sendable {
    /// The array's folder.
    public let path: String
    public let shape: [Int]
    public let chunks: [Int]
    public let dataType: ZarrDataType
    public let compressor: ZarrCompressor
    /// Value of pixels in chunks never written (NaN allowed).
    public let fillValue: Float
    /// Separator of chunk key indices: `.` (zarr's default) or `/`.
    public let separator: String

    /// Chunks per axis.
    public var chunkGrid: [Int] { zip(shape, chunks).map { ($0 + $1 - 1) / $1 } }

    /// Items in one chunk.
    public var chunkCount: Int { chunks.reduce(1, *) }

    /// Reads `path/.zarray`; throws naming the file for anything Lucid does not read
    /// (filters, Fortran order, other dtypes or compressors).
    public static func open(_ path: String) throws -> ZarrArray {
        let file = join(path, ".zarray")
        let d = try readJSON(file)
        func ints(_ key: String) throws -> [Int] {
            guard let a = d[key] as? [NSNumber], a.allSatisfy({ $0.intValue >= 0 }) else {
                throw ImagingError.unreadable(path: file, reason: "'\(key)' must be a list of non-negative integers")
            }
            return a.map(\.intValue)
        }
        guard (d["zarr_format"] as? NSNumber)?.intValue == 2 else {
            throw ImagingError.unsupported(path: file, reason: "zarr_format \(d["zarr_format"] ?? "missing") (Lucid reads zarr v2)")
        }
        let shape = try ints("shape"), chunks = try ints("chunks")
        guard chunks.count == shape.count, chunks.allSatisfy({ $0 > 0 }) else {
            throw ImagingError.unreadable(path: file, reason: "'chunks' \(chunks) must give a positive size for each of the \(shape.count) axes")
        }
        guard d["order"] as? String ?? "C" == "C" else {
            throw ImagingError.unsupported(path: file, reason: "order '\(d["order"]!)' (Lucid reads C-order chunks)")
        }
        if let filters = d["filters"], !(filters is NSNull), !((filters as? [Any])?.isEmpty ?? false) {
            throw ImagingError.unsupported(path: file, reason: "filters \(filters) (Lucid reads arrays without filters)")
        }
        guard let dtype = d["dtype"] as? String else { throw ImagingError.unreadable(path: file, reason: "'dtype' is missing") }
        let type = try ZarrDataType(numpy: dtype, path: file)
        let compressor = try ZarrCompressor(json: d["compressor"], path: file)
        let fill: Float
        switch d["fill_value"] {
        case let n as NSNumber: fill = n.floatValue
        case let s as String where s == "NaN": fill = .nan
        case let s as String where s == "Infinity": fill = .infinity
        case let s as String where s == "-Infinity": fill = -.infinity
        default: fill = 0
        }
        let separator = d["dimension_separator"] as? String ?? "."
        guard separator == "." || separator == "/" else {
            throw ImagingError.unreadable(path: file, reason: "dimension_separator '\(separator)' must be '.' or '/'")
        }
        return ZarrArray(path: path, shape: shape, chunks: chunks, dataType: type, compressor: compressor,
                         fillValue: fill, separator: separator)
    }

    /// Creates the folder and its `.zarray` (replacing an array already there, whose chunk files
    /// are removed); no chunk is written yet.
    public static func create(at path: String, shape: [Int], chunks: [Int], dataType: ZarrDataType,
                              compressor: ZarrCompressor = .defaultBlosc, fillValue: Float = 0) throws -> ZarrArray {
        guard !shape.isEmpty, chunks.count == shape.count, chunks.allSatisfy({ $0 > 0 }), shape.allSatisfy({ $0 >= 0 }) else {
            throw ImagingError.invalidArgument(op: "ZarrArray.create", detail: "shape \(shape) and chunks \(chunks) must have the same rank and positive chunks")
        }
        if FileManager.default.fileExists(atPath: path) {
            try? FileManager.default.removeItem(atPath: path)
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw ImagingError.unwritable(path: path, reason: "cannot create the folder (\(error.localizedDescription))")
        }
        let meta: [String: Any] = [
            "zarr_format": 2, "shape": shape, "chunks": chunks, "dtype": dataType.numpy,
            "compressor": compressor.json, "fill_value": fillValue.isNaN ? "NaN" as Any : Double(fillValue) as Any,
            "filters": NSNull(), "order": "C", "dimension_separator": ".",
        ]
        try writeJSON(meta, to: join(path, ".zarray"))
        return ZarrArray(path: path, shape: shape, chunks: chunks, dataType: dataType, compressor: compressor,
                         fillValue: fillValue, separator: ".")
    }

    /// File of the chunk at grid position `index`.
    public func chunkPath(_ index: [Int]) -> String {
        ZarrArray.join(path, index.map(String.init).joined(separator: separator))
    }

    /// The whole chunk at `index` as floats (`chunkCount` values, C order; the fill value when
    /// the chunk file is missing).
    public func readChunk(_ index: [Int]) throws -> [Float] {
        let file = chunkPath(index)
        guard let stored = FileManager.default.contents(atPath: file) else {
            return [Float](repeating: fillValue, count: chunkCount)
        }
        let raw = try compressor.decode(stored, expectedBytes: chunkCount * dataType.size, path: file)
        var out = [Float](repeating: 0, count: chunkCount)
        raw.withUnsafeBytes { src in
            out.withUnsafeMutableBufferPointer { dataType.decode(src.baseAddress!, count: chunkCount, into: $0.baseAddress!) }
        }
        return out
    }

    /// Writes the whole chunk at `index` from `chunkCount` floats (C order; the part outside the
    /// array is stored too, as zarr does).
    public func writeChunk(_ index: [Int], _ values: [Float]) throws {
        guard values.count == chunkCount, index.count == shape.count,
              zip(index, chunkGrid).allSatisfy({ $0 >= 0 && $0 < $1 }) else {
            throw ImagingError.invalidArgument(op: "ZarrArray.writeChunk", detail: "chunk \(index) of grid \(chunkGrid) with \(values.count) values (expected \(chunkCount))")
        }
        var raw = Data(count: chunkCount * dataType.size)
        values.withUnsafeBufferPointer { src in
            raw.withUnsafeMutableBytes { dataType.encode(src.baseAddress!, count: chunkCount, into: $0.baseAddress!) }
        }
        let stored = try compressor.encode(raw, itemSize: dataType.size)
        let file = chunkPath(index)
        if separator == "/" {
            try? FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        }
        do { try stored.write(to: URL(fileURLWithPath: file), options: .atomic) } catch {
            throw ImagingError.unwritable(path: file, reason: error.localizedDescription)
        }
    }

    /// The box `origin ..< origin + size` as a tensor of shape `size`.
    public func read(origin: [Int], size: [Int]) throws -> Tensor {
        try checkBox(origin, size, op: "ZarrArray.read")
        var out = Tensor(zeros: size)
        let chunkList = chunksTouching(origin, size)
        let dst = out.storage.base
        try ZarrArray.parallelThrowing(chunkList.count) { k in
            let index = chunkList[k]
            let values = try readChunk(index)
            values.withUnsafeBufferPointer { src in
                copyBox(chunk: index, origin: origin, size: size) { chunkOffset, boxOffset, n in
                    (dst + boxOffset).update(from: src.baseAddress! + chunkOffset, count: n)
                }
            }
        }
        out.makeUnique()
        return out
    }

    /// Writes `values` (shape = the box's size) at `origin`. The box must consist of whole
    /// chunks, apart from where it ends at the array's edge.
    public func write(origin: [Int], _ values: Tensor) throws {
        let size = values.shape
        try checkBox(origin, size, op: "ZarrArray.write")
        for a in 0..<shape.count where origin[a] % chunks[a] != 0 || (size[a] % chunks[a] != 0 && origin[a] + size[a] != shape[a]) {
            throw ImagingError.invalidArgument(op: "ZarrArray.write", detail: "box at \(origin) of size \(size) must be aligned to the chunks \(chunks) (or end at the array's edge \(shape))")
        }
        let chunkList = chunksTouching(origin, size)
        let src = values.storage.base
        try ZarrArray.parallelThrowing(chunkList.count) { k in
            let index = chunkList[k]
            var chunk = [Float](repeating: fillValue.isNaN ? 0 : fillValue, count: chunkCount)
            chunk.withUnsafeMutableBufferPointer { dst in
                copyBox(chunk: index, origin: origin, size: size) { chunkOffset, boxOffset, n in
                    (dst.baseAddress! + chunkOffset).update(from: src + boxOffset, count: n)
                }
            }
            try writeChunk(index, chunk)
        }
    }

    private func checkBox(_ origin: [Int], _ size: [Int], op: String) throws {
        guard origin.count == shape.count, size.count == shape.count,
              (0..<shape.count).allSatisfy({ origin[$0] >= 0 && size[$0] >= 0 && origin[$0] + size[$0] <= shape[$0] }) else {
            throw ImagingError.invalidArgument(op: op, detail: "box at \(origin) of size \(size) does not lie inside the array \(shape) ('\(path)')")
        }
    }

    /// Grid indices of the chunks meeting the box, in C order.
    func chunksTouching(_ origin: [Int], _ size: [Int]) -> [[Int]] {
        guard size.allSatisfy({ $0 > 0 }) else { return [] }
        let lo = zip(origin, chunks).map { $0 / $1 }
        let hi = (0..<shape.count).map { (origin[$0] + size[$0] - 1) / chunks[$0] }
        var out: [[Int]] = [lo]
        for a in 0..<shape.count {
            out = out.flatMap { base in (lo[a]...hi[a]).map { i in var b = base; b[a] = i; return b } }
        }
        return out
    }

    /// Calls `copy(chunkOffset, boxOffset, count)` for every contiguous row where chunk `index`
    /// and the box meet (offsets in items, C order).
    func copyBox(chunk index: [Int], origin: [Int], size: [Int], _ copy: (Int, Int, Int) -> Void) {
        let r = shape.count
        let start = (0..<r).map { max(origin[$0], index[$0] * chunks[$0]) }
        let end = (0..<r).map { min(origin[$0] + size[$0], (index[$0] + 1) * chunks[$0]) }
        guard (0..<r).allSatisfy({ start[$0] < end[$0] }) else { return }
        let chunkStrides = Tensor.strides(of: chunks), boxStrides = Tensor.strides(of: size)
        let rowLength = end[r - 1] - start[r - 1]
        var position = start
        while true {
            var c = 0, b = 0
            for a in 0..<r {
                c += (position[a] - index[a] * chunks[a]) * chunkStrides[a]
                b += (position[a] - origin[a]) * boxStrides[a]
            }
            copy(c, b, rowLength)
            var a = r - 2
            while a >= 0 {
                position[a] += 1
                if position[a] < end[a] { break }
                position[a] = start[a]
                a -= 1
            }
            if a < 0 { return }
        }
    }

    /// Runs `body` for 0..<n on the thread pool; rethrows the first error.
    static func parallelThrowing(_ n: Int, _ body: (Int) throws -> Void) throws {
        let errors = ErrorBox()
        Threads.parallelFor(n) { k in
            do { try body(k) } catch { errors.set(error) }
        }
        if let e = errors.first { throw e }
    }

    static func join(_ a: String, _ b: String) -> String { a.hasSuffix("/") ? a + b : a + "/" + b }

    /// Reads a JSON object file.
    static func readJSON(_ file: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ImagingError.unreadable(path: file, reason: "missing")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ImagingError.unreadable(path: file, reason: "not a JSON object")
        }
        return object
    }

    /// Writes a JSON object file atomically (keys sorted, indented).
    static func writeJSON(_ object: [String: Any], to file: String) throws {
        do {
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: file), options: .atomic)
        } catch {
            throw ImagingError.unwritable(path: file, reason: error.localizedDescription)
        }
    }
}

/// The first error thrown by concurrent work.
final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var first: Error?
    func set(_ e: Error) { lock.lock(); if first == nil { first = e }; lock.unlock() }
}
