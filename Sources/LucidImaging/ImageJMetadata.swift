import Foundation

/// The ImageJ hyperstack description stored in a TIFF's ImageDescription tag, e.g.
/// `"ImageJ=1.11a\nimages=20\nchannels=2\nslices=10\nhyperstack=true\nunit=micron\nspacing=0.5\n"`.
///
/// ImageJ stores planes in TZCYX order (channel fastest) and the lateral pixel size as
/// XResolution in pixels per `unit`.
struct ImageJMetadata: Equatable {
    var images = 1
    var channels = 1
    var slices = 1
    var frames = 1
    /// Z step in `unit`.
    var spacing: Double?
    var unit: String?
    var displayRange: (min: Double, max: Double)?

    static func == (a: ImageJMetadata, b: ImageJMetadata) -> Bool {
        a.images == b.images && a.channels == b.channels && a.slices == b.slices
            && a.frames == b.frames && a.spacing == b.spacing && a.unit == b.unit
            && a.displayRange?.min == b.displayRange?.min && a.displayRange?.max == b.displayRange?.max
    }

    init(channels: Int, slices: Int, frames: Int) {
        self.channels = channels
        self.slices = slices
        self.frames = frames
        self.images = channels * slices * frames
    }

    /// Parses a description; nil unless it starts with `ImageJ=`.
    init?(description: String) {
        guard description.hasPrefix("ImageJ=") else { return nil }
        var values: [String: String] = [:]
        for line in description.split(whereSeparator: \.isNewline) {
            guard let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            values[key] = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
        }
        func int(_ k: String) -> Int? { values[k].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil } }
        channels = int("channels") ?? 1
        slices = int("slices") ?? 1
        frames = int("frames") ?? 1
        images = int("images") ?? channels * slices * frames
        // Plain ImageJ stacks give only `images`: those planes are slices.
        if channels * slices * frames == 1 && images > 1 { slices = images }
        spacing = values["spacing"].flatMap { Double($0) }.flatMap { $0 > 0 && $0.isFinite ? $0 : nil }
        unit = values["unit"]
        if let lo = values["min"].flatMap({ Double($0) }), let hi = values["max"].flatMap({ Double($0) }) {
            displayRange = (lo, hi)
        }
    }

    /// Microns per `unit` (nil for unknown units such as "pixel").
    static func micronsPerUnit(_ unit: String?) -> Double? {
        guard let unit else { return nil }
        switch unit.lowercased().replacingOccurrences(of: "\\u00B5", with: "µ") {
        case "micron", "microns", "um", "µm", "μm", "micrometer", "micrometre": return 1
        case "nm", "nanometer", "nanometre": return 1e-3
        case "mm", "millimeter", "millimetre": return 1e3
        case "cm", "centimeter", "centimetre": return 1e4
        case "m", "meter", "metre": return 1e6
        default: return nil
        }
    }

    /// The description text ImageJ and tifffile understand.
    var text: String {
        var lines = ["ImageJ=1.11a", "images=\(images)"]
        if channels > 1 { lines.append("channels=\(channels)") }
        if slices > 1 { lines.append("slices=\(slices)") }
        if frames > 1 { lines.append("frames=\(frames)") }
        if [channels, slices, frames].filter({ $0 > 1 }).count > 1 { lines.append("hyperstack=true") }
        if channels > 1 { lines.append("mode=grayscale") }
        if let unit { lines.append("unit=\(unit)") }
        if let spacing { lines.append("spacing=\(spacing)") }
        if frames > 1 { lines.append("loop=false") }
        if let r = displayRange { lines.append("min=\(r.min)"); lines.append("max=\(r.max)") }
        return lines.joined(separator: "\n") + "\n"
    }
}
