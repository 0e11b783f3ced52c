import CTIFF
import Foundation

/// What a TIFF holds, read from its first IFD and description without decoding pixels.
public struct ImageInfo: Sendable, Equatable {
    /// Axes `Image.read` gives (TCZYX order).
    public var axes: String
    /// Shape `Image.read` gives (unless reduced-resolution pages are interleaved, which
    /// `read` skips and `info` counts).
    public var shape: [Int]
    /// Lateral pixel size in µm, if known.
    public var pixelSize: Double?
    /// Z step in µm, if known.
    public var zSpacing: Double?
    /// The pixel type `read` reports as `sourceType`.
    public var sourceType: PixelType
    /// Bits per sample in the file (8, 16, 32 or 64).
    public var bitsPerSample: Int
    /// Compression of the first page: "none", "lzw", "deflate", "packbits", "jpeg", "zstd", … or "code N".
    public var compression: String
    /// True for tiled pages, false for strips.
    public var tiled: Bool
    /// True for BigTIFF files.
    public var bigTIFF: Bool
    /// Number of IFDs (pages) in the main chain.
    public var pages: Int
}

extension Image {
    /// Describes a TIFF without reading its pixels (throws like `read` for unreadable files).
    public static func info(_ path: String) throws -> ImageInfo {
        let reader = TIFFReader(path: path)
        let tif = try reader.open()
        defer { TIFFClose(tif) }
        let header = try reader.readHeader(tif)
        let contiguousImageJ = header.directoryCount == 1 && (header.imagej?.images ?? 1) > 1 && header.first.samples == 1
        let pages = contiguousImageJ ? header.imagej!.images : header.directoryCount
        let (axes, shape) = header.geometry(pageCount: pages)
        let code = Int32(TIFFLibrary.get(tif, TIFFTAG_COMPRESSION, UInt16.self) ?? 1)
        let names: [Int32: String] = [COMPRESSION_NONE: "none", COMPRESSION_LZW: "lzw", COMPRESSION_ADOBE_DEFLATE: "deflate",
                                      COMPRESSION_DEFLATE: "deflate", COMPRESSION_PACKBITS: "packbits",
                                      COMPRESSION_JPEG: "jpeg", COMPRESSION_ZSTD: "zstd", COMPRESSION_LZMA: "lzma",
                                      COMPRESSION_WEBP: "webp", COMPRESSION_LERC: "lerc"]
        return ImageInfo(axes: axes, shape: shape, pixelSize: header.calibration.pixelSize,
                         zSpacing: header.calibration.zSpacing, sourceType: header.kind.pixelType,
                         bitsPerSample: header.first.bits, compression: names[code] ?? "code \(code)",
                         tiled: header.first.tiled, bigTIFF: TIFFIsBigTIFF(tif) != 0, pages: header.directoryCount)
    }
}
