import Foundation

/// The JSON description tifffile writes for non-ImageJ, non-OME files:
/// `{"shape": [2, 3, 5, 7], "axes": "CZYX"}` (the axes only when the writer gave them).
struct ShapedMetadata: Equatable {
    /// Leading (non-YX) axes and sizes, slowest first.
    var dims: [(Character, Int)]

    static func == (a: ShapedMetadata, b: ShapedMetadata) -> Bool {
        a.dims.map(\.0) == b.dims.map(\.0) && a.dims.map(\.1) == b.dims.map(\.1)
    }

    /// Parses the description; nil unless it is such JSON with axes Lucid knows (TCZYX).
    init?(description: String) {
        guard description.hasPrefix("{"),
              let json = try? JSONSerialization.jsonObject(with: Data(description.utf8)) as? [String: Any],
              let shape = json["shape"] as? [Int], let axes = (json["axes"] as? String)?.uppercased(),
              axes.count == shape.count, axes.hasSuffix("YX"),
              (try? Image.validate(axes: axes)) != nil else { return nil }
        dims = zip(axes.dropLast(2), shape.dropLast(2)).map { ($0, $1) }
    }
}
