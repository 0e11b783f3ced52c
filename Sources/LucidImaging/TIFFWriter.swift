import CTIFF
import Foundation
import LucidCore

/// Compression of written TIFF pages (every TIFF reader decodes these).
public enum TIFFCompression: String, Codable, Sendable, CaseIterable {
    case none, lzw, deflate, packbits

    var tag: Int32 {
        switch self {
        case .none: return COMPRESSION_NONE
        case .lzw: return COMPRESSION_LZW
        case .deflate: return COMPRESSION_ADOBE_DEFLATE
        case .packbits: return COMPRESSION_PACKBITS
        }
    }
}

/// How `Image.write(to:as:options:)` lays out the file.
public struct TIFFWriteOptions: Sendable, Equatable {
    /// Page compression (default none: fastest, and what ImageJ reads best).
    public var compression: TIFFCompression
    /// BigTIFF on request; `nil` picks BigTIFF only when the data would exceed 4 GiB.
    public var bigTIFF: Bool?
    /// Tile edge (a positive multiple of 16) to write tiled pages; `nil` writes strips.
    /// ImageJ itself reads only striped files (Fiji's Bio-Formats and tifffile read tiles).
    public var tileSize: Int?

    public init(compression: TIFFCompression = .none, bigTIFF: Bool? = nil, tileSize: Int? = nil) {
        self.compression = compression
        self.bigTIFF = bigTIFF
        self.tileSize = tileSize
    }
}

extension Image {
    /// Writes the image as an ImageJ-compatible TIFF (atomically: a temporary file in the same
    /// folder renamed over `path`). Values are rounded and clamped to integer types; NaN → 0.
    /// A path ending in `.zarr` gets an OME-Zarr image instead (see `OMEZarr.write`).
    public func write(to path: String, as type: PixelType = .float32) throws {
        if OMEZarr.isZarrPath(path) { return try OMEZarr.write(self, to: path, as: type) }
        try write(to: path, as: type, options: TIFFWriteOptions())
    }

