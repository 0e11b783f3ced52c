import CTIFF
import Foundation
import LucidCore

extension Image {
    /// Reads a TIFF file (striped or tiled, any libtiff compression, classic or BigTIFF).
    ///
    /// Pixels of 8/16/32-bit integer and 32/64-bit float types are converted to Float32.
    /// ImageJ hyperstack metadata gives the axes (in TCZYX order), pixel size and Z spacing;
    /// without it a multi-page file reads as `ZYX` (`YX` for one page), and multi-sample pages
    /// (RGB) give a `C` axis. Corrupt or truncated files throw `ImagingError` naming the file.
    /// An OME-Zarr folder reads its full-resolution level (see `OMEZarr`).
    public static func read(_ path: String) throws -> Image {
        if OMEZarr.isGroup(path) { return try OMEZarr.open(path).read() }
        return try TIFFReader(path: path).read()
    }
}

/// Element types Lucid decodes.
enum SampleKind {
    case u8, i8, u16, i16, u32, i32, f32, f64

    init?(bits: Int, format: Int) {
        switch (bits, format) {
        case (8, 1): self = .u8
        case (8, 2): self = .i8
        case (16, 1): self = .u16
        case (16, 2): self = .i16
        case (32, 1): self = .u32
        case (32, 2): self = .i32
        case (32, 3): self = .f32
        case (64, 3): self = .f64
        default: return nil
        }
    }

    var bytes: Int {
        switch self {
        case .u8, .i8: return 1
        case .u16, .i16: return 2
        case .u32, .i32, .f32: return 4
        case .f64: return 8
        }
    }

    /// The pixel type to write such data back as.
    var pixelType: PixelType {
        switch self {
        case .u8: return .uint8
        case .u16: return .uint16
        case .i8, .i16: return .int16
        case .u32, .i32, .f32, .f64: return .float32
        }
    }

    /// Converts `count` samples `stride` elements apart at `src` (aligned, native byte order).
    func convert(_ src: UnsafeRawPointer, stride: Int, count: Int, to dst: UnsafeMutablePointer<Float>) {
        switch self {
        case .u8: SampleKind.widen(src.assumingMemoryBound(to: UInt8.self), stride, count, dst) { Float($0) }
        case .i8: SampleKind.widen(src.assumingMemoryBound(to: Int8.self), stride, count, dst) { Float($0) }
        case .u16: SampleKind.widen(src.assumingMemoryBound(to: UInt16.self), stride, count, dst) { Float($0) }
        case .i16: SampleKind.widen(src.assumingMemoryBound(to: Int16.self), stride, count, dst) { Float($0) }
        case .u32: SampleKind.widen(src.assumingMemoryBound(to: UInt32.self), stride, count, dst) { Float($0) }
        case .i32: SampleKind.widen(src.assumingMemoryBound(to: Int32.self), stride, count, dst) { Float($0) }
        case .f32:
            let p = src.assumingMemoryBound(to: Float.self)
            if stride == 1 { dst.update(from: p, count: count) } else { for i in 0..<count { dst[i] = p[i * stride] } }
        case .f64: SampleKind.widen(src.assumingMemoryBound(to: Double.self), stride, count, dst) { Float($0) }
        }
    }

    @inline(__always)
    private static func widen<T>(_ p: UnsafePointer<T>, _ stride: Int, _ count: Int, _ dst: UnsafeMutablePointer<Float>,
                                 _ f: (T) -> Float) {
        if stride == 1 {
            for i in 0..<count { dst[i] = f(p[i]) }
        } else {
            for i in 0..<count { dst[i] = f(p[i * stride]) }
        }
    }

    /// Reverses the byte order of `count` samples in place.
    func byteSwap(_ p: UnsafeMutableRawPointer, count: Int) {
        switch bytes {
        case 2: let q = p.assumingMemoryBound(to: UInt16.self); for i in 0..<count { q[i] = q[i].byteSwapped }
        case 4: let q = p.assumingMemoryBound(to: UInt32.self); for i in 0..<count { q[i] = q[i].byteSwapped }
        case 8: let q = p.assumingMemoryBound(to: UInt64.self); for i in 0..<count { q[i] = q[i].byteSwapped }
        default: break
        }
    }
}

/// Reads one TIFF file into an `Image`.
struct TIFFReader {
    let path: String

