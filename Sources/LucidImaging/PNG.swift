import CPNG
import Foundation
import LucidCore

/// 8-bit PNG output (gray or RGB) through libpng, for previews and comparison figures.
public enum PNG {
    /// Writes a gray image `[H, W]` with values in 0...1 (clamped; NaN → 0) as 8-bit PNG.
    public static func write(_ gray: Tensor, to path: String) throws {
        guard gray.rank == 2, gray.shape[0] > 0, gray.shape[1] > 0 else {
            throw ImagingError.invalidArgument(op: "PNG.write", detail: "gray image must be [H, W], got shape \(gray.shape)")
        }
        try writeBytes(quantize(gray), width: gray.shape[1], height: gray.shape[0], channels: 1, to: path)
    }

    /// Writes a colour image `[H, W, 3]` with values in 0...1 (clamped; NaN → 0) as 8-bit RGB PNG.
    public static func writeRGB(_ rgb: Tensor, to path: String) throws {
        guard rgb.rank == 3, rgb.shape[2] == 3, rgb.shape[0] > 0, rgb.shape[1] > 0 else {
            throw ImagingError.invalidArgument(op: "PNG.writeRGB", detail: "RGB image must be [H, W, 3], got shape \(rgb.shape)")
        }
        try writeBytes(quantize(rgb), width: rgb.shape[1], height: rgb.shape[0], channels: 3, to: path)
    }