    /// Writes the image with explicit compression, tiling and BigTIFF choices.
    ///
    /// Planes go in ImageJ order (T, Z, C with channel fastest) with an ImageJ hyperstack
    /// description (`channels`, `slices`, `frames`, `spacing`, `unit=micron`) and XResolution
    /// = 1/pixelSize, so Fiji and tifffile recover the axes and calibration.
    public func write(to path: String, as type: PixelType, options: TIFFWriteOptions) throws {
        try validate()
        if let t = options.tileSize, t <= 0 || t % 16 != 0 {
            throw ImagingError.invalidArgument(op: "Image.write", detail: "tileSize \(t) must be a positive multiple of 16")
        }
        let letters = Array(axes)
        let shape = data.shape
        let H = shape[shape.count - 2], W = shape[shape.count - 1]
        guard H > 0, W > 0 else {
            throw ImagingError.unwritable(path: path, reason: "empty image of shape \(shape)")
        }
        let planeStrides = Tensor.strides(of: Array(shape.dropLast(2)))
        func extent(_ a: Character) -> (size: Int, stride: Int) {
            guard let i = letters.firstIndex(of: a) else { return (1, 0) }
            return (shape[i], planeStrides[i])
        }
        let (t, z, c) = (extent("T"), extent("Z"), extent("C"))
        let planes = t.size * z.size * c.size

        var meta = ImageJMetadata(channels: c.size, slices: z.size, frames: t.size)
        if pixelSize != nil || zSpacing != nil { meta.unit = "micron" }
        meta.spacing = zSpacing
        if type == .float32, let r = Image.finiteRange(data) { meta.displayRange = r }

        let dataBytes = planes * H * W * type.byteCount
        let big = options.bigTIFF ?? (dataBytes + planes * 1024 + (1 << 20) >= 1 << 32)
        let url = URL(fileURLWithPath: path)
        let temp = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).lucid-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tmp").path
        TIFFLibrary.resetMessages()
        errno = 0
        guard let tif = TIFFOpen(temp, big ? "w8" : "w") else {
            let code = errno
            unlink(temp)  // libtiff creates the file before it fails to write the header
            let reason = TIFFLibrary.lastError(or: String(cString: strerror(code))).replacingOccurrences(of: "\(temp): ", with: "")
            throw ImagingError.unwritable(path: path, reason: Image.withSystemError(reason, code))
        }
        var closed = false
        defer {
            if !closed { TIFFClose(tif); unlink(temp) }
        }
        let writer = PageWriter(tif: tif, path: path, temp: temp, type: type, height: H, width: W, options: options)
        let base = data.storage.base
        var sources: [UnsafePointer<Float>] = []
        for ti in 0..<t.size {
            for zi in 0..<z.size {
                for ci in 0..<c.size {
                    sources.append(UnsafePointer(base + (ti * t.stride + zi * z.stride + ci * c.stride) * H * W))
                }
            }
        }
        // ImageJ (and tifffile for ImageJ files) expect the planes of a hyperstack stored back to
        // back. libtiff appends data before each IFD, so write every IFD first with deferred
        // strip/tile arrays, then come back to each page and append its pixels.
        for page in 0..<planes {
            try writer.setFields(description: page == 0 ? meta.text : nil, pixelSize: pixelSize,
                                 page: page, pages: planes)
            TIFFLibrary.resetMessages()
            guard TIFFDeferStrileArrayWriting(tif) == 1,
                  TIFFWriteCheck(tif, options.tileSize == nil ? 0 : 1, "Image.write") == 1,
                  TIFFWriteDirectory(tif) == 1 else {
                throw ImagingError.unwritable(path: path, reason: "page \(page): "
                    + TIFFLibrary.lastError(or: "writing the directory failed"))
            }
        }
        for page in 0..<planes {
            TIFFLibrary.resetMessages()
            let moved = page == 0 ? TIFFSetDirectory(tif, 0) : TIFFReadDirectory(tif)
            guard moved == 1 else {
                throw ImagingError.unwritable(path: path, reason: "page \(page): "
                    + TIFFLibrary.lastError(or: "returning to the directory failed"))
            }
            try writer.writePixels(sources[page], page: page)
            TIFFLibrary.resetMessages()
            guard TIFFForceStrileArrayWriting(tif) == 1 else {
                throw ImagingError.unwritable(path: path, reason: "page \(page): "
                    + TIFFLibrary.lastError(or: "writing the strip offsets failed"))
            }
        }
        closed = true
        TIFFLibrary.resetMessages()
        errno = 0
        TIFFClose(tif)
        if let e = TIFFLibrary.log.lastError {
            let code = errno
            unlink(temp)
            throw ImagingError.unwritable(path: path, reason: Image.withSystemError(e, code))
        }
        guard rename(temp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temp)
            throw ImagingError.unwritable(path: path, reason: reason)
        }
    }

    /// `message` with the cause a failed write left in `errno` (a full disk, a quota, an I/O
    /// error), which libtiff's own messages leave out.
    static func withSystemError(_ message: String, _ code: Int32) -> String {
        guard [ENOSPC, EDQUOT, EIO, EFBIG, EROFS].contains(code) else { return message }
        let cause = String(cString: strerror(code))
        return message.contains(cause) ? message : message + " (\(cause))"
    }

    /// Smallest and largest finite value (nil when there is none).
    static func finiteRange(_ t: Tensor) -> (min: Double, max: Double)? {
        var lo = Float.infinity, hi = -Float.infinity
        t.withUnsafeBufferPointer { p in
            for v in p where v.isFinite { lo = Swift.min(lo, v); hi = Swift.max(hi, v) }
        }
        return lo <= hi ? (Double(lo), Double(hi)) : nil
    }
}

/// Encodes Float32 planes into one open TIFF.
private struct PageWriter {
    let tif: OpaquePointer
    let path: String
    /// The temporary file being written (libtiff names it in messages).
    let temp: String
    let type: PixelType
    let height: Int, width: Int
    let options: TIFFWriteOptions

    private func fail(_ page: Int, _ what: String) -> ImagingError {
        .unwritable(path: path, reason: Image.withSystemError("page \(page): "
            + TIFFLibrary.lastError(or: what).replacingOccurrences(of: "\(temp): ", with: ""), errno))
    }

