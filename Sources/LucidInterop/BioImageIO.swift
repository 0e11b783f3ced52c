import Foundation
import LucidCore
import LucidImaging
import LucidNN
import LucidRestore
import Yams

/// What a bioimage.io package says about its model besides what the checkpoint knows.
public struct BioImageIOOptions: Sendable {
    /// Display name (default: "Lucid <method> model").
    public var name: String?
    /// One-paragraph description (default: generated from the method and data).
    public var description: String?
    /// Authors as (name, affiliation).
    public var authors: [(name: String, affiliation: String?)]
    /// Citations as (text, DOI or URL); the method's paper is added when none is given.
    public var citations: [(text: String, link: String?)]
    /// SPDX licence identifier.
    public var license: String
    /// Extra tags.
    public var tags: [String]
    /// Image the test tensors are cut from (default: the checkpoint's first training image).
    public var testImage: String?

    public init(name: String? = nil, description: String? = nil, authors: [(name: String, affiliation: String?)] = [],
                citations: [(text: String, link: String?)] = [], license: String = "CC-BY-4.0", tags: [String] = [],
                testImage: String? = nil) {
        self.name = name
        self.description = description
        self.authors = authors
        self.citations = citations
        self.license = license
        self.tags = tags
        self.testImage = testImage
    }
}

/// What `BioImageIOExport.write` put in the package.
public struct BioImageIOPackage: Sendable {
    /// Entry names of the ZIP archive.
    public var files: [String]
    /// The rdf.yaml text.
    public var rdf: String
    /// Shape of the test input `[1, C, (Z,) Y, X]`.
    public var testInputShape: [Int]
    /// Border (pixels) that consumers should crop from outputs: the receptive radius.
    public var halo: Int
    /// Smallest spatial input extent the package declares.
    public var minimumSize: Int
}

/// Writes a bioimage.io model package (resource description format 0.5) for a checkpoint: a ZIP
/// with `rdf.yaml`, the ONNX weights, test input and output tensors (`.npy`, with SHA-256), a
/// cover image (input | prediction of the test tensor) and a README.
///
/// Input axes are batch, channel, (z,) y, x with sizes `min + k·2^depth`; output spatial axes
/// refer to the input's and carry the receptive radius as halo. The checkpoint's normalization
/// becomes preprocessing (`scale_range` for percentiles and `zero_mean_unit_variance` for
/// per-image z-scores, both per sample; `fixed_zero_mean_unit_variance` for mean/std of the
/// training data) and, where it is a fixed map, postprocessing (`scale_linear` back to
/// intensities). The inverse of a normalization refitted to each image has no bioimage.io
/// form: such packages give outputs in the input's normalized units (the README says so).
public enum BioImageIOExport {
    /// The resource description format written.
    public static let formatVersion = "0.5.4"

