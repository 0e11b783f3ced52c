import Foundation
import LucidCore

/// A safetensors file that could not be written or read; the message names the file and cause.
public struct SafeTensorsError: Error, CustomStringConvertible, Equatable {
    /// Path of the file.
    public var path: String
    /// What is wrong with it.
    public var reason: String
    public var description: String { "safetensors \(path): \(reason)".escapingControlCharacters }
}

/// Reads and writes the safetensors format (the Hugging Face / PyTorch checkpoint format).
///
/// Layout: an 8-byte little-endian header length `n`, `n` bytes of JSON (padded with spaces to
/// a multiple of 8) mapping each name to `{"dtype", "shape", "data_offsets": [begin, end]}` plus
/// an optional `"__metadata__"` string map, then the little-endian data. Lucid writes `F32`;
/// it reads `F32`, `F64`, `F16`, `BF16`, `I64`, `I32` (converted to Float32, e.g. PyTorch's
/// int64 `num_batches_tracked`).
/// ```swift
/// try SafeTensors.save(net.stateDict(), metadata: ["epoch": "3"], to: url)
/// let (tensors, meta) = try SafeTensors.load(from: url)
/// ```
public enum SafeTensors {
    /// Largest header accepted (as the reference implementation: 100 MB).
    static let maxHeaderBytes = 100_000_000

    /// Writes `tensors` atomically: to a temporary file in the same folder, flushed with
    /// `fsync`, then renamed over `url`; on any failure the previous file is left untouched.
    public static func save(_ tensors: [String: Tensor], metadata: [String: String] = [:], to url: URL) throws {
        let path = url.path
        func fail(_ reason: String) -> SafeTensorsError { SafeTensorsError(path: path, reason: reason) }
        if tensors["__metadata__"] != nil { throw fail("'__metadata__' is reserved and cannot name a tensor") }
        let names = tensors.keys.sorted()
        var header = "{"
        if !metadata.isEmpty {
            header += "\"__metadata__\":{" + metadata.keys.sorted().map { "\(jsonQuoted($0)):\(jsonQuoted(metadata[$0]!))" }.joined(separator: ",") + "},"
        }
        var offset = 0
        var entries: [String] = []
        for n in names {
            let t = tensors[n]!
            let bytes = t.count * 4
            entries.append("\(jsonQuoted(n)):{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        header += entries.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }

        do {
            try AtomicFile.write(to: path) { file in
                var len = UInt64(headerBytes.count).littleEndian
                try withUnsafeBytes(of: &len) { try file.write($0) }
                try headerBytes.withUnsafeBytes { try file.write($0) }
                for n in names {
                    let t = tensors[n]!
                    #if _endian(big)
                    try t.scalars.map { $0.bitPattern.littleEndian }.withUnsafeBytes { try file.write($0) }
                    #else
                    try t.withUnsafeBufferPointer { try file.write(UnsafeRawBufferPointer($0)) }
                    #endif
                }
            }
        } catch let error as FileWriteError {
            throw fail(error.reason)
        }
    }

    /// Reads every tensor and the `__metadata__` map, validating the header, the dtypes and
    /// that the data offsets exactly tile the data section.
    public static func load(from url: URL) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw SafeTensorsError(path: url.path, reason: "cannot read file: \((error as NSError).localizedDescription)")
        }
        return try load(data, path: url.path)
    }

