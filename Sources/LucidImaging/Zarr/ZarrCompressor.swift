import CBlosc
import CZstd
import Foundation

/// The compressor of a zarr v2 array (`.zarray`'s `compressor`, numcodecs ids): none, `zlib`,
/// `gzip`, `zstd` (ome-zarr-py's default) or `blosc` (any of the codecs the system's c-blosc was
/// built with; zarr-python's default).
public enum ZarrCompressor: Equatable, Sendable {
    case none
    /// zlib stream (RFC 1950) at `level` 0…9.
    case zlib(level: Int)
    /// gzip member (RFC 1952) at `level` 0…9.
    case gzip(level: Int)
    /// A Zstandard frame at `level` (0: zstd's default).
    case zstd(level: Int)
    /// Blosc: inner codec `cname` (`lz4`, `zstd`, `zlib`, `blosclz`, …), `clevel` 0…9, `shuffle`
    /// (0 none, 1 byte, 2 bit, −1 automatic: bit for 1-byte items, else byte), `blocksize` (0: automatic).
    case blosc(cname: String, clevel: Int, shuffle: Int, blocksize: Int)

    /// numcodecs' default (and zarr-python's for v2 arrays): Blosc lz4, level 5, byte shuffle.
    public static let defaultBlosc = ZarrCompressor.blosc(cname: "lz4", clevel: 5, shuffle: 1, blocksize: 0)

    /// Parses `.zarray`'s `compressor` value (`nil`/`NSNull` is `.none`).
    public init(json: Any?, path: String) throws {
        guard let json, !(json is NSNull) else { self = .none; return }
        guard let d = json as? [String: Any], let id = d["id"] as? String else {
            throw ImagingError.unreadable(path: path, reason: "'compressor' must be null or an object with an 'id'")
        }
        func int(_ key: String, _ fallback: Int) -> Int { (d[key] as? NSNumber)?.intValue ?? fallback }
        switch id {
        case "zlib": self = .zlib(level: int("level", 1))
        case "gzip": self = .gzip(level: int("level", 1))
        case "zstd": self = .zstd(level: int("level", 0))
        case "blosc":
            self = .blosc(cname: d["cname"] as? String ?? "lz4", clevel: int("clevel", 5), shuffle: int("shuffle", 1),
                          blocksize: int("blocksize", 0))
        default:
            throw ImagingError.unsupported(path: path, reason: "compressor '\(id)' (Lucid reads zlib, gzip, zstd, blosc or none)")
        }
    }

    /// The `.zarray` value.
    public var json: Any {
        switch self {
        case .none: return NSNull()
        case .zlib(let level): return ["id": "zlib", "level": level] as [String: Any]
        case .gzip(let level): return ["id": "gzip", "level": level] as [String: Any]
        case .zstd(let level): return ["id": "zstd", "level": level] as [String: Any]
        case let .blosc(cname, clevel, shuffle, blocksize):
            return ["id": "blosc", "cname": cname, "clevel": clevel, "shuffle": shuffle, "blocksize": blocksize] as [String: Any]
        }
    }

    /// Compresses one chunk of items of `itemSize` bytes.
    public func encode(_ raw: Data, itemSize: Int) throws -> Data {
        switch self {
        case .none: return raw
        case .zlib(let level): return try Deflate.compress(raw, level: level, wrapper: .zlib)
        case .gzip(let level): return try Deflate.compress(raw, level: level, wrapper: .gzip)
        case .zstd(let level):
            var out = Data(count: ZSTD_compressBound(raw.count))
            let n = raw.withUnsafeBytes { src in
                out.withUnsafeMutableBytes { ZSTD_compress($0.baseAddress, $0.count, src.baseAddress, raw.count, Int32(level)) }
            }
            guard ZSTD_isError(n) == 0 else {
                throw ImagingError.invalidArgument(op: "zarr zstd", detail: String(cString: ZSTD_getErrorName(n)))
            }
            out.count = n
            return out
        case let .blosc(cname, clevel, shuffle, blocksize):
            let mode = shuffle >= 0 ? shuffle : (itemSize == 1 ? 2 : 1)
            var out = Data(count: raw.count + Int(BLOSC_MAX_OVERHEAD))
            let written = raw.withUnsafeBytes { src in
                out.withUnsafeMutableBytes { dst in
                    blosc_compress_ctx(Int32(clevel), Int32(mode), itemSize, raw.count, src.baseAddress, dst.baseAddress,
                                       dst.count, cname, blocksize, 1)
                }
            }
            guard written > 0 else {
                throw ImagingError.invalidArgument(op: "zarr blosc", detail: "compressing with '\(cname)' failed (code \(written); is it built into c-blosc?)")
            }
            out.count = Int(written)
            return out
        }
    }

    /// Decompresses one chunk that must hold exactly `expectedBytes` bytes.
    public func decode(_ stored: Data, expectedBytes: Int, path: String) throws -> Data {
        switch self {
        case .none:
            guard stored.count == expectedBytes else {
                throw ImagingError.unreadable(path: path, reason: "chunk holds \(stored.count) bytes, expected \(expectedBytes)")
            }
            return stored
        case .zlib, .gzip:
            return try Deflate.decompress(stored, expectedBytes: expectedBytes, path: path)
        case .zstd:
            var out = Data(count: expectedBytes)
            let n = stored.withUnsafeBytes { src in
                out.withUnsafeMutableBytes { ZSTD_decompress($0.baseAddress, $0.count, src.baseAddress, stored.count) }
            }
            guard ZSTD_isError(n) == 0, n == expectedBytes else {
                let why = ZSTD_isError(n) != 0 ? "corrupt zstd data (\(String(cString: ZSTD_getErrorName(n))))"
                    : "zstd chunk holds \(n) bytes, expected \(expectedBytes)"
                throw ImagingError.unreadable(path: path, reason: why)
            }
            return out
        case .blosc:
            var nbytes = 0
            let valid = stored.withUnsafeBytes { blosc_cbuffer_validate($0.baseAddress, stored.count, &nbytes) }
            guard valid == 0, nbytes == expectedBytes else {
                throw ImagingError.unreadable(path: path, reason: valid != 0 ? "not a valid blosc chunk" : "blosc chunk holds \(nbytes) bytes, expected \(expectedBytes)")
            }
            var out = Data(count: expectedBytes)
            let n = stored.withUnsafeBytes { src in
                out.withUnsafeMutableBytes { dst in blosc_decompress_ctx(src.baseAddress, dst.baseAddress, dst.count, 1) }
            }
            guard n == expectedBytes else {
                throw ImagingError.unreadable(path: path, reason: "blosc decompression failed (code \(n))")
            }
            return out
        }
    }
}