    /// Builds the package and writes it to `path` (atomically).
    @discardableResult
    public static func write(_ export: ModelExport, options: BioImageIOOptions, to path: String) throws -> BioImageIOPackage {
        let meta = export.metadata
        let config = export.net.config
        let m = export.net.sizeMultiple, halo = config.receptiveRadius
        let minimum = (2 * halo + 1 + m - 1) / m * m
        let spatialNames = config.dims == 3 ? ["z", "y", "x"] : ["y", "x"]

        // Test tensors: a centred crop of the test image, at the model's pixel size and channels.
        let (input, pixelSize, zSpacing) = try testInput(export, options: options, minimum: minimum)
        let restorer = try ImagePredictor(checkpoint: export.checkpoint, weights: export.weights)
        let refit = meta.normalization.perImage || meta.normalization.method == .percentile
        let fitted = refit ? try meta.normalization.fitted(to: input) : meta.normalization
        var output = try restorer.predictor.predict(fitted.apply(input))
        if let (scale, offset) = export.fixedOutputMap {
            output = output.withChannels { channel, v in v * scale + (channel < config.outChannels ? offset : 0) }
        }
        let inputNPY = NPY.encode(input), outputNPY = NPY.encode(output)
        let sampleInput = try sampleTIFF(input, dims: config.dims), sampleOutput = try sampleTIFF(output, dims: config.dims)
        let onnx = try export.onnx()
        let cover = try coverImage(input: input, output: output)
        let readme = self.readme(export, options: options, halo: halo, minimum: minimum)

        // rdf.yaml
        func sizeAxes(output: Bool) -> [YAMLTree] {
            spatialNames.map { name in
                var axis: [(String, YAMLTree)] = [("type", "space"), ("id", .text(name))]
                if output {
                    axis.append(("size", .map([("tensor_id", "input"), ("axis_id", .text(name))])))
                    axis.append(("halo", .int(halo)))
                } else {
                    axis.append(("size", .map([("min", .int(minimum)), ("step", .int(m))])))
                }
                // In whole nanometres only: validators compare halo · scale / scale with the
                // halo, which a fractional scale breaks by rounding (29 · 0.1 / 0.1 ≠ 29).
                if let s = name == "z" ? zSpacing : pixelSize, let nm = wholeNanometres(s) {
                    axis += [("unit", "nanometer"), ("scale", .number(nm))]
                }
                return .map(axis)
            }
        }
        let inChannels = (0..<config.inChannels).map { YAMLTree.text("channel\($0)") }
        let outChannels: [YAMLTree] = config.probabilistic
            ? (0..<config.outChannels).map { .text("mean\($0)") } + (0..<config.outChannels).map { .text("scale\($0)") }
            : (0..<config.outChannels).map { .text("channel\($0)") }
        let tensorAxes: [YAMLTree] = ["channel"] + spatialNames.map { .text($0) }
        let name = options.name ?? "Lucid \(meta.method) model"
        let citations = options.citations.isEmpty ? methodCitations(meta) : options.citations
        let authors: [YAMLTree] = options.authors.map { a in
            .map([("name", .text(a.name))] + (a.affiliation.map { [("affiliation", .text($0))] } ?? []))
        }
        let rdf: YAMLTree = .map([
            ("type", "model"),
            ("format_version", .text(formatVersion)),
            ("name", .text(name)),
            ("description", .text(options.description ?? defaultDescription(export))),
            ("authors", .list(authors)),
            ("cite", .list(citations.map { c in
                var entry: [(String, YAMLTree)] = [("text", .text(c.text))]
                if let link = c.link { entry.append((link.hasPrefix("http") ? "url" : "doi", .text(link))) }
                return .map(entry)
            })),
            ("license", .text(options.license)),
            ("tags", .list((["lucid", meta.method, config.dims == 3 ? "3d" : "2d", "unet", "fluorescence-light-microscopy",
                             meta.method == "labelfree" ? "image-reconstruction" : "denoising"] + options.tags).map { .text($0) })),
            ("documentation", "README.md"),
            ("covers", .list(["cover.png"])),
            ("timestamp", .text(ISO8601DateFormatter().string(from: Date()))),
            ("inputs", .list([.map([
                ("id", "input"),
                ("description", .text("raw intensities; preprocessing: \(export.inputNormalizationText)")),
                ("axes", .list([.map([("type", "batch")]), .map([("type", "channel"), ("channel_names", .list(inChannels))])]
                               + sizeAxes(output: false))),
                ("test_tensor", .map([("source", "test_input.npy"), ("sha256", .text(SHA256.hex(inputNPY)))])),
                ("sample_tensor", .map([("source", "sample_input.tif"), ("sha256", .text(SHA256.hex(sampleInput)))])),
                ("data", .map([("type", "float32")])),
                ("preprocessing", .list(preprocessing(meta.normalization, axes: tensorAxes))),
            ])])),
            ("outputs", .list([.map([
                ("id", "output"),
                ("description", .text(String(packageOutputText(export).prefix(128)))),
                ("axes", .list([.map([("type", "batch")]), .map([("type", "channel"), ("channel_names", .list(outChannels))])]
                               + sizeAxes(output: true))),
                ("test_tensor", .map([("source", "test_output.npy"), ("sha256", .text(SHA256.hex(outputNPY)))])),
                ("sample_tensor", .map([("source", "sample_output.tif"), ("sha256", .text(SHA256.hex(sampleOutput)))])),
                ("data", .map([("type", "float32")])),
                ("postprocessing", .list(postprocessing(export))),
            ])])),
            ("weights", .map([("onnx", .map([
                ("source", "model.onnx"), ("sha256", .text(SHA256.hex(onnx))), ("opset_version", .int(ONNXExport.opset)),
            ]))])),
            ("config", .map([("lucid", .map([
                ("version", .text(lucidVersion)), ("method", .text(meta.method)), ("step", .int(meta.step)),
                ("weights", .text(export.weights.rawValue)), ("axes", .text(meta.axes)),
                ("input_normalization", .text(export.inputNormalizationText)),
                ("output_normalization", .text(export.outputNormalizationText)),
            ]))])),
        ])
        let rdfText = try Yams.serialize(node: rdf.node(), width: -1, allowUnicode: true)

        var zip = ZipArchive()
        try zip.add("rdf.yaml", Data(rdfText.utf8))
        try zip.add("README.md", Data(readme.utf8))
        try zip.add("model.onnx", onnx)
        try zip.add("test_input.npy", inputNPY)
        try zip.add("test_output.npy", outputNPY)
        try zip.add("sample_input.tif", sampleInput)
        try zip.add("sample_output.tif", sampleOutput)
        try zip.add("cover.png", cover)
        try zip.write(to: path)
        return BioImageIOPackage(files: zip.names, rdf: rdfText, testInputShape: input.shape, halo: halo, minimumSize: minimum)
    }

