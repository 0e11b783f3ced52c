import Foundation
import LucidCore

/// Images loaded from files for patch sampling: one source per plane (2D) or volume (3D),
/// each a list of aligned `[C, spatial…]` tensors (`[input]`, or `[input, target]` for pairs).
public struct TrainingData: Sendable {
    /// Sampler sources.
    public var sources: [[Tensor]]
    /// Index into `files` of each source (pass as `groups` to split validation by file).
    public var groups: [Int]
    /// The input files read, in order.
    public var files: [String]

    /// Reads `inputs` (files, folders, glob patterns) and, when given, `targets` paired by file
    /// name; normalizes every image by its own statistics with `normalization` (CSBDeep
    /// normalizes each image by its own percentiles) and cuts it into
    /// `Image.patchLayout(spatialRank:)` pieces. Inputs and targets must have the same shape
    /// apart from channels.
    public static func load(inputs: [String], targets: [String]? = nil, spatialRank: Int,
                            normalization: Normalization = .percentile()) throws -> TrainingData {
        let inputFiles = try ImageFiles.resolve(inputs)
        var pairs: [(source: String, target: String?)] = inputFiles.map { ($0, nil) }
        if let targets {
            pairs = try ImageFiles.pairs(sources: inputFiles, targets: try ImageFiles.resolve(targets)).map { ($0.source, $0.target) }
        }
        var data = TrainingData(sources: [], groups: [], files: pairs.map(\.source))
        for (index, pair) in pairs.enumerated() {
            let input = try Image.read(pair.source)
            let x = try normalized(input, normalization).patchLayout(spatialRank: spatialRank)
            var pieces = x.map { [$0] }
            if let targetPath = pair.target {
                let target = try Image.read(targetPath)
                let y = try normalized(target, normalization).patchLayout(spatialRank: spatialRank)
                guard y.count == x.count, zip(x, y).allSatisfy({ $0.shape.dropFirst() == $1.shape.dropFirst() }) else {
                    throw ImagingError.invalidArgument(op: "TrainingData.load",
                        detail: "'\(pair.source)' (\(input.axes) \(input.data.shape)) and '\(targetPath)' (\(target.axes) \(target.data.shape)) do not align")
                }
                pieces = zip(x, y).map { [$0, $1] }
            }
            data.sources += pieces
            data.groups += Array(repeating: index, count: pieces.count)
        }
        return data
    }

    private static func normalized(_ image: Image, _ normalization: Normalization) throws -> Image {
        var out = image
        out.data = try normalization.fitted(to: image.data).apply(image.data)
        return out
    }
}