    /// Parses the bytes of a safetensors file as `load(from:)` does; `path` names it in errors.
    /// Sizes the header declares are checked (without overflow) against the data section and the
    /// available memory before anything is allocated.
    public static func load(_ data: Data, path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        func fail(_ reason: String) -> SafeTensorsError { SafeTensorsError(path: path, reason: reason) }
        guard data.count >= 8 else { throw fail("truncated: \(data.count) bytes, shorter than the 8-byte header length") }
        let n64 = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard n64 <= UInt64(maxHeaderBytes) else { throw fail("bad header: length \(n64) exceeds \(maxHeaderBytes) bytes") }
        let n = Int(n64)
        guard 8 + n <= data.count else { throw fail("truncated: header length \(n) but only \(data.count - 8) bytes follow") }
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) } catch {
            throw fail("bad header: not valid JSON")
        }
        guard let dict = json as? [String: Any] else { throw fail("bad header: not a JSON object") }
        let dataSize = data.count - 8 - n
        var metadata: [String: String] = [:]
        struct Entry { var name: String; var dtype: String; var shape: [Int]; var begin: Int; var end: Int }
        var entries: [Entry] = []
        for (name, value) in dict {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw fail("bad header: __metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw fail("bad header: __metadata__ value of '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let e = value as? [String: Any], let dtype = e["dtype"] as? String,
                  let shapeAny = e["shape"] as? [Any], let offAny = e["data_offsets"] as? [Any], offAny.count == 2
            else { throw fail("bad header: entry '\(name)' lacks dtype, shape or data_offsets") }
            let shape = try shapeAny.map { v -> Int in
                guard let i = v as? Int, i >= 0 else { throw fail("bad header: shape of '\(name)' is not a list of non-negative integers") }
                return i
            }
            let off = try offAny.map { v -> Int in
                guard let i = v as? Int, i >= 0 else { throw fail("bad header: data_offsets of '\(name)' are not non-negative integers") }
                return i
            }
            guard let size = elementSize(dtype) else { throw fail("unsupported dtype '\(dtype)' of '\(name)' (supported: F32, F64, F16, BF16, I64, I32)") }
            guard let bytes = SystemMemory.product(shape + [size]) else {
                throw fail("'\(name)' of shape \(shape) has more elements than a 64-bit size can count")
            }
            guard off[0] <= off[1], off[1] <= dataSize else {
                throw fail("offset out of range: '\(name)' spans [\(off[0]), \(off[1])) but the data section has \(dataSize) bytes")
            }
            guard off[1] - off[0] == bytes else {
                throw fail("'\(name)' of shape \(shape) and dtype \(dtype) needs \(bytes) bytes, data_offsets give \(off[1] - off[0])")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, begin: off[0], end: off[1]))
        }
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var expected = 0
        for e in entries {
            guard e.begin == expected else { throw fail("bad header: data of '\(e.name)' starts at \(e.begin), expected \(expected) (overlap or gap)") }
            expected = e.end
        }
        guard expected == dataSize else { throw fail("bad header: tensors cover \(expected) bytes but the data section has \(dataSize)") }
        let floats = entries.reduce(0) { $0 + ($1.end - $1.begin) / elementSize($1.dtype)! * 4 }
        if let short = SystemMemory.shortfall(floats) { throw fail("the tensors as Float32 \(short)") }

        var tensors: [String: Tensor] = [:]
        data.withUnsafeBytes { raw in
            let base = raw.baseAddress! + 8 + n
            for e in entries {
                let t = Tensor(uninitialized: e.shape)
                let src = base + e.begin
                let out = t.storage.base
                let c = t.count
                switch e.dtype {
                case "F32":
                    #if _endian(little)
                    if c > 0 { memcpy(out, src, 4 * c) }
                    #else
                    for i in 0..<c { out[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
                    #endif
                case "F64": for i in 0..<c { out[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
                case "BF16": for i in 0..<c { out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16) }
                case "F16": for i in 0..<c { out[i] = halfToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
                case "I64": for i in 0..<c { out[i] = Float(Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) }
                default: for i in 0..<c { out[i] = Float(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
                }
                tensors[e.name] = t
            }
        }
        return (tensors, metadata)
    }

    private static func elementSize(_ dtype: String) -> Int? {
        switch dtype {
        case "F32", "I32": return 4
        case "F64", "I64": return 8
        case "F16", "BF16": return 2
        default: return nil
        }
    }

    /// IEEE half → Float (handles subnormals, infinities and NaN).
    private static func halfToFloat(_ h: UInt16) -> Float {
        let sign: Float = (h & 0x8000) != 0 ? -1 : 1
        let exp = Int((h >> 10) & 0x1F), frac = Float(h & 0x3FF)
        if exp == 0 { return sign * frac * Float(sign: .plus, exponent: -24, significand: 1) }
        if exp == 31 { return frac == 0 ? sign * .infinity : .nan }
        return sign * (1 + frac / 1024) * Float(sign: .plus, exponent: exp - 15, significand: 1)
    }
}