    /// Geometry and sample type of one IFD.
    struct Layout: Equatable {
        var width = 0, height = 0, samples = 1
        var bits = 8, format = 1
        var separatePlanes = false
        var tiled = false
        var reducedResolution = false

        func sameGeometry(_ o: Layout) -> Bool {
            width == o.width && height == o.height && samples == o.samples && bits == o.bits && format == o.format
        }
    }

    /// An error naming the file once (libtiff often starts its messages with the file name).
    private func fail(_ reason: String) -> ImagingError {
        .unreadable(path: path, reason: reason.replacingOccurrences(of: "\(path): ", with: ""))
    }

    func read() throws -> Image {
        let tif = try open()
        defer { TIFFClose(tif) }
        let header = try readHeader(tif)
        let (first, kind, imagej, directoryCount) = (header.first, header.kind, header.imagej, header.directoryCount)

        let (H, W, S) = (first.height, first.width, first.samples)
        let promised = directoryCount == 1 ? max(1, imagej?.images ?? 1) : directoryCount
        try checkMemory(planes: promised, samples: S, height: H, width: W)
        let pageCount: Int
        var pages: Tensor
        if let imagej, imagej.images > directoryCount, directoryCount == 1, S == 1 {
            // ImageJ writes stacks over 4 GiB as one IFD followed by contiguous raw planes.
            pages = try readContiguousImageJ(tif, layout: first, kind: kind, images: imagej.images)
            pageCount = imagej.images
        } else {
            pages = Tensor(uninitialized: [directoryCount, S, H, W])
            let base = pages.storage.base
            if try decodeInParallel(first: first, kind: kind, pages: directoryCount, into: base) {
                pageCount = directoryCount
            } else {
                var kept = 0
                var page = 0
                while true {
                    let l = page == 0 ? first : try layout(tif, page: page)
                    if !l.reducedResolution || page == 0 {
                        guard l.sameGeometry(first) else { throw geometryError(page, l, first) }
                        guard kept < directoryCount else { break }
                        try decodePage(tif, layout: l, kind: kind, page: page, into: base + kept * S * H * W)
                        kept += 1
                    }
                    page += 1
                    TIFFLibrary.resetMessages()
                    if TIFFReadDirectory(tif) != 1 {
                        if let e = TIFFLibrary.log.lastError { throw fail("page \(page): \(e)") }
                        break
                    }
                }
                pageCount = kept
                if kept < directoryCount {
                    pages = try TIFFReader.prefix(pages, pages: kept)
                }
            }
        }

        let (dims, used) = header.pageDims(pageCount: pageCount)
        if used < pageCount { pages = try TIFFReader.prefix(pages, pages: used) }
        let data = try TIFFReader.planesToCanonical(pages, dims: dims, height: H, width: W)
        let axes = String(TIFFReader.canonicalOrder.filter { a in dims.contains { $0.0 == a } }) + "YX"
        return Image(data: data, axes: axes, pixelSize: header.calibration.pixelSize,
                     zSpacing: header.calibration.zSpacing, sourceType: kind.pixelType)
    }

    /// What the first IFD and the description say about the whole file.
    struct Header {
        var first: Layout
        var kind: SampleKind
        var description: String?
        var imagej: ImageJMetadata?
        var ome: OMEMetadata?
        var calibration: (pixelSize: Double?, zSpacing: Double?)
        var directoryCount: Int

        /// Page-order dimensions (slowest first, then each page's samples as `C`; sizes > 1 only)
        /// for `pageCount` decoded pages, and how many of those pages the image uses.
        func pageDims(pageCount: Int) -> (dims: [(Character, Int)], usedPages: Int) {
            let S = first.samples
            var dims: [(Character, Int)]
            var used = pageCount
            if let imagej, imagej.channels * imagej.slices * imagej.frames == pageCount,
               S == 1 || imagej.channels == 1 {
                dims = [("T", imagej.frames), ("Z", imagej.slices), ("C", imagej.channels)]
            } else if let omeDims = ome?.pageDims(samples: S), case let n = omeDims.reduce(1, { $0 * $1.1 }),
                      n <= pageCount, S == 1 || omeDims.allSatisfy({ $0.0 != "C" || $0.1 == 1 }) {
                // Pages past the first image's planes belong to further OME series.
                used = n
                dims = omeDims
            } else if S == 1, let shaped = description.flatMap(ShapedMetadata.init(description:)),
                      shaped.dims.reduce(1, { $0 * $1.1 }) == pageCount {
                dims = shaped.dims
            } else {
                dims = [("Z", pageCount)]
            }
            dims.append(("C", S))
            return (dims.filter { $0.1 > 1 }, used)
        }