    /// The test input `[1, C, (Z,) Y, X]` in raw intensities, with its pixel size and Z step.
    static func testInput(_ export: ModelExport, options: BioImageIOOptions,
                          minimum: Int) throws -> (Tensor, Double?, Double?) {
        let meta = export.metadata, config = export.net.config, m = export.net.sizeMultiple
        let candidates = meta.dataFiles.map(\.path).filter { ["tif", "tiff"].contains(($0 as NSString).pathExtension.lowercased()) }
        guard let file = options.testImage ?? candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw ExportError(path: export.checkpoint.directory, reason: "none of its training images is readable here; give a test image (--test-image)")
        }
        var image = try Image.read(file)
        if let channels = meta.signalChannels { image = try image.selectingChannels(channels) }
        if let target = meta.pixelSize {
            let source = image.pixelSize ?? meta.sourcePixelSize ?? target
            image = try image.resampledYX(height: Resampling.extent(image.size("Y"), from: source, to: target),
                                          width: Resampling.extent(image.size("X"), from: source, to: target))
            image.pixelSize = target
        }
        // [C, (Z,) Y, X]: the first time point, the middle plane for a 2-D model on a stack.
        image = try image.transposed(to: Image.canonicalAxes(image.axes))
        var data = image.data
        if image.axisIndex("T") != nil { data = try data.slice(axis: 0, range: 0..<1).reshaped(Array(data.shape.dropFirst())) }
        var letters = image.axes.filter { $0 != "T" }
        if config.dims == 2, let z = letters.firstIndex(of: "Z").map({ letters.distance(from: letters.startIndex, to: $0) }) {
            let mid = data.shape[z] / 2
            var shape = data.shape
            shape.remove(at: z)
            data = try data.slice(axis: z, range: mid..<(mid + 1)).reshaped(shape)
            letters.removeAll { $0 == "Z" }
        }
        if !letters.contains("C") { data = try data.reshaped([1] + data.shape); letters = "C" + letters }
        guard data.shape[0] == config.inChannels, data.rank == config.dims + 1 else {
            throw ExportError(path: file, reason: "gives \(data.shape[0]) channels with axes \(image.axes); the network takes \(config.inChannels) channels and \(config.dims) spatial axes")
        }
        // A centred crop: extents multiples of 2^depth, at least `minimum`, at most 256 in YX and 32 in Z.
        let caps = config.dims == 3 ? [32, 256, 256] : [256, 256]
        let spatial = Array(data.shape.dropFirst())
        var side = zip(spatial, caps).map { n, cap in min(n, max(cap, minimum)) / m * m }
        let square = min(side[side.count - 2], side[side.count - 1])    // square in YX: a 2:1 cover
        side[side.count - 2] = square
        side[side.count - 1] = square
        if let short = side.firstIndex(where: { $0 < minimum }) {
            throw ExportError(path: file, reason: "is \(spatial) pixels; the test tensor needs at least \(minimum) along each spatial axis (twice the receptive radius \(config.receptiveRadius), rounded up to a multiple of \(m)) but axis \(short) allows \(side[short])")
        }
        for (a, s) in side.enumerated() {
            let start = (spatial[a] - s) / 2
            data = try data.slice(axis: a + 1, range: start..<(start + s))
        }
        return (try data.reshaped([1] + data.shape), image.pixelSize, config.dims == 3 ? image.zSpacing : nil)
    }

    /// `micrometres` in nanometres when that is a whole number, else nil.
    static func wholeNanometres(_ micrometres: Double) -> Double? {
        let nm = micrometres * 1000
        return nm > 0 && abs(nm - nm.rounded()) < 1e-6 ? nm.rounded() : nil
    }

    /// What the package's output is, in words.
    static func packageOutputText(_ export: ModelExport) -> String {
        guard export.outputFollowsEachInput else { return "postprocessing: " + export.outputNormalizationText }
        guard let (scale, offset) = export.fixedOutputMap else {
            return "in the input's normalized units (no postprocessing; lucid predict maps them back)"
        }
        return "y · \(scale) + \(offset): the training targets' normalization undone (lucid predict also follows each input's brightness)"
    }

    /// A tensor `[1, C, spatial…]` as TIFF bytes (no C axis for one channel), for people to look at.
    static func sampleTIFF(_ t: Tensor, dims: Int) throws -> Data {
        let c = t.shape[1], spatial = Array(t.shape.dropFirst(2))
        let letters = dims == 3 ? "ZYX" : "YX"
        let image = Image(data: try t.reshaped((c > 1 ? [c] : []) + spatial), axes: (c > 1 ? "C" : "") + letters)
        let file = NSTemporaryDirectory() + "lucid-sample-\(getpid())-\(UUID().uuidString).tif"
        defer { unlink(file) }
        try image.write(to: file)
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ExportError(path: file, reason: "cannot read back the sample tensor")
        }
        return data
    }

    /// Preprocessing steps for the input normalization (statistics over every non-batch axis).
    static func preprocessing(_ n: LucidImaging.Normalization, axes: [YAMLTree]) -> [YAMLTree] {
        switch n.method {
        case .none: return []
        case .percentile:
            var steps: [YAMLTree] = [.map([("id", "scale_range"), ("kwargs", .map([
                ("axes", .list(axes)), ("min_percentile", .number(n.low)), ("max_percentile", .number(n.high)),
            ]))])]
            if n.clip { steps.append(.map([("id", "clip"), ("kwargs", .map([("min", .number(0)), ("max", .number(1))]))])) }
            return steps
        case .meanStd:
            if n.perImage { return [.map([("id", "zero_mean_unit_variance"), ("kwargs", .map([("axes", .list(axes))]))])] }
            return [.map([("id", "fixed_zero_mean_unit_variance"), ("kwargs", .map([
                ("mean", .number(Double(n.offset))), ("std", .number(Double(max(n.scale, 1e-6)))),
            ]))])]
        }
    }

    /// `scale_linear` back to intensities when the output map is fixed (per channel for a
    /// probabilistic net: scales get no offset); nothing otherwise.
    static func postprocessing(_ export: ModelExport) -> [YAMLTree] {
        guard let (scale, offset) = export.fixedOutputMap else { return [] }
        let c = export.net.config
        if c.probabilistic {
            let gains = [YAMLTree](repeating: .number(Double(scale)), count: 2 * c.outChannels)
            let offsets = (0..<(2 * c.outChannels)).map { YAMLTree.number($0 < c.outChannels ? Double(offset) : 0) }
            return [.map([("id", "scale_linear"), ("kwargs", .map([("axis", "channel"), ("gain", .list(gains)), ("offset", .list(offsets))]))])]
        }
        return [.map([("id", "scale_linear"), ("kwargs", .map([("gain", .number(Double(scale))), ("offset", .number(Double(offset)))]))])]
    }

    /// Input | prediction of the test tensor's first channel (middle plane in 3D), each scaled
    /// to its 1st–99.8th percentiles: a 2:1 gray PNG for square crops.
    static func coverImage(input: Tensor, output: Tensor) throws -> Data {
        func plane(_ t: Tensor) throws -> Tensor {
            let h = t.shape[t.rank - 2], w = t.shape[t.rank - 1]
            let planes = t.count / (h * w * t.shape[1])
            let first = try t.slice(axis: 1, range: 0..<1)
            let mid = planes / 2
            return try first.reshaped([planes, h, w]).slice(axis: 0, range: mid..<(mid + 1)).reshaped([h, w])
        }
        return try PNG.encode(PNG.montage([plane(input), plane(output)], gap: 0))
    }

    /// The method's paper(s).
    static func methodCitations(_ meta: CheckpointMetadata) -> [(text: String, link: String?)] {
        let n2v2 = (meta.model as? UNetConfig)?.pooling == .maxBlur
        switch meta.method {
        case "noise2self": return [("Batson & Royer, Noise2Self: Blind Denoising by Self-Supervision, ICML 2019", "10.48550/arXiv.1901.11365")]
        case "noise2void" where n2v2:
            return [("Höck et al., N2V2: Fixing Noise2Void Checkerboard Artifacts with Modified Sampling Strategies and a Tweaked Network Architecture, 2022", "10.48550/arXiv.2211.08512")]
        case "noise2void": return [("Krull, Buchholz & Jug, Noise2Void: Learning Denoising from Single Noisy Images, CVPR 2019", "10.48550/arXiv.1811.10980")]
        case "noise2noise": return [("Lehtinen et al., Noise2Noise: Learning Image Restoration without Clean Data, ICML 2018", "10.48550/arXiv.1803.04189")]
        case "care": return [("Weigert et al., Content-aware image restoration: pushing the limits of fluorescence microscopy, Nature Methods 2018", "10.1038/s41592-018-0216-7")]
        case "labelfree": return [("Ounkomol et al., Label-free prediction of three-dimensional fluorescence images from transmitted-light microscopy, Nature Methods 2018", "10.1038/s41592-018-0111-2")]
        default: return [("Lucid", nil)]
        }
    }

    static func defaultDescription(_ export: ModelExport) -> String {
        let meta = export.metadata, c = export.net.config
        let task = meta.method == "labelfree" ? "predicts fluorescence from transmitted light" : "restores (denoises) fluorescence images"
        return "A \(c.dims)-D U-Net (depth \(c.depth), \(c.firstFilters) filters) trained with Lucid's \(meta.method) method for \(meta.step) steps; it \(task)."
    }

    static func readme(_ export: ModelExport, options: BioImageIOOptions, halo: Int, minimum: Int) -> String {
        let meta = export.metadata, c = export.net.config
        let axes = c.dims == 3 ? "batch, channel, z, y, x" : "batch, channel, y, x"
        var text = """
            # \(options.name ?? "Lucid \(meta.method) model")

            \(options.description ?? defaultDescription(export))

            - Trained with Lucid \(lucidVersion), method `\(meta.method)`, \(meta.step) steps, \
            \(export.weights.rawValue) weights\(meta.bestValidationLoss.map { String(format: " (validation loss %.5g at step %d)", $0, meta.bestStep ?? meta.step) } ?? "").
            - Network: \(c.dims)-D U-Net, depth \(c.depth), \(c.firstFilters) filters, \(c.norm.rawValue) normalization, \
            \(c.pooling.rawValue) pooling, \(c.upsampling.rawValue) upsampling\(c.residual ? ", residual" : "")\(c.probabilistic ? ", Laplace head (means, then scales)" : "").
            - Tensors: axes \(axes); spatial extents \(minimum) + k·\(export.net.sizeMultiple) pixels; crop a halo of \(halo) \
            pixels (the receptive radius) from tiles that border other tiles.
            - Input preprocessing: \(export.inputNormalizationText).\(meta.pixelSize.map { "\n- Trained at \($0) µm pixels: resample inputs to that size first (`lucid predict` does)." } ?? "")
            - Output: \(packageOutputText(export)).

            """
        if export.outputFollowsEachInput {
            let what = export.fixedOutputMap == nil
                ? "The package's outputs stay in the normalized units of each input image"
                : "The package maps outputs to the training targets' intensities, exactly so for inputs as bright as the training inputs"
            text += """

                \(what): following each image's own statistics needs them at the output, which bioimage.io
                postprocessing cannot express. `lucid predict` with the original checkpoint does
                (\(export.outputNormalizationText)).

                """
        }
        text += """

            Files: `model.onnx` (ONNX opset \(ONNXExport.opset), dynamic batch and spatial axes), `test_input.npy` and
            `test_output.npy` (a crop of a training image and its prediction; `sample_input.tif` and
            `sample_output.tif` hold the same for viewers), `cover.png` (input | prediction).
            Run it with any bioimage.io consumer (bioimageio.core, deepImageJ, ilastik) or with onnxruntime after the
            preprocessing above.

            ## Validation

            The test output is Lucid's own prediction of the test input; the ONNX weights with the pre- and
            postprocessing of `rdf.yaml` reproduce it (`bioimageio test model.zip`). How well the model restores
            images was measured only by its validation loss during training\(meta.bestValidationLoss == nil ? " (none: it was trained without validation data)" : "") —
            check its predictions on held-out data of your own before relying on them.
            """
        return text + "\n"
    }
}

