import CZlib
import Foundation

/// Deflate compression through zlib: raw (as in ZIP files), zlib-wrapped or gzip-wrapped
/// streams, and the CRC-32 ZIP and gzip use.
public enum Deflate {
    /// The framing around the deflate stream.
    public enum Wrapper: Sendable {
        /// No header or trailer (ZIP entries).
        case raw
        /// RFC 1950 header and Adler-32 (numcodecs `zlib`).
        case zlib
        /// RFC 1952 header and CRC-32 (numcodecs `gzip`).
        case gzip

        var windowBits: Int32 {
            switch self {
            case .raw: return -15
            case .zlib: return 15
            case .gzip: return 15 + 16
            }
        }
    }

    /// Compresses `raw` at `level` 0…9.
    public static func compress(_ raw: Data, level: Int, wrapper: Wrapper) throws -> Data {
        guard (0...9).contains(level) else {
            throw ImagingError.invalidArgument(op: "Deflate.compress", detail: "level \(level) must be 0…9")
        }
        var stream = z_stream()
        guard deflateInit2_(&stream, Int32(level), Z_DEFLATED, wrapper.windowBits, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
                            Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw ImagingError.invalidArgument(op: "Deflate.compress", detail: "deflateInit2 failed")
        }
        defer { deflateEnd(&stream) }
        var out = Data(count: Int(deflateBound(&stream, uLong(raw.count))) + 32)
        let status = finish(&stream, from: raw, into: &out, deflate)
        guard status == Z_STREAM_END else {
            throw ImagingError.invalidArgument(op: "Deflate.compress", detail: "deflate failed (code \(status))")
        }
        out.count = Int(stream.total_out)
        return out
    }

    /// Inflates a zlib or gzip stream (told apart by its header) that must hold exactly
    /// `expectedBytes` bytes; errors name `path`.
    public static func decompress(_ stored: Data, expectedBytes: Int, path: String) throws -> Data {
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw ImagingError.unreadable(path: path, reason: "inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }
        var out = Data(count: expectedBytes)
        let status = finish(&stream, from: stored, into: &out, inflate)
        guard status == Z_STREAM_END, Int(stream.total_out) == expectedBytes else {
            let why = status == Z_STREAM_END || status == Z_BUF_ERROR
                ? "inflates to \(stream.total_out) bytes or more, expected \(expectedBytes)" : "corrupt zlib/gzip data (code \(status))"
            throw ImagingError.unreadable(path: path, reason: why)
        }
        return out
    }

    /// Runs `code` (zlib's `deflate` or `inflate`) over all of `input` into `output` in one
    /// `Z_FINISH` call; returns its status.
    private static func finish(_ stream: inout z_stream, from input: Data, into output: inout Data,
                               _ code: (UnsafeMutablePointer<z_stream>, Int32) -> Int32) -> Int32 {
        input.withUnsafeBytes { src in
            output.withUnsafeMutableBytes { dst in
                stream.next_in = UnsafeMutablePointer(mutating: src.bindMemory(to: Bytef.self).baseAddress)
                stream.avail_in = uInt(input.count)
                stream.next_out = dst.bindMemory(to: Bytef.self).baseAddress
                stream.avail_out = uInt(dst.count)
                return code(&stream, Z_FINISH)
            }
        }
    }

    /// The CRC-32 of `data` (ZIP, gzip, PNG).
    public static func crc32(_ data: Data) -> UInt32 {
        data.withUnsafeBytes { p in
            UInt32(CZlib.crc32(0, p.bindMemory(to: Bytef.self).baseAddress, uInt(data.count)))
        }
    }
}
