import CTIFF
import Foundation
import LucidCore
@testable import LucidImaging
import LucidTestSupport
import XCTest

/// Integer-valued random data covering `type`'s range (extremes included), or normal floats.
func randomData(_ shape: [Int], _ type: PixelType, seed: UInt64) -> Tensor {
    var rng = RandomGenerator(seed: seed)
    var t = Tensor(zeros: shape)
    t.withUnsafeMutableBufferPointer { p in
        for i in 0..<p.count {
            if let r = type.range {
                p[i] = r.lowerBound + Float(rng.int(below: Int(r.upperBound - r.lowerBound) + 1))
            } else {
                p[i] = rng.normal() * 1000
            }
        }
        if let r = type.range, p.count >= 2 { p[0] = r.lowerBound; p[1] = r.upperBound }
    }
    return t
}

/// Writes `pages` of `[H, W]` uint16 values with libtiff directly (independently of Lucid's
/// writer): any compression, optional tiles, BigTIFF ("w8") or big-endian ("wb") modes.
func writeWithLibtiff(_ path: String, mode: String = "w", pages: [[UInt16]], height: Int, width: Int,
                      compression: Int32 = COMPRESSION_NONE, predictor: Bool = false, tile: Int? = nil,
                      rowsPerStrip: Int = 3, description: String? = nil, thumbnailAfter: Set<Int> = []) throws {
    guard let tif = TIFFOpen(path, mode) else { throw ImagingError.unwritable(path: path, reason: "TIFFOpen") }
    defer { TIFFClose(tif) }
    func set(_ tag: Int32, _ args: CVarArg...) {
        let ok = withVaList(args) { TIFFVSetField(tif, UInt32(tag), $0) }
        precondition(ok == 1, "TIFFSetField \(tag) failed")
    }
    for (n, page) in pages.enumerated() {
        set(TIFFTAG_IMAGEWIDTH, UInt32(width))
        set(TIFFTAG_IMAGELENGTH, UInt32(height))
        set(TIFFTAG_BITSPERSAMPLE, Int32(16))
        set(TIFFTAG_SAMPLESPERPIXEL, Int32(1))
        set(TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_UINT)
        set(TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK)
        set(TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG)
        set(TIFFTAG_COMPRESSION, compression)
        if predictor { set(TIFFTAG_PREDICTOR, PREDICTOR_HORIZONTAL) }
        if n == 0, let description { description.withCString { set(TIFFTAG_IMAGEDESCRIPTION, $0) } }
        if let tile {
            set(TIFFTAG_TILEWIDTH, UInt32(tile))
            set(TIFFTAG_TILELENGTH, UInt32(tile))
            var buffer = [UInt16](repeating: 0, count: tile * tile)
            for ty in stride(from: 0, to: height, by: tile) {
                for tx in stride(from: 0, to: width, by: tile) {
                    for i in 0..<buffer.count { buffer[i] = 0 }
                    for y in 0..<min(tile, height - ty) {
                        for x in 0..<min(tile, width - tx) { buffer[y * tile + x] = page[(ty + y) * width + tx + x] }
                    }
                    let index = TIFFComputeTile(tif, UInt32(tx), UInt32(ty), 0, 0)
                    let n = buffer.withUnsafeMutableBytes { TIFFWriteEncodedTile(tif, index, $0.baseAddress, tmsize_t($0.count)) }
                    precondition(n >= 0)
                }
            }
        } else {
            set(TIFFTAG_ROWSPERSTRIP, UInt32(rowsPerStrip))
            var strip: UInt32 = 0
            for y in stride(from: 0, to: height, by: rowsPerStrip) {
                let rows = min(rowsPerStrip, height - y)
                var chunk = Array(page[(y * width)..<((y + rows) * width)])
                let n = chunk.withUnsafeMutableBytes { TIFFWriteEncodedStrip(tif, strip, $0.baseAddress, tmsize_t($0.count)) }
                precondition(n >= 0)
                strip += 1
            }
        }
        precondition(TIFFWriteDirectory(tif) == 1)
        if thumbnailAfter.contains(n) {
            // A reduced-resolution 2×2 page (NewSubfileType 1), as in pyramidal files.
            set(TIFFTAG_SUBFILETYPE, UInt32(FILETYPE_REDUCEDIMAGE))
            set(TIFFTAG_IMAGEWIDTH, UInt32(2)); set(TIFFTAG_IMAGELENGTH, UInt32(2))
            set(TIFFTAG_BITSPERSAMPLE, Int32(16)); set(TIFFTAG_SAMPLESPERPIXEL, Int32(1))
            set(TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK); set(TIFFTAG_ROWSPERSTRIP, UInt32(2))
            var thumb: [UInt16] = [1, 2, 3, 4]
            _ = thumb.withUnsafeMutableBytes { TIFFWriteEncodedStrip(tif, 0, $0.baseAddress, tmsize_t($0.count)) }
            precondition(TIFFWriteDirectory(tif) == 1)
        }
    }
}

/// True when `python3 -c "import tifffile, numpy"` works; otherwise prints why tests skip.
func tifffileAvailable() -> Bool {
    (try? python("import tifffile, numpy")) != nil
}

/// Runs a Python script, returning stdout; throws with stderr when it fails.

/// A little-endian classic TIFF with one IFD built byte by byte: `entries` are
/// (tag, type, count, value) with SHORT (3) or LONG (4) values stored inline, `extra` bytes
/// follow the IFD (at offset `8 + ifdSize`), then `pixels`.
func handBuiltTIFF(entries: [(Int, Int, Int, Int)], extra: [UInt8] = [], pixels: Data = Data()) -> Data {
    var d = Data()
    func u16(_ v: Int) { d.append(contentsOf: [UInt8(v & 255), UInt8((v >> 8) & 255)]) }
    func u32(_ v: Int) { u16(v & 0xFFFF); u16((v >> 16) & 0xFFFF) }
    d.append(contentsOf: [0x49, 0x49, 42, 0]); u32(8)
    u16(entries.count)
    for (tag, type, count, value) in entries.sorted(by: { $0.0 < $1.0 }) {
        u16(tag); u16(type); u32(count)
        if type == 3 && count == 1 { u16(value); u16(0) } else { u32(value) }
    }
    u32(0)
    d.append(contentsOf: extra)
    d.append(pixels)
    return d
}

/// Size of the IFD of `handBuiltTIFF` with `n` entries.
func handBuiltIFDSize(_ n: Int) -> Int { 2 + n * 12 + 4 }