extension Tensor {
    /// `f(channel, value)` over `[N, C, …]`.
    func withChannels(_ f: (Int, Float) -> Float) -> Tensor {
        let out = copy()
        let (n, c) = (shape[0], shape[1])
        let plane = count / Swift.max(1, n * c)
        let p = out.storage.base
        for job in 0..<(n * c) {
            let ch = job % c
            for i in 0..<plane { p[job * plane + i] = f(ch, p[job * plane + i]) }
        }
        return out
    }
}

/// An ordered YAML document (rdf.yaml keeps its keys in the order the spec lists them).
indirect enum YAMLTree: ExpressibleByStringLiteral {
    case text(String)
    case int(Int)
    case number(Double)
    case list([YAMLTree])
    case map([(String, YAMLTree)])

    init(stringLiteral value: String) { self = .text(value) }

    func node() throws -> Node {
        switch self {
        case .text(let s): return try s.represented()
        case .int(let i): return try i.represented()
        case .number(let d):
            // Always with a decimal point, so YAML 1.1 readers also see a float (1e-05 → 1.0e-05).
            var s = d.description
            if s.contains("e") && !s.contains(".") { s = s.replacingOccurrences(of: "e", with: ".0e") }
            return Node(s)
        case .list(let items): return Node(try items.map { try $0.node() })
        case .map(let pairs): return Node(try pairs.map { (Node($0.0), try $0.1.node()) })
        }
    }
}
