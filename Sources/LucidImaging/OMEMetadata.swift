import Foundation

/// The image geometry and calibration of an OME-TIFF (OME-XML in the first ImageDescription):
/// the first `<Pixels>` element's sizes, `DimensionOrder` and physical sizes.
///
/// Only the single-file layout with planes in `DimensionOrder` from the first IFD is read
/// (what Bio-Formats, tifffile and most microscopes write); `TiffData` remapping is not.
struct OMEMetadata: Equatable {
    var sizeC = 1, sizeZ = 1, sizeT = 1
    /// E.g. "XYZCT": X fastest, T slowest.
    var dimensionOrder = "XYZCT"
    var physicalSizeX: Double?
    var physicalSizeZ: Double?

    init?(description: String) {
        guard description.contains("<OME"), let attributes = OMEMetadata.pixelsAttributes(description) else { return nil }
        func int(_ k: String) -> Int { attributes[k].flatMap { Int($0) }.map { Swift.max(1, $0) } ?? 1 }
        sizeC = int("SizeC")
        sizeZ = int("SizeZ")
        sizeT = int("SizeT")
        if let order = attributes["DimensionOrder"], order.count == 5, order.hasPrefix("XY"),
           Set(order) == Set("XYZCT") {
            dimensionOrder = order
        }
        func physical(_ k: String) -> Double? {
            guard let v = attributes[k].flatMap({ Double($0) }), v > 0, v.isFinite else { return nil }
            let unit = attributes[k + "Unit"].map(OMEMetadata.unescape) ?? "µm"
            return ImageJMetadata.micronsPerUnit(unit).map { v * $0 }
        }
        physicalSizeX = physical("PhysicalSizeX")
        physicalSizeZ = physical("PhysicalSizeZ")
    }

    /// Page-order dimensions, slowest first, with channels counted in planes of `samples` each.
    func pageDims(samples: Int) -> [(Character, Int)]? {
        var c = sizeC
        if samples > 1 {
            guard c % samples == 0 else { return nil }
            c /= samples
        }
        let sizes: [Character: Int] = ["C": c, "Z": sizeZ, "T": sizeT]
        return dimensionOrder.dropFirst(2).reversed().map { ($0, sizes[$0]!) }
    }

    /// Attributes of the first `<Pixels …>` (or `<ome:Pixels …>`) start tag.
    private static func pixelsAttributes(_ xml: String) -> [String: String]? {
        guard let start = xml.range(of: "<Pixels ") ?? xml.range(of: ":Pixels "),
              let end = xml[start.upperBound...].firstIndex(of: ">") else { return nil }
        let parts = xml[start.upperBound..<end].split(separator: "\"", omittingEmptySubsequences: false)
        var out: [String: String] = [:]
        var i = 0
        while i + 1 < parts.count {
            let name = parts[i].trimmingCharacters(in: .whitespacesAndNewlines)
            if name.hasSuffix("=") { out[String(name.dropLast())] = String(parts[i + 1]) }
            i += 2
        }
        return out
    }

    private static func unescape(_ s: String) -> String {
        s.replacingOccurrences(of: "&#181;", with: "µ").replacingOccurrences(of: "&#xB5;", with: "µ")
            .replacingOccurrences(of: "&#956;", with: "µ").replacingOccurrences(of: "&amp;", with: "&")
    }
}
