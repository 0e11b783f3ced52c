import Foundation
import LucidImaging

/// Writes ZIP archives (deflated entries, or stored where deflate does not help), as bioimage.io
/// packages are shipped. Entries are kept in memory until `write(to:)`, which writes the archive
/// atomically.
/// ```swift
/// var zip = ZipArchive()
/// try zip.add("rdf.yaml", Data(yaml.utf8))
/// try zip.write(to: "model.zip")
/// ```
public struct ZipArchive {
    private struct Entry {
        var name: String
        var method: UInt16
        var crc: UInt32
        var size: Int
        var stored: Data
        var offset = 0
    }

    private var entries: [Entry] = []

    public init() {}

    /// Names of the entries, in order.
    public var names: [String] { entries.map(\.name) }

    /// Adds a file; names are `/`-separated relative paths, each used once.
    public mutating func add(_ name: String, _ data: Data) throws {
        guard !name.isEmpty, !name.hasPrefix("/"), !name.split(separator: "/").contains(".."), !names.contains(name) else {
            throw ExportError(path: name, reason: "not a fresh relative name for a ZIP entry")
        }
        guard data.count < Int(UInt32.max) else {
            throw ExportError(path: name, reason: "\(data.count) bytes is more than a ZIP entry without ZIP64 holds")
        }
        let deflated = try Deflate.compress(data, level: 6, wrapper: .raw)
        let useDeflate = deflated.count < data.count
        entries.append(Entry(name: name, method: useDeflate ? 8 : 0, crc: Deflate.crc32(data), size: data.count,
                             stored: useDeflate ? deflated : data))
    }

    /// The archive's bytes.
    public func encoded() -> Data {
        var out = Data()
        func u16(_ v: UInt16) { out.append(contentsOf: [UInt8(v & 0xFF), UInt8(v >> 8)]) }
        func u32(_ v: UInt32) { u16(UInt16(v & 0xFFFF)); u16(UInt16(v >> 16)) }
        // 1980-01-01 00:00 in MS-DOS format: archives of the same files are byte-identical.
        let (time, date): (UInt16, UInt16) = (0, (0 << 9) | (1 << 5) | 1)
        var placed = entries
        for i in placed.indices {
            placed[i].offset = out.count
            let e = placed[i]
            u32(0x0403_4B50); u16(20); u16(0x0800); u16(e.method); u16(time); u16(date)
            u32(e.crc); u32(UInt32(e.stored.count)); u32(UInt32(e.size))
            u16(UInt16(e.name.utf8.count)); u16(0)
            out.append(contentsOf: Array(e.name.utf8))
            out.append(e.stored)
        }
        let directoryStart = out.count
        for e in placed {
            u32(0x0201_4B50); u16(0x0314); u16(20); u16(0x0800); u16(e.method); u16(time); u16(date)
            u32(e.crc); u32(UInt32(e.stored.count)); u32(UInt32(e.size))
            u16(UInt16(e.name.utf8.count)); u16(0); u16(0); u16(0); u16(0)
            u32(0o100644 << 16)
            u32(UInt32(e.offset))
            out.append(contentsOf: Array(e.name.utf8))
        }
        let directorySize = out.count - directoryStart
        u32(0x0605_4B50); u16(0); u16(0); u16(UInt16(placed.count)); u16(UInt16(placed.count))
        u32(UInt32(directorySize)); u32(UInt32(directoryStart)); u16(0)
        return out
    }

    /// Writes the archive to `path` through a temporary file renamed into place.
    public func write(to path: String) throws {
        let data = encoded()
        guard data.count < Int(UInt32.max) else {
            throw ExportError(path: path, reason: "the archive would need ZIP64 (\(data.count) bytes)")
        }
        do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw ExportError(path: path, reason: "cannot write (\(error.localizedDescription))")
        }
    }
}