        /// Axes (TCZYX order) and shape of the image for `pageCount` pages.
        func geometry(pageCount: Int) -> (axes: String, shape: [Int]) {
            let dims = pageDims(pageCount: pageCount).dims
            let present = TIFFReader.canonicalOrder.compactMap { a in dims.first { $0.0 == a } }
            return (String(present.map(\.0)) + "YX", present.map(\.1) + [first.height, first.width])
        }
    }

    func readHeader(_ tif: OpaquePointer) throws -> Header {
        let directoryCount = max(1, Int(TIFFNumberOfDirectories(tif)))
        let first = try layout(tif, page: 0)
        guard let kind = SampleKind(bits: first.bits, format: first.format) else {
            throw ImagingError.unsupported(path: path, reason: "\(first.bits)-bit samples of format \(first.format)"
                + " (Lucid reads 8/16/32-bit integer and 32/64-bit float)")
        }
        let description = TIFFLibrary.getString(tif, TIFFTAG_IMAGEDESCRIPTION)
        let imagej = description.flatMap(ImageJMetadata.init(description:))
        let ome = imagej == nil ? description.flatMap(OMEMetadata.init(description:)) : nil
        var calibration = physicalCalibration(tif, imagej: imagej)
        if let ome {
            calibration = (ome.physicalSizeX ?? calibration.pixelSize, ome.physicalSizeZ)
        }
        return Header(first: first, kind: kind, description: description, imagej: imagej, ome: ome,
                      calibration: calibration, directoryCount: directoryCount)
    }

