import Foundation
import LucidCore
import LucidImaging

/// An error of a prediction or evaluation run: one line naming the file and the cause.
public struct PredictionError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var reason: String
    public var description: String { "'\(path)': \(reason)".escapingControlCharacters }

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}

/// What `lucid predict` does: many input files through one restorer into output files.
public enum PredictionRun {
    /// The output file of each input. With one input, `output` is a file (or, ending in `.zarr`,
    /// an OME-Zarr image) unless it is an existing folder or ends in `/`; with several it is a
    /// folder. Without `output`, each result goes next to its input as `NAME.restored.tif`
    /// (`NAME.restored.ome.zarr` for OME-Zarr inputs; in an output folder `NAME.tif` or
    /// `NAME.ome.zarr`). Throws when an output would replace an input, two outputs collide, or
    /// the output folder cannot be written (nothing is written then).
    public static func outputPaths(inputs: [String], output: String?) throws -> [String] {
        func stem(_ p: String) -> (name: String, suffix: String) {
            var name = (p as NSString).lastPathComponent
            while name.hasSuffix("/") { name.removeLast() }
            let lower = name.lowercased()
            for ext in [".ome.zarr", ".zarr"] where lower.hasSuffix(ext) { return (String(name.dropLast(ext.count)), ".ome.zarr") }
            let ext = (name as NSString).pathExtension.lowercased()
            return (ext == "tif" || ext == "tiff" ? (name as NSString).deletingPathExtension : name, ".tif")
        }
        var isDir: ObjCBool = false
        let outputIsFolder = output.map { o in
            inputs.count > 1 || o.hasSuffix("/")
                || (!OMEZarr.isZarrPath(o) && FileManager.default.fileExists(atPath: o, isDirectory: &isDir) && isDir.boolValue)
        } ?? false
        let paths: [String]
        if let output, outputIsFolder {
            paths = inputs.map { (output as NSString).appendingPathComponent(stem($0).name + stem($0).suffix) }
        } else if let output {
            paths = [output]
        } else {
            paths = inputs.map { i in
                var dir = i
                while dir.hasSuffix("/") { dir.removeLast() }
                dir = (dir as NSString).deletingLastPathComponent
                return (dir.isEmpty ? "" : dir + "/") + stem(i).name + ".restored" + stem(i).suffix
            }
        }
        let canonicalInputs = Set(inputs.map(canonical))
        var seen: [String: String] = [:]
        for (input, path) in zip(inputs, paths) {
            let c = canonical(path)
            if canonicalInputs.contains(c) {
                throw PredictionError(path: path, reason: "is an input; refusing to overwrite it (choose another -o)")
            }
            if let other = seen[c] {
                throw PredictionError(path: path, reason: "would receive both '\(other)' and '\(input)' (inputs with the same name: use separate runs)")
            }
            seen[c] = input
        }
        if let output {
            let parent = (output as NSString).deletingLastPathComponent
            try ensureWritableFolder(outputIsFolder ? output : parent.isEmpty ? "." : parent)
        }
        return paths
    }

