import Foundation
import LucidCore

/// Storage type of pixels in a file.
public enum PixelType: String, Codable, Sendable, CaseIterable {
    case uint8, uint16, int16, float32

    /// Bytes per sample.
    public var byteCount: Int {
        switch self {
        case .uint8: return 1
        case .uint16, .int16: return 2
        case .float32: return 4
        }
    }

    /// Smallest and largest representable value (`nil` for float).
    public var range: ClosedRange<Float>? {
        switch self {
        case .uint8: return 0...255
        case .uint16: return 0...65535
        case .int16: return -32768...32767
        case .float32: return nil
        }
    }
}

/// A microscopy image: Float32 pixels with named axes and physical calibration.
///
/// `data.shape` follows `axes`: `"ZYX"` → `[Z, Y, X]`, `"CZYX"` → `[C, Z, Y, X]`.
/// Axes are letters from `T` (time), `C` (channel), `Z`, `Y`, `X`, each at most once, ending in `YX`.
/// ```swift
/// let img = try Image.read("stack.tif")      // e.g. axes "ZYX"
/// try img.write(to: "out.tif", as: .uint16)
/// ```
public struct Image: Sendable {
    /// The pixels, shaped as `axes` says.
    public var data: Tensor
    /// Axis letters, one per dimension of `data`.
    public var axes: String
    /// Lateral pixel size in µm (X and Y), if known.
    public var pixelSize: Double?
    /// Distance between Z planes in µm, if known.
    public var zSpacing: Double?
    /// The pixel type the data was read from (or should be written back as).
    public var sourceType: PixelType

    /// An image over `data` (no validation here: `validate()`, `read` and `write` check axes).
    public init(data: Tensor, axes: String, pixelSize: Double? = nil, zSpacing: Double? = nil,
                sourceType: PixelType = .float32) {
        self.data = data
        self.axes = axes
        self.pixelSize = pixelSize
        self.zSpacing = zSpacing
        self.sourceType = sourceType
    }

    /// The letters an axes string may use.
    public static let axisLetters: Set<Character> = ["T", "C", "Z", "Y", "X"]

    /// Checks that `axes` is well formed (letters from TCZYX, no repeats, ending in YX)
    /// and, when `rank` is given, has one letter per dimension.
    public static func validate(axes: String, rank: Int? = nil) throws {
        let letters = Array(axes)
        for ch in letters where !axisLetters.contains(ch) {
            throw ImagingError.invalidAxes(axes: axes, reason: "unknown axis '\(ch)' (allowed: T, C, Z, Y, X)")
        }
        guard Set(letters).count == letters.count else {
            throw ImagingError.invalidAxes(axes: axes, reason: "an axis appears twice")
        }
        guard axes.hasSuffix("YX") else {
            throw ImagingError.invalidAxes(axes: axes, reason: "axes must end with 'YX'")
        }
        if let rank, rank != letters.count {
            throw ImagingError.invalidAxes(axes: axes, reason: "\(letters.count) axes for data of rank \(rank)")
        }
    }

    /// Throws unless `axes` is valid and matches `data.shape`.
    public func validate() throws {
        try Image.validate(axes: axes, rank: data.rank)
    }

    /// Position of `axis` in `axes` (and `data.shape`), or `nil`.
    public func axisIndex(_ axis: Character) -> Int? {
        axes.firstIndex(of: axis).map { axes.distance(from: axes.startIndex, to: $0) }
    }

    /// Extent along `axis` (1 when the image has no such axis).
    public func size(_ axis: Character) -> Int {
        axisIndex(axis).map { data.shape[$0] } ?? 1
    }
}