    /// Opens the file with libtiff, or throws naming it.
    func open() throws -> OpaquePointer {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw fail("no such file") }
        guard !isDir.boolValue else { throw fail("is a folder, not a TIFF file") }
        TIFFLibrary.resetMessages()
        guard let tif = TIFFOpen(path, "r") else {
            throw fail(TIFFLibrary.lastError(or: "not a TIFF file"))
        }
        return tif
    }

    private func geometryError(_ page: Int, _ l: Layout, _ first: Layout) -> ImagingError {
        .unsupported(path: path, reason: "page \(page) is \(l.width)x\(l.height)x\(l.samples) \(l.bits)-bit, "
            + "page 0 is \(first.width)x\(first.height)x\(first.samples) \(first.bits)-bit")
    }

    /// A page the parallel reader leaves to the sequential one (reduced-resolution pages).
    private struct NeedsSequentialRead: Error {}

    /// Decodes pages `0..<pages` with one libtiff handle per worker, each reading a contiguous
    /// range of pages (decompression dominates for compressed stacks). Returns false, having
    /// decided nothing, when the stack is small or holds reduced-resolution pages.
    private func decodeInParallel(first: Layout, kind: SampleKind, pages: Int,
                                  into base: UnsafeMutablePointer<Float>) throws -> Bool {
        let workers = min(Threads.count, pages / 2)
        guard workers > 1, !Threads.inParallelRegion else { return false }
        let planeCount = first.samples * first.height * first.width
        var errors = [Error?](repeating: nil, count: workers)
        errors.withUnsafeMutableBufferPointer { errs in
            Threads.parallelFor(workers) { w in
                let lo = pages * w / workers, hi = pages * (w + 1) / workers
                do {
                    TIFFLibrary.resetMessages()
                    guard let t = TIFFOpen(path, "r") else { throw fail(TIFFLibrary.lastError(or: "cannot reopen")) }
                    defer { TIFFClose(t) }
                    for p in lo..<hi {
                        TIFFLibrary.resetMessages()
                        let moved = p == lo ? TIFFSetDirectory(t, tdir_t(p)) : TIFFReadDirectory(t)
                        guard moved == 1 else { throw fail("page \(p): " + TIFFLibrary.lastError(or: "missing directory")) }
                        let l = try layout(t, page: p)
                        if l.reducedResolution && p > 0 { throw NeedsSequentialRead() }
                        guard l.sameGeometry(first) else { throw geometryError(p, l, first) }
                        try decodePage(t, layout: l, kind: kind, page: p, into: base + p * planeCount)
                    }
                } catch {
                    errs[w] = error
                }
            }
        }
        if errors.contains(where: { $0 is NeedsSequentialRead }) { return false }
        if let e = errors.compactMap({ $0 }).first { throw e }
        return true
    }

    /// Order of leading axes in images Lucid reads.
    static let canonicalOrder: [Character] = ["T", "C", "Z"]

    /// Reorders `[planes…, H, W]` data whose planes follow `dims` (slowest first) into TCZ order.
    static func planesToCanonical(_ pages: Tensor, dims: [(Character, Int)], height H: Int, width W: Int) throws -> Tensor {
        try planesToOrder(pages, dims: dims, order: canonicalOrder.filter { a in dims.contains { $0.0 == a } },
                          height: H, width: W)
    }

    /// Reorders `[planes…, H, W]` data whose planes follow `dims` (slowest first) into `order`
    /// (the same letters), copying whole YX planes.
    static func planesToOrder(_ pages: Tensor, dims: [(Character, Int)], order: [Character],
                              height H: Int, width W: Int) throws -> Tensor {
        let target = order.compactMap { a in dims.firstIndex { $0.0 == a } }
        let shape = target.map { dims[$0].1 } + [H, W]
        if target == Array(0..<dims.count) { return try pages.reshaped(shape) }
        let out = Tensor(uninitialized: shape)
        let plane = H * W
        let sizes = dims.map(\.1)
        var srcStride = [Int](repeating: 1, count: sizes.count)
        for i in stride(from: sizes.count - 2, through: 0, by: -1) { srcStride[i] = srcStride[i + 1] * sizes[i + 1] }
        let planes = sizes.reduce(1, *)
        let src = pages.storage.base, dst = out.storage.base
        Threads.parallelFor(planes) { t in
            var rem = t, s = 0
            for k in stride(from: target.count - 1, through: 0, by: -1) {
                let d = target[k]
                s += (rem % sizes[d]) * srcStride[d]
                rem /= sizes[d]
            }
            (dst + t * plane).update(from: src + s * plane, count: plane)
        }
        return out
    }

    static func prefix(_ pages: Tensor, pages n: Int) throws -> Tensor {
        let per = pages.count / max(pages.shape[0], 1)
        let out = Tensor(uninitialized: [n] + Array(pages.shape.dropFirst()))
        out.storage.base.update(from: pages.storage.base, count: n * per)
        return out
    }

    /// Throws (instead of failing to allocate) when the pixels as Float32 would not fit in the
    /// available memory, which is what corrupt size tags usually claim.
    private func checkMemory(planes: Int, samples: Int, height: Int, width: Int) throws {
        if let short = SystemMemory.shortfall(SystemMemory.product([4, planes, samples, height, width])) {
            throw fail("\(planes) page(s) of \(width)x\(height)x\(samples) pixels as Float32 \(short) (corrupt size tags?)")
        }
    }

    /// Geometry of the current directory.
    private func layout(_ tif: OpaquePointer, page: Int) throws -> Layout {
        var l = Layout()
        guard let w = TIFFLibrary.get(tif, TIFFTAG_IMAGEWIDTH, UInt32.self, defaulted: false),
              let h = TIFFLibrary.get(tif, TIFFTAG_IMAGELENGTH, UInt32.self, defaulted: false), w > 0, h > 0 else {
            throw fail("page \(page) has no image size")
        }
        l.width = Int(w)
        l.height = Int(h)
        l.samples = Int(TIFFLibrary.get(tif, TIFFTAG_SAMPLESPERPIXEL, UInt16.self) ?? 1)
        l.bits = Int(TIFFLibrary.get(tif, TIFFTAG_BITSPERSAMPLE, UInt16.self) ?? 1)
        l.format = Int(TIFFLibrary.get(tif, TIFFTAG_SAMPLEFORMAT, UInt16.self) ?? 1)
        if l.format == 4 { l.format = 1 }  // SAMPLEFORMAT_VOID: treat as unsigned
        l.separatePlanes = TIFFLibrary.get(tif, TIFFTAG_PLANARCONFIG, UInt16.self) == UInt16(PLANARCONFIG_SEPARATE)
        l.tiled = TIFFIsTiled(tif) != 0
        let subfile = TIFFLibrary.get(tif, TIFFTAG_SUBFILETYPE, UInt32.self, defaulted: false) ?? 0
        l.reducedResolution = subfile & UInt32(FILETYPE_REDUCEDIMAGE) != 0
        if let photometric = TIFFLibrary.get(tif, TIFFTAG_PHOTOMETRIC, UInt16.self, defaulted: false),
           photometric == UInt16(PHOTOMETRIC_YCBCR) {
            throw ImagingError.unsupported(path: path, reason: "page \(page) stores YCbCr (JPEG) colour")
        }
        guard l.samples >= 1 else { throw fail("page \(page) has no samples per pixel") }
        return l
    }

    /// Decodes the current directory into `dest` as `[samples, H, W]` Float32.
    private func decodePage(_ tif: OpaquePointer, layout l: Layout, kind: SampleKind, page: Int,
                            into dest: UnsafeMutablePointer<Float>) throws {
        let (H, W, S) = (l.height, l.width, l.samples)
        let plane = H * W
        let bps = kind.bytes
        let contigSamples = l.separatePlanes ? 1 : S
        let sampleLoops = l.separatePlanes ? S : 1
        if l.tiled {
            let tw = Int(TIFFLibrary.get(tif, TIFFTAG_TILEWIDTH, UInt32.self, defaulted: false) ?? 0)
            let th = Int(TIFFLibrary.get(tif, TIFFTAG_TILELENGTH, UInt32.self, defaulted: false) ?? 0)
            let tileBytes = Int(TIFFTileSize(tif))
            guard tw > 0, th > 0, tw <= 1 << 20, th <= 1 << 20, tileBytes <= 1 << 33,
                  tileBytes >= tw * th * contigSamples * bps else {
                throw fail("page \(page): \(TIFFLibrary.lastError(or: "invalid tile size \(tw)x\(th)"))")
            }
            if let short = SystemMemory.shortfall(tileBytes) {
                throw fail("page \(page): a tile of \(tw)x\(th) pixels \(short) (corrupt tile size tags?)")
            }
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: tileBytes, alignment: 64)
            defer { buffer.deallocate() }
            for s in 0..<sampleLoops {
                for ty in stride(from: 0, to: H, by: th) {
                    for tx in stride(from: 0, to: W, by: tw) {
                        let index = TIFFComputeTile(tif, UInt32(tx), UInt32(ty), 0, UInt16(s))
                        TIFFLibrary.resetMessages()
                        let n = TIFFReadEncodedTile(tif, index, buffer, tmsize_t(tileBytes))
                        guard n >= 0 else {
                            throw fail("page \(page), tile \(index): \(TIFFLibrary.lastError(or: "decoding failed"))")
                        }
                        let rows = min(th, H - ty), cols = min(tw, W - tx)
                        for r in 0..<rows {
                            let src = buffer + r * tw * contigSamples * bps
                            for c in 0..<contigSamples {
                                kind.convert(src + c * bps, stride: contigSamples, count: cols,
                                             to: dest + (s + c) * plane + (ty + r) * W + tx)
                            }
                        }
                    }
                }
            }
        } else {
            let rowsPerStrip = min(H, Int(TIFFLibrary.get(tif, TIFFTAG_ROWSPERSTRIP, UInt32.self) ?? UInt32(H)))
            let stripBytes = Int(TIFFStripSize(tif))
            guard rowsPerStrip > 0, stripBytes >= rowsPerStrip * W * contigSamples * bps else {
                throw fail("page \(page): \(TIFFLibrary.lastError(or: "invalid strip size"))")
            }
            let stripsPerPlane = (H + rowsPerStrip - 1) / rowsPerStrip
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: stripBytes, alignment: 64)
            defer { buffer.deallocate() }
            for s in 0..<sampleLoops {
                for k in 0..<stripsPerPlane {
                    let strip = UInt32(s * stripsPerPlane + k)
                    let rows = min(rowsPerStrip, H - k * rowsPerStrip)
                    let expected = rows * W * contigSamples * bps
                    TIFFLibrary.resetMessages()
                    let n = TIFFReadEncodedStrip(tif, strip, buffer, tmsize_t(stripBytes))
                    guard n >= tmsize_t(expected) else {
                        let why = n < 0 ? "decoding failed" : "strip holds \(n) of \(expected) bytes"
                        throw fail("page \(page), strip \(strip): \(TIFFLibrary.lastError(or: why))")
                    }
                    for r in 0..<rows {
                        let src = buffer + r * W * contigSamples * bps
                        for c in 0..<contigSamples {
                            kind.convert(src + c * bps, stride: contigSamples, count: W,
                                         to: dest + (s + c) * plane + (k * rowsPerStrip + r) * W)
                        }
                    }
                }
            }
        }
    }

    /// Reads `images` uncompressed planes stored back to back from the first strip's offset.
    private func readContiguousImageJ(_ tif: OpaquePointer, layout l: Layout, kind: SampleKind,
                                      images: Int) throws -> Tensor {
        guard !l.tiled, TIFFLibrary.get(tif, TIFFTAG_COMPRESSION, UInt16.self) == UInt16(COMPRESSION_NONE) else {
            throw fail("ImageJ header promises \(images) images but the file has one compressed page")
        }
        var offsets: UnsafeMutablePointer<UInt64>?
        let ok = withUnsafeMutablePointer(to: &offsets) { p in
            withVaList([p]) { TIFFVGetField(tif, UInt32(TIFFTAG_STRIPOFFSETS), $0) }
        }
        guard ok == 1, let offsets else { throw fail("page 0 has no strip offsets") }
        let start = offsets[0]
        let planeBytes = l.height * l.width * kind.bytes
        guard let handle = FileHandle(forReadingAtPath: path) else { throw fail("cannot open file") }
        defer { try? handle.close() }
        let fileSize = try handle.seekToEnd()
        guard fileSize >= start + UInt64(planeBytes * images) else {
            throw fail("truncated: ImageJ header promises \(images) images of \(planeBytes) bytes from offset \(start)")
        }
        try handle.seek(toOffset: start)
        let out = Tensor(uninitialized: [images, 1, l.height, l.width])
        let swapped = TIFFIsByteSwapped(tif) != 0
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: planeBytes, alignment: 64)
        defer { buffer.deallocate() }
        let plane = l.height * l.width
        for i in 0..<images {
            guard let chunk = try handle.read(upToCount: planeBytes), chunk.count == planeBytes else {
                throw fail("truncated in ImageJ plane \(i)")
            }
            chunk.copyBytes(to: buffer.assumingMemoryBound(to: UInt8.self), count: planeBytes)
            if swapped { kind.byteSwap(buffer, count: plane) }
            kind.convert(buffer, stride: 1, count: plane, to: out.storage.base + i * plane)
        }
        return out
    }

    /// Pixel size and Z spacing in µm from XResolution/ResolutionUnit and the ImageJ description.
    private func physicalCalibration(_ tif: OpaquePointer, imagej: ImageJMetadata?) -> (pixelSize: Double?, zSpacing: Double?) {
        let unit = Int(TIFFLibrary.get(tif, TIFFTAG_RESOLUTIONUNIT, UInt16.self) ?? UInt16(RESUNIT_INCH))
        let ijMicrons = ImageJMetadata.micronsPerUnit(imagej?.unit)
        var pixelSize: Double?
        if let xres = TIFFLibrary.getFloat(tif, TIFFTAG_XRESOLUTION), xres > 0, xres.isFinite {
            if unit == Int(RESUNIT_CENTIMETER) {
                pixelSize = 1e4 / Double(xres)
            } else if unit == Int(RESUNIT_NONE) || imagej != nil, let m = ijMicrons {
                pixelSize = m / Double(xres)
            }
        }
        var zSpacing: Double?
        if let spacing = imagej?.spacing {
            if imagej?.unit == nil { zSpacing = spacing } else if let m = ijMicrons { zSpacing = spacing * m }
        }
        return (pixelSize.map(TIFFReader.tidy), zSpacing)
    }

    /// Rounds to 7 significant digits: libtiff keeps XResolution as a Float, so 1/x carries noise
    /// in the 8th digit (0.65 µm would read as 0.64999998).
    static func tidy(_ v: Double) -> Double {
        guard v != 0, v.isFinite else { return v }
        let scale = pow(10, 6 - floor(log10(abs(v))))
        return (v * scale).rounded() / scale
    }
}
