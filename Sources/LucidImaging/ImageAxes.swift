import Foundation
import LucidCore

extension Image {
    /// `axes` reordered as TIFF (ImageJ) and OME-Zarr order them: T, C, Z, then YX.
    public static func canonicalAxes(_ axes: String) -> String {
        String(TIFFReader.canonicalOrder.filter(axes.contains)) + "YX"
    }

    /// The same pixels with the leading axes reordered to `axes` (a permutation of the image's
    /// letters that still ends in `YX`), e.g. `"ZCYX"` → `"CZYX"`.
    public func transposed(to axes: String) throws -> Image {
        try validate()
        try Image.validate(axes: axes, rank: data.rank)
        guard Set(axes) == Set(self.axes) else {
            throw ImagingError.invalidAxes(axes: axes, reason: "not a reordering of the image's axes '\(self.axes)'")
        }
        if axes == self.axes { return self }
        let dims = self.axes.dropLast(2).enumerated().map { ($0.element, data.shape[$0.offset]) }
        let order = Array(axes.dropLast(2))
        let (H, W) = (size("Y"), size("X"))
        var out = self
        out.data = try TIFFReader.planesToOrder(data, dims: dims, order: order, height: H, width: W)
        out.axes = axes
        return out
    }

    /// The channels `channels` of the image, in that order: a `C` axis of that size when there are
    /// several, no `C` axis for one. An image without a `C` axis has the one channel 0. Throws
    /// naming the first channel the image does not have.
    public func selectingChannels(_ channels: [Int]) throws -> Image {
        let count = size("C")
        guard !channels.isEmpty else {
            throw ImagingError.invalidArgument(op: "selectingChannels", detail: "no channel chosen")
        }
        if let bad = channels.first(where: { $0 < 0 || $0 >= count }) {
            throw ImagingError.invalidArgument(op: "selectingChannels",
                detail: "channel \(bad) is out of range: the image has \(count) channel\(count == 1 ? "" : "s") (axes \(axes))")
        }
        guard let axis = axisIndex("C") else { return self }
        var out = self
        out.data = try Tensor.concat(channels.map { try data.slice(axis: axis, range: $0..<($0 + 1)) }, axis: axis)
        if channels.count == 1 {
            var shape = out.data.shape
            shape.remove(at: axis)
            out.data = try out.data.reshaped(shape)
            out.axes = axes.replacingOccurrences(of: "C", with: "")
        }
        return out
    }

    /// How `previewPlane` turns a stack into one plane.
    public enum Projection: String, Codable, Sendable {
        /// The middle Z plane.
        case middle
        /// The maximum over Z.
        case max
    }

    /// One `[Y, X]` plane for previews: the first time point and channel, and the middle Z plane
    /// or the maximum over Z.
    public func previewPlane(_ projection: Projection = .middle) throws -> Tensor {
        let canonical = try transposed(to: Image.canonicalAxes(axes))
        let (Z, H, W) = (size("Z"), size("Y"), size("X"))
        let plane = H * W
        // In TCZYX order the first T and C start the data; Z planes follow each other.
        let src = canonical.data.storage.base
        let out = Tensor(uninitialized: [H, W])
        let dst = out.storage.base
        switch projection {
        case .middle:
            dst.update(from: src + (Z / 2) * plane, count: plane)
        case .max:
            dst.update(from: src, count: plane)
            for z in 1..<Swift.max(Z, 1) {
                let p = src + z * plane
                for i in 0..<plane { dst[i] = Swift.max(dst[i], p[i]) }
            }
        }
        return out
    }
}