    /// Creates `folder` if needed and checks that files can be created in it.
    public static func ensureWritableFolder(_ folder: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder, isDirectory: &isDir) {
            guard isDir.boolValue else { throw PredictionError(path: folder, reason: "is a file, not a folder") }
        } else {
            var prefix = folder.hasPrefix("/") ? "/" : ""
            for part in folder.split(separator: "/") {
                prefix += part + "/"
                if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                    throw PredictionError(path: folder, reason: "cannot create the output folder (\(String(cString: strerror(errno))))")
                }
            }
        }
        guard access(folder, W_OK | X_OK) == 0 else {
            throw PredictionError(path: folder, reason: "the output folder is not writable (\(String(cString: strerror(errno))))")
        }
    }

    /// Restores every file of `inputs` (files, folders or globs) into `outputs` (see
    /// `outputPaths`), as `type` (float32, or uint16 clipped and rounded). `extraOutputs` names
    /// where other parts of a generative model's output go (`std`, `samples`: a file or folder,
    /// as `output`). Progress goes to `log` (a bar with ETA on stderr while sampling).
    /// `ensemble` adds models whose restorations are averaged with `restorer`'s
    /// (`EnsemblePredictor`). Returns the written paths. Each error names its file; files
    /// already written stay, the failing one is not written. An OME-Zarr input with an OME-Zarr
    /// output is streamed slab by slab (`StreamingPrediction`, one model), so it may be larger
    /// than memory; other OME-Zarr inputs and outputs are read or written whole.
    ///
    /// With a `group` (`mpirun`), every process calls this: with at least as many files as
    /// processes, file `k` is restored by process `k % size`; otherwise the tiles of each image
    /// are shared (`TiledPredictor.group`). Process 0 receives the results, writes every file and
    /// logs; the others return no paths. Process 0 alone streams OME-Zarr to OME-Zarr.
    public static func run(restorer: ImagePredictor, ensemble: [ImagePredictor] = [], inputs: [String], output: String?,
                           as type: PixelType = .float32, extraOutputs: [String: String] = [:],
                           group: (any ProcessGroup)? = nil,
                           log: @escaping (String) -> Void = { _ in }) throws -> [String] {
        let files = try ImageFiles.resolve(inputs)
        let rank = group?.rank ?? 0
        let parts = restorer.tiles.parts.map(\.name)
        for name in extraOutputs.keys.sorted() where !parts.dropFirst().contains(name) {
            let has = parts.dropFirst().isEmpty ? "gives only its restoration" : "gives \(parts.joined(separator: ", "))"
            throw PredictionError(path: extraOutputs[name]!, reason: "no \(name) to write: this model \(has)")
        }
        // Every process knows the paths (which files stream); process 0 alone writes them.
        let outputs = try outputPaths(inputs: files, output: output)
        let extra = try extraOutputs.sorted { $0.key < $1.key }.map { name, spec in (name, try outputPaths(inputs: files, output: spec)) }
        var taken = Set((files + outputs).map(canonical))
        for (name, paths) in extra {
            for path in paths where taken.contains(canonical(path)) {
                throw PredictionError(path: path, reason: "would receive the \(name) and another file; choose another path")
            }
            taken.formUnion(paths.map(canonical))
        }
        let wanted = [parts[0]] + extra.map(\.0)
        let byFile = group.map { files.count >= $0.size } ?? false
        var restorers = try EnsemblePredictor([restorer] + ensemble)
        for m in restorers.members.indices { restorers.members[m].predictor.group = byFile ? nil : group }
        let sampling = restorer.tiles.evaluationsPerTile > 1
        defer { restorer.tiles.counter?.onEvaluation = nil }
        for (k, file) in files.enumerated() {
            let start = Date()
            let label = "[\(k + 1)/\(files.count)] \((file as NSString).lastPathComponent)"
            if OMEZarr.isGroup(file) && OMEZarr.isZarrPath(outputs[k]) {
                guard rank == 0 else { continue }
                guard ensemble.isEmpty, restorer.noiseModel == nil, parts.count == 1 else {
                    throw PredictionError(path: file, reason: "an ensemble, a model trained with data.vst or a sampling (diffusion) model cannot stream OME-Zarr yet; write a TIFF output (-o NAME.tif)")
                }
                var alone = restorer
                alone.predictor.group = nil
                var stream = StreamingPrediction(restorer: alone)
                stream.progress = { done, total, first, last in log("\(label): slab \(done)/\(total) (planes \(first)–\(last))") }
                let summary = try stream.run(input: file, output: outputs[k], as: type)
                log(String(format: "%@ → %@ (%.2f s, %d slabs, axes %@ %@)", label, outputs[k], Date().timeIntervalSince(start),
                           summary.slabs, summary.axes, "\(summary.shape)"))
                continue
            }
            var lastShown = Date.distantPast
            var bar: ProgressBar?
            var evaluations = 0
            let count = restorers.members.count
            for m in restorers.members.indices {
                let model = count == 1 ? "" : " model \(m + 1)/\(count)"
                restorers.members[m].predictor.progress = rank != 0 ? nil : { done, total in
                    if sampling {
                        if done == 0 { bar = ProgressBar(total: total * restorer.tiles.evaluationsPerTile, label: label + " sampling") }
                    } else if done > 0 && (done == total || Date().timeIntervalSince(lastShown) > 1) {
                        lastShown = Date()
                        log("\(label)\(model): tile \(done)/\(total)")
                    }
                }
            }
            restorer.tiles.counter?.onEvaluation = rank != 0 ? nil : { tiles in
                evaluations += tiles
                bar?.update(evaluations)
            }
            func restore() throws -> [Image] {
                let image = try Image.read(file)
                do {
                    if restorers.members.count > 1 { return [try restorers.predict(image)] }
                    let all = try restorers.members[0].predictParts(image)
                    return wanted.map { all[$0]! }
                } catch {
                    throw PredictionError(path: file, reason: "\(error)")
                }
            }
            let restored: [Image]
            if let group, byFile {
                let owner = k % group.size
                if rank == owner {
                    restored = try restore()
                    if rank != 0 { for image in restored { try send(image, to: 0, group) }; continue }
                } else if rank == 0 {
                    restored = try wanted.map { _ in try receive(from: owner, group) }
                } else {
                    continue
                }
            } else {
                restored = try restore()
                if rank != 0 { continue }
            }
            try restored[0].write(to: outputs[k], as: type)
            for (j, (_, paths)) in extra.enumerated() { try restored[j + 1].write(to: paths[k], as: type) }
            let also = extra.map { "\($0.0) → \($0.1[k])" }.joined(separator: ", ")
            log(String(format: "%@ → %@%@ (%.2f s)", label, outputs[k], also.isEmpty ? "" : ", " + also, Date().timeIntervalSince(start)))
        }
        return rank == 0 ? outputs : []
    }

    /// What `receive` needs besides the pixels to rebuild an image.
    private struct ImageHeader: Codable {
        var axes: String
        var pixelSize: Double?
        var zSpacing: Double?
        var sourceType: PixelType
    }

    private static func send(_ image: Image, to destination: Int, _ group: any ProcessGroup) throws {
        let header = ImageHeader(axes: image.axes, pixelSize: image.pixelSize, zSpacing: image.zSpacing,
                                 sourceType: image.sourceType)
        try group.sendData(try JSONEncoder().encode(header), to: destination)
        try group.sendTensor(image.data, to: destination)
    }

    private static func receive(from source: Int, _ group: any ProcessGroup) throws -> Image {
        let header = try JSONDecoder().decode(ImageHeader.self, from: try group.receiveData(from: source))
        let data = try group.receiveTensor(from: source)
        return Image(data: data, axes: header.axes, pixelSize: header.pixelSize, zSpacing: header.zSpacing,
                     sourceType: header.sourceType)
    }

    static func canonical(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }
}
