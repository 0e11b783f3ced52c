import Foundation
import LucidCore

extension Image {
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
        let canonical = try transposed(to: String(TIFFReader.canonicalOrder.filter(axes.contains)) + "YX")
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
