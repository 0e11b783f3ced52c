import Foundation
import LucidCore
import LucidNN

/// How overlapping tiles cover one spatial axis of an image, and how much each tile contributes
/// where they overlap.
///
/// The image (extent `extent`) is placed in a *frame* of `frame` pixels, the extent rounded up to
/// the network's size multiple, with the `padBefore`/`padAfter` pixels filled by reflection. Tiles
/// of `tile` pixels start at multiples of the size multiple (so pooling grids line up with a
/// whole-frame pass) and are spread evenly so that neighbours overlap by at least `overlap`.
///
/// Each tile's window ignores its first `margin` pixels on every side that borders another tile
/// (where zero padding inside the network makes the tile's prediction differ from a whole-image
/// one), then rises as a raised cosine (sin²) over `overlap − 2·margin` pixels; sides on the
/// frame's border are flat. The windows are then divided by their sum at every position, so
/// blending is an exact partition of unity. With `margin` at least the network's receptive-field
/// radius, tiled prediction equals whole-frame prediction.
public struct TileAxis: Equatable, Sendable {
    /// Image extent along the axis.
    public let extent: Int
    /// Padded extent (a multiple of the size multiple, at least `extent`).
    public let frame: Int
    /// Reflected pixels before the image in the frame.
    public let padBefore: Int
    /// Tile extent actually used (≤ the requested tile, a multiple of the size multiple).
    public let tile: Int
    /// Tile starts in frame coordinates.
    public let starts: [Int]
    /// Blending weight of each tile position, per tile (`tile` values; they sum to 1 over the
    /// tiles covering any frame position).
    public let weights: [[Float]]

    /// Lays out tiles of at most `tile` pixels overlapping by at least `overlap` on an axis of
    /// `extent` pixels; `tile` and `overlap` are rounded up to `multiple`; `margin` is clamped to
    /// `overlap / 2`.
    public init(extent: Int, tile requestedTile: Int, overlap requestedOverlap: Int, multiple: Int, margin requestedMargin: Int) throws {
        func bad(_ s: String) -> TensorError { TensorError.invalidArgument(op: "TileAxis", detail: s) }
        guard extent > 0 else { throw bad("extent \(extent) must be positive") }
        guard multiple > 0 else { throw bad("size multiple \(multiple) must be positive") }
        guard requestedTile > 0, requestedOverlap >= 0, requestedMargin >= 0 else {
            throw bad("tile \(requestedTile) must be positive, overlap \(requestedOverlap) and margin \(requestedMargin) not negative")
        }
        func roundUp(_ v: Int) -> Int { (v + multiple - 1) / multiple * multiple }
        let maxTile = roundUp(requestedTile)
        let overlap = roundUp(requestedOverlap)
        let frame = roundUp(extent)
        self.extent = extent
        self.frame = frame
        padBefore = (frame - extent) / 2

        var starts: [Int]
        let tile: Int
        if frame <= maxTile {
            tile = frame
            starts = [0]
        } else {
            guard overlap < maxTile else {
                throw bad("overlap \(overlap) must be smaller than the tile \(maxTile) (both rounded to multiples of \(multiple))")
            }
            let count = (frame - overlap + (maxTile - overlap) - 1) / (maxTile - overlap)
            let even = (frame + (count - 1) * overlap + count - 1) / count
            tile = min(frame, roundUp(even))
            let span = (frame - tile) / multiple
            starts = (0..<count).map { k in multiple * (k * span / max(1, count - 1)) }
            starts = Array(Set(starts)).sorted()
        }
        self.tile = tile
        self.starts = starts

        let margin = min(requestedMargin, overlap / 2)
        let ramp = overlap - 2 * margin
        func side(_ d: Int) -> Float {
            if d < margin { return 0 }
            let t = d - margin
            guard t < ramp else { return 1 }
            let s = sin(Double.pi / 2 * (Double(t) + 0.5) / Double(ramp))
            return Float(s * s)
        }
        var raw: [[Float]] = starts.map { s in
            let left = s > 0, right = s + tile < frame
            return (0..<tile).map { t in (left ? side(t) : 1) * (right ? side(tile - 1 - t) : 1) }
        }
        var total = [Float](repeating: 0, count: frame)
        for (k, s) in starts.enumerated() { for t in 0..<tile { total[s + t] += raw[k][t] } }
        if let gap = total.firstIndex(where: { $0 <= 0 }) {
            throw bad("no tile covers frame position \(gap) (tile \(tile), overlap \(overlap), margin \(margin))")
        }
        for (k, s) in starts.enumerated() { for t in 0..<tile { raw[k][t] /= total[s + t] } }
        weights = raw
    }

    /// Reflected pixels after the image in the frame.
    public var padAfter: Int { frame - extent - padBefore }

    /// Image coordinate of frame coordinate `f`: mirrored without repeating the edge
    /// (`[a b c]` → `… c b [a b c] b a …`), any distance out.
    @inline(__always)
    public func source(_ f: Int) -> Int {
        let i = f - padBefore
        if i >= 0 && i < extent { return i }
        guard extent > 1 else { return 0 }
        let period = 2 * (extent - 1)
        var r = i % period
        if r < 0 { r += period }
        return r < extent ? r : period - r
    }

    /// Image coordinate of every position of tile `k` (reflected where the tile leaves the image).
    public func sourceIndices(tile k: Int) -> [Int] {
        (0..<tile).map { source(starts[k] + $0) }
    }

    /// The positions of tile `k` that land inside the image with a positive weight, as
    /// (tile position, image coordinate, weight).
    public func contributions(tile k: Int) -> [(position: Int, pixel: Int, weight: Float)] {
        (0..<tile).compactMap { t in
            let i = starts[k] + t - padBefore
            let w = weights[k][t]
            return i >= 0 && i < extent && w > 0 ? (t, i, w) : nil
        }
    }
}