    func setFields(description: String?, pixelSize: Double?, page: Int, pages: Int) throws {
        let T = TIFFLibrary.self
        TIFFLibrary.resetMessages()
        var ok = T.set(tif, TIFFTAG_IMAGEWIDTH, UInt32(width))
        ok = ok && T.set(tif, TIFFTAG_IMAGELENGTH, UInt32(height))
        ok = ok && T.set(tif, TIFFTAG_BITSPERSAMPLE, Int32(type.byteCount * 8))
        ok = ok && T.set(tif, TIFFTAG_SAMPLESPERPIXEL, Int32(1))
        let format: Int32 = type == .float32 ? SAMPLEFORMAT_IEEEFP : type == .int16 ? SAMPLEFORMAT_INT : SAMPLEFORMAT_UINT
        ok = ok && T.set(tif, TIFFTAG_SAMPLEFORMAT, format)
        ok = ok && T.set(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK)
        ok = ok && T.set(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG)
        ok = ok && T.set(tif, TIFFTAG_COMPRESSION, options.compression.tag)
        if options.compression == .lzw || options.compression == .deflate, type != .float32 {
            ok = ok && T.set(tif, TIFFTAG_PREDICTOR, PREDICTOR_HORIZONTAL)
        }
        if pages > 1 {
            ok = ok && T.set(tif, TIFFTAG_SUBFILETYPE, UInt32(FILETYPE_PAGE))
            ok = ok && T.set(tif, TIFFTAG_PAGENUMBER, Int32(page), Int32(pages))
        }
        if let tile = options.tileSize {
            ok = ok && T.set(tif, TIFFTAG_TILEWIDTH, UInt32(tile))
            ok = ok && T.set(tif, TIFFTAG_TILELENGTH, UInt32(tile))
        } else {
            ok = ok && T.set(tif, TIFFTAG_ROWSPERSTRIP, UInt32(rowsPerStrip))
        }
        if let pixelSize, pixelSize > 0, pixelSize.isFinite {
            ok = ok && T.set(tif, TIFFTAG_XRESOLUTION, 1 / pixelSize)
            ok = ok && T.set(tif, TIFFTAG_YRESOLUTION, 1 / pixelSize)
            ok = ok && T.set(tif, TIFFTAG_RESOLUTIONUNIT, RESUNIT_NONE)
        }
        if let description {
            ok = ok && description.withCString { T.set(tif, TIFFTAG_IMAGEDESCRIPTION, $0) }
        }
        ok = ok && "Lucid".withCString { T.set(tif, TIFFTAG_SOFTWARE, $0) }
        guard ok else { throw fail(page, "setting TIFF tags failed") }
    }

    /// About 256 KiB per strip.
    private var rowsPerStrip: Int {
        max(1, min(height, (256 * 1024) / max(1, width * type.byteCount)))
    }

    func writePixels(_ src: UnsafePointer<Float>, page: Int) throws {
        let bps = type.byteCount
        if let tile = options.tileSize {
            let bytes = tile * tile * bps
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            defer { buffer.deallocate() }
            for ty in stride(from: 0, to: height, by: tile) {
                for tx in stride(from: 0, to: width, by: tile) {
                    buffer.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
                    let rows = min(tile, height - ty), cols = min(tile, width - tx)
                    for r in 0..<rows {
                        Image.encode(src + (ty + r) * width + tx, count: cols, as: type, into: buffer + r * tile * bps)
                    }
                    let index = TIFFComputeTile(tif, UInt32(tx), UInt32(ty), 0, 0)
                    TIFFLibrary.resetMessages()
                    guard TIFFWriteEncodedTile(tif, index, buffer, tmsize_t(bytes)) >= 0 else { throw fail(page, "writing a tile failed") }
                }
            }
        } else {
            let rps = rowsPerStrip
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: rps * width * bps, alignment: 64)
            defer { buffer.deallocate() }
            var strip: UInt32 = 0
            for y in stride(from: 0, to: height, by: rps) {
                let rows = min(rps, height - y)
                Image.encode(src + y * width, count: rows * width, as: type, into: buffer)
                TIFFLibrary.resetMessages()
                guard TIFFWriteEncodedStrip(tif, strip, buffer, tmsize_t(rows * width * bps)) >= 0 else {
                    throw fail(page, "writing a strip failed")
                }
                strip += 1
            }
        }
    }
}

extension Image {
    /// Converts Float32 to `type` (round to nearest, clamp; NaN → 0 for integer types).
    static func encode(_ src: UnsafePointer<Float>, count: Int, as type: PixelType, into dst: UnsafeMutableRawPointer) {
        switch type {
        case .uint8:
            let p = dst.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count { p[i] = UInt8(clampedRound(src[i], 0, 255)) }
        case .uint16:
            let p = dst.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { p[i] = UInt16(clampedRound(src[i], 0, 65535)) }
        case .int16:
            let p = dst.assumingMemoryBound(to: Int16.self)
            for i in 0..<count { p[i] = Int16(clampedRound(src[i], -32768, 32767)) }
        case .float32:
            dst.copyMemory(from: src, byteCount: count * 4)
        }
    }

    /// Nearest integer value in lo...hi as Int32 (NaN → 0).
    @inline(__always) private static func clampedRound(_ v: Float, _ lo: Float, _ hi: Float) -> Int32 {
        // max/min in this order map NaN to lo, so NaN needs its own test.
        v.isNaN ? 0 : Int32(Swift.min(Swift.max(v, lo), hi).rounded(.toNearestOrEven))
    }
}