    /// Writes 8-bit samples (`channels` 1 = gray, 3 = RGB, row-major, interleaved) atomically.
    public static func writeBytes(_ bytes: [UInt8], width: Int, height: Int, channels: Int, to path: String) throws {
        guard channels == 1 || channels == 3, width > 0, height > 0, bytes.count == width * height * channels else {
            throw ImagingError.invalidArgument(op: "PNG.writeBytes",
                detail: "\(bytes.count) bytes for \(width)x\(height) with \(channels) channels (1 or 3)")
        }
        // The simplified libpng API reports errors in `message` (no setjmp needed).
        let image = UnsafeMutablePointer<png_image>.allocate(capacity: 1)
        defer { image.deallocate() }
        UnsafeMutableRawPointer(image).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<png_image>.size)
        image.pointee.version = png_uint_32(PNG_IMAGE_VERSION)
        image.pointee.width = png_uint_32(width)
        image.pointee.height = png_uint_32(height)
        image.pointee.format = channels == 1 ? 0 : 2  // PNG_FORMAT_GRAY, PNG_FORMAT_RGB (= PNG_FORMAT_FLAG_COLOR)
        let url = URL(fileURLWithPath: path)
        let temp = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).lucid-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tmp").path
        let ok = bytes.withUnsafeBufferPointer { p in
            png_image_write_to_file(image, temp, 0, p.baseAddress, 0, nil)
        }
        guard ok != 0 else {
            let message = withUnsafeBytes(of: &image.pointee.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            png_image_free(image)
            unlink(temp)
            throw ImagingError.unwritable(path: path, reason: message.isEmpty ? "libpng failed" : ImagingError.oneLine(message))
        }
        guard rename(temp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temp)
            throw ImagingError.unwritable(path: path, reason: reason)
        }
    }

    /// The PNG file bytes of a gray image `[H, W]` with values in 0...1 (clamped; NaN → 0), for
    /// embedding (HTML data URLs, archives).
    public static func encode(_ gray: Tensor) throws -> Data {
        guard gray.rank == 2, gray.shape[0] > 0, gray.shape[1] > 0 else {
            throw ImagingError.invalidArgument(op: "PNG.encode", detail: "gray image must be [H, W], got shape \(gray.shape)")
        }
        let image = UnsafeMutablePointer<png_image>.allocate(capacity: 1)
        defer { image.deallocate() }
        UnsafeMutableRawPointer(image).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<png_image>.size)
        image.pointee.version = png_uint_32(PNG_IMAGE_VERSION)
        image.pointee.width = png_uint_32(gray.shape[1])
        image.pointee.height = png_uint_32(gray.shape[0])
        image.pointee.format = 0  // PNG_FORMAT_GRAY
        let bytes = quantize(gray)
        var size = 0
        // The first call measures, the second writes.
        var ok = bytes.withUnsafeBufferPointer { png_image_write_to_memory(image, nil, &size, 0, $0.baseAddress, 0, nil) }
        var out = Data(count: size)
        if ok != 0 {
            ok = out.withUnsafeMutableBytes { dst in
                bytes.withUnsafeBufferPointer { png_image_write_to_memory(image, dst.baseAddress, &size, 0, $0.baseAddress, 0, nil) }
            }
        }
        guard ok != 0 else {
            let message = withUnsafeBytes(of: &image.pointee.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            png_image_free(image)
            throw ImagingError.invalidArgument(op: "PNG.encode", detail: message.isEmpty ? "libpng failed" : ImagingError.oneLine(message))
        }
        out.count = size
        return out
    }

    /// Reads a PNG file as RGB `[H, W, 3]` with values in 0...1 (gray and palette images are
    /// expanded, alpha is composited on black); throws naming the file.
    public static func readRGB(_ path: String) throws -> Tensor {
        let image = UnsafeMutablePointer<png_image>.allocate(capacity: 1)
        defer { image.deallocate() }
        UnsafeMutableRawPointer(image).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<png_image>.size)
        image.pointee.version = png_uint_32(PNG_IMAGE_VERSION)
        func fail() -> ImagingError {
            let message = withUnsafeBytes(of: &image.pointee.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            png_image_free(image)
            return ImagingError.unreadable(path: path, reason: message.isEmpty ? "libpng failed" : ImagingError.oneLine(message))
        }
        guard png_image_begin_read_from_file(image, path) != 0 else { throw fail() }
        image.pointee.format = 2  // PNG_FORMAT_RGB
        let (w, h) = (Int(image.pointee.width), Int(image.pointee.height))
        var bytes = [UInt8](repeating: 0, count: w * h * 3)
        guard bytes.withUnsafeMutableBufferPointer({ png_image_finish_read(image, nil, $0.baseAddress, 0, nil) }) != 0 else { throw fail() }
        return try Tensor(shape: [h, w, 3], scalars: bytes.map { Float($0) / 255 })
    }

    /// 0...1 floats to 0...255 bytes.
    static func quantize(_ t: Tensor) -> [UInt8] {
        t.withUnsafeBufferPointer { p in
            p.map { v in v.isNaN ? 0 : UInt8(min(max(v, 0), 1) * 255 + 0.5) }
        }
    }

    /// Places `[H, W]` images side by side, `gap` pixels apart on a `background` (0...1) canvas,
    /// each mapped to 0...1 by its own `low`/`high` display percentiles (values outside clamp).
    /// Images of different heights are aligned at the top.
    public static func montage(_ images: [Tensor], gap: Int = 4, low: Double = 1, high: Double = 99.8,
                               background: Float = 1) throws -> Tensor {
        guard !images.isEmpty, gap >= 0 else {
            throw ImagingError.invalidArgument(op: "PNG.montage", detail: "\(images.count) images with gap \(gap)")
        }
        for (i, img) in images.enumerated() where img.rank != 2 || img.count == 0 {
            throw ImagingError.invalidArgument(op: "PNG.montage", detail: "image \(i) must be [H, W], got shape \(img.shape)")
        }
        let height = images.map { $0.shape[0] }.max()!
        let width = images.map { $0.shape[1] }.reduce(0, +) + gap * (images.count - 1)
        var canvas = Tensor(shape: [height, width], repeating: background)
        var x0 = 0
        for img in images {
            let (h, w) = (img.shape[0], img.shape[1])
            let p = try percentiles(img, [low, high])
            let scaled = Normalization(method: .percentile, low: low, high: high, clip: true,
                                       offset: p[0], scale: max(p[1] - p[0], Normalization.minimumScale)).apply(img)
            canvas.withUnsafeMutableBufferPointer { c in
                scaled.withUnsafeBufferPointer { s in
                    for y in 0..<h {
                        for x in 0..<w { c[y * width + x0 + x] = s[y * w + x] }
                    }
                }
            }
            x0 += w + gap
        }
        return canvas
    }

    /// Writes `montage(images, gap:, low:, high:)` as a gray PNG: e.g. input | prediction | target.
    public static func writeComparison(_ images: [Tensor], to path: String, gap: Int = 4,
                                       low: Double = 1, high: Double = 99.8) throws {
        try write(montage(images, gap: gap, low: low, high: high), to: path)
    }
}
