import Foundation
import LucidCore
import LucidImaging
import LucidNN
import LucidRestore
import LucidTestSupport
import XCTest
@testable import LucidInterop

/// Tiny checkpoints of every method, exported as ONNX and bioimage.io packages and checked by
/// onnxruntime (against `lucid predict`), the bioimage.io validator and bioimageio.core.
final class BioImageIOExportTests: XCTestCase {
    struct Case {
        var name: String
        var checkpoint: String
        /// A whole image `lucid predict` restores (extents multiples of the size multiple).
        var image: String
    }

    /// Noisy float32 TIFFs of synthetic specimens.
    private func writeNoisy(_ path: String, shape: [Int], seed: UInt64, photons: Float = 20) throws {
        let clean = try SyntheticSpecimen(shape: shape, seed: seed).render()
        var rng = RandomGenerator(seed: seed &+ 7)
        let noisy = clean.map { v in photons * v + 10 + (photons * v + 14).squareRoot() * rng.normal() }
        try Image(data: noisy, axes: shape.count == 2 ? "YX" : "ZYX", pixelSize: 0.1, zSpacing: shape.count == 3 ? 0.3 : nil)
            .write(to: path)
    }

    private func train(_ yaml: String) throws -> Checkpoint {
        let trainer = Trainer(recipe: try Recipe.parse(yaml: yaml, file: "test.yaml"))
        trainer.showProgress = false
        let summary = try trainer.run()
        return try Checkpoint.load(directory: summary.output)
    }

    /// Trains one tiny model per method (a few steps: the export, not the quality, is tested).
    private func trainAll(in dir: String) throws -> [Case] {
        let fm = FileManager.default
        for sub in ["n2s", "n2v", "care/low", "care/high", "lf/signal", "lf/target"] {
            try fm.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true)
        }
        for k in 0..<2 {
            try writeNoisy("\(dir)/n2s/\(k).tif", shape: [96, 96], seed: UInt64(k))
            try writeNoisy("\(dir)/n2v/\(k).tif", shape: [96, 96], seed: UInt64(10 + k))
            try writeNoisy("\(dir)/care/low/\(k).tif", shape: [64, 64], seed: UInt64(20 + k), photons: 5)
            try writeNoisy("\(dir)/care/high/\(k).tif", shape: [64, 64], seed: UInt64(20 + k), photons: 500)
            try writeNoisy("\(dir)/lf/signal/\(k).tif", shape: [24, 48, 48], seed: UInt64(30 + k))
            let target = try SyntheticSpecimen(shape: [24, 48, 48], seed: UInt64(30 + k)).render().map { $0 * $0 * 300 }
            try Image(data: target, axes: "ZYX", pixelSize: 0.1, zSpacing: 0.3).write(to: "\(dir)/lf/target/\(k).tif")
        }
        let training = "training: {steps: 4, batch: 2, lr: 1.0e-3, seed: 1, validate_every: 2}"
        let n2s = try train("""
            method: noise2self
            data: {train: "\(dir)/n2s/*.tif", axes: YX, patch: [32, 32], validation: 0.25}
            model: {depth: 2, filters: 8, norm: batch}
            \(training)
            output: \(dir)/ckpt-n2s
            """)
        let n2v = try train("""
            method: noise2void
            data: {train: "\(dir)/n2v/*.tif", axes: YX, patch: [32, 32], validation: 0.25, normalize: meanstd}
            noise2void: {n2v2: true}
            model: {depth: 2, filters: 8, norm: group}
            \(training)
            output: \(dir)/ckpt-n2v
            """)
        let care = try train("""
            method: care
            data: {input: "\(dir)/care/low/*.tif", target: "\(dir)/care/high/*.tif", axes: YX, patch: [32, 32], validation: 0.25}
            care: {probabilistic: true}
            model: {depth: 1, filters: 8, residual: true, upsampling: linear}
            \(training)
            output: \(dir)/ckpt-care
            """)
        let labelfree = try train("""
            method: labelfree
            data: {input: "\(dir)/lf/signal/*.tif", target: "\(dir)/lf/target/*.tif", axes: ZYX, patch: [8, 32, 32], validation: 0.25}
            model: {depth: 1, filters: 4, norm: instance, pooling: conv, upsampling: transpose}
            \(training)
            output: \(dir)/ckpt-labelfree
            """)
        return [Case(name: "noise2self", checkpoint: n2s.directory, image: "\(dir)/n2s/1.tif"),
                Case(name: "noise2void", checkpoint: n2v.directory, image: "\(dir)/n2v/1.tif"),
                Case(name: "care", checkpoint: care.directory, image: "\(dir)/care/low/1.tif"),
                Case(name: "labelfree", checkpoint: labelfree.directory, image: "\(dir)/lf/signal/1.tif")]
    }

    /// For each method: onnxruntime, with the normalization the ONNX metadata describes, gives
    /// `lucid predict`'s output within 1e-4 (relative to the output's magnitude); the
    /// bioimage.io validator accepts the package; bioimageio.core (when installed) runs it and
    /// reproduces its test output.
    func testEveryMethodExportsAValidPackageThatOnnxRuntimeReproduces() throws {
        try requirePython("onnx, onnxruntime, numpy, bioimageio.spec")
        let dir = try temporaryFolder(self).path
        let cases = try trainAll(in: dir)
        var jobs: [[String: String]] = []
        for c in cases {
            let checkpoint = try Checkpoint.load(directory: c.checkpoint)
            let export = try ModelExport(checkpoint: checkpoint)
            try export.writeONNX(to: "\(dir)/\(c.name).onnx")
            let package = try BioImageIOExport.write(export, options: BioImageIOOptions(authors: [("Test Author", "Lucid tests")]),
                                                     to: "\(dir)/\(c.name).zip")
            XCTAssertEqual(package.files, ["rdf.yaml", "README.md", "model.onnx", "test_input.npy", "test_output.npy",
                                           "sample_input.tif", "sample_output.tif", "cover.png"], c.name)
            XCTAssertEqual(package.halo, export.net.config.receptiveRadius)
            // lucid predict on the whole image, as the CLI runs it.
            let image = try Image.read(c.image)
            let predicted = try ImagePredictor(checkpoint: checkpoint).predict(image)
            var input = image.data
            input = try input.reshaped([1, 1] + input.shape)
            try NPY.encode(input).write(to: URL(fileURLWithPath: "\(dir)/\(c.name).input.npy"))
            try NPY.encode(predicted.data).write(to: URL(fileURLWithPath: "\(dir)/\(c.name).predicted.npy"))
            jobs.append(["name": c.name, "onnx": "\(dir)/\(c.name).onnx", "zip": "\(dir)/\(c.name).zip",
                         "input": "\(dir)/\(c.name).input.npy", "predicted": "\(dir)/\(c.name).predicted.npy"])
        }
        try JSONSerialization.data(withJSONObject: jobs).write(to: URL(fileURLWithPath: "\(dir)/jobs.json"))
        let r = try runPython(Self.checkScript, ["\(dir)/jobs.json"])
        XCTAssertEqual(r.status, 0, r.err)
        let results = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: [String: Any]], r.out + r.err)
        let coreInstalled = results.values.contains { $0["core"] as? String != "not installed" }
        if !coreInstalled { print("note: bioimageio.core is not installed (pip install bioimageio.core); its test run is skipped") }
        for c in cases {
            let row = try XCTUnwrap(results[c.name], c.name)
            let diff = try XCTUnwrap(row["diff"] as? Double), scale = try XCTUnwrap(row["scale"] as? Double)
            print("\(c.name): onnxruntime vs lucid predict max |Δ| \(diff) (outputs up to \(scale)); validator \(row["spec"] ?? "?"); bioimageio.core \(row["core"] ?? "?")")
            XCTAssertEqual(row["shape_ok"] as? Bool, true, "\(c.name): \(row)")
            XCTAssertGreaterThan(scale, 1e-3, c.name)
            XCTAssertLessThanOrEqual(diff, 1e-4 * max(1, scale), "\(c.name): onnxruntime differs from lucid predict")
            XCTAssertTrue(["valid-format", "passed"].contains(row["spec"] as? String ?? ""), "\(c.name): \(row["spec_errors"] ?? "")")
            if coreInstalled { XCTAssertEqual(row["core"] as? String, "passed", "\(c.name): \(row["core_errors"] ?? "")") }
        }
    }

    /// Reads the ONNX metadata's normalization, normalizes like Lucid, runs onnxruntime, maps the
    /// output back, compares with lucid predict; validates each package (and test-runs it with
    /// bioimageio.core when installed).
    static let checkScript = """
    import json, sys, numpy as np, onnx, onnxruntime as ort
    from bioimageio.spec import load_description
    try:
        from bioimageio.core import test_model
    except ImportError:
        test_model = None
    out = {}
    for job in json.load(open(sys.argv[1])):
        meta = {p.key: p.value for p in onnx.load(job['onnx']).metadata_props}
        norm = json.loads(meta['lucid.normalization'])
        target = json.loads(meta['lucid.target_normalization']) if 'lucid.target_normalization' in meta else None
        unet = json.loads(meta['lucid.unet'])
        x = np.load(job['input'])
        def fit(n, data):
            if n['method'] == 'percentile':
                lo, hi = np.percentile(data, [n['low'], n['high']])
                return float(lo), max(float(hi - lo), 1e-20)
            if n['method'].lower() == 'meanstd' and n['perImage']:
                return float(data.mean()), max(float(data.std()), 1e-20)
            if n['method'] == 'none':
                return 0.0, 1.0
            return n['offset'], n['scale']
        offset, scale = fit(norm, x)
        xn = ((x - offset) / scale).astype(np.float32)
        y = ort.InferenceSession(job['onnx'], providers=['CPUExecutionProvider']).run(['output'], {'input': xn})[0][0]
        back = None
        if target is not None:
            if not target['perImage'] and target['method'] != 'none':
                # The targets' normalization carried over by the input's own fit (lucid's targetUnits).
                back = (target['offset'], target['scale'])
                if norm['method'] != 'none' and not norm['perImage'] and norm['scale'] > 0:
                    gain = target['scale'] / norm['scale']
                    back = (target['offset'] + gain * (offset - norm['offset']), target['scale'] * scale / norm['scale'])
        elif norm['method'] != 'none':
            back = (offset, scale)
        if back is not None:
            n = unet.get('outChannels', 1)
            y[:n] = y[:n] * back[1] + back[0]
            y[n:] = y[n:] * back[1]
        p = np.load(job['predicted'])
        y = y.reshape(p.shape) if y.size == p.size else y
        row = dict(shape_ok=bool(y.shape == p.shape), diff=float(np.abs(y - p).max()) if y.shape == p.shape else 1e9,
                   scale=float(np.abs(p).max()))
        summary = load_description(job['zip'], perform_io_checks=True).validation_summary
        row['spec'] = summary.status
        row['spec_errors'] = [str(e.msg)[:300] for d in summary.details for e in d.errors]
        if test_model is None:
            row['core'] = 'not installed'
        else:
            s = test_model(job['zip'])
            row['core'] = s.status
            row['core_errors'] = [str(e.msg)[:300] for d in s.details for e in d.errors]
        out[job['name']] = row
    print(json.dumps(out))
    """

    /// The rdf.yaml of a package: pre/postprocessing for each kind of normalization, halo and sizes.
    func testProcessingFollowsTheNormalization() throws {
        let dir = try temporaryFolder(self).path
        try FileManager.default.createDirectory(atPath: "\(dir)/n2s", withIntermediateDirectories: true)
        try writeNoisy("\(dir)/n2s/a.tif", shape: [64, 64], seed: 3)
        for (normalize, pre, post) in [("percentile", "scale_range", "postprocessing: []"),
                                       ("meanstd", "fixed_zero_mean_unit_variance", "id: scale_linear"),
                                       ("none", "preprocessing: []", "postprocessing: []")] {
            let checkpoint = try train("""
                method: noise2self
                data: {train: "\(dir)/n2s/*.tif", axes: YX, patch: [32, 32], validation: 0, normalize: \(normalize)}
                model: {depth: 1, filters: 4}
                training: {steps: 1, batch: 2, seed: 1}
                output: \(dir)/ckpt-\(normalize)
                """)
            let export = try ModelExport(checkpoint: checkpoint)
            let package = try BioImageIOExport.write(export, options: BioImageIOOptions(), to: "\(dir)/\(normalize).zip")
            XCTAssertTrue(package.rdf.contains(pre), "\(normalize): \(package.rdf)")
            XCTAssertTrue(package.rdf.contains(post), "\(normalize): \(package.rdf)")
            XCTAssertTrue(package.rdf.contains("halo: \(export.net.config.receptiveRadius)"), package.rdf)
            XCTAssertEqual(package.minimumSize, 24)   // 2·11 + 1 rounded up to a multiple of 2
            XCTAssertEqual(package.testInputShape, [1, 1, 64, 64])
            XCTAssertTrue(package.rdf.contains("doi: 10.48550/arXiv.1901.11365"), "the method's paper is cited by default")
            XCTAssertTrue(package.rdf.contains("unit: nanometer\n    scale: 100.0"), "pixel size of the test image")
        }
    }

    func testExportErrorsNameTheCause() throws {
        let dir = try temporaryFolder(self).path
        try FileManager.default.createDirectory(atPath: "\(dir)/n2s", withIntermediateDirectories: true)
        try writeNoisy("\(dir)/n2s/a.tif", shape: [32, 32], seed: 3)
        let checkpoint = try train("""
            method: noise2self
            data: {train: "\(dir)/n2s/a.tif", axes: YX, patch: [32, 32], validation: 0}
            model: {depth: 2, filters: 4}
            training: {steps: 1, batch: 2, seed: 1}
            output: \(dir)/ckpt
            """)
        let export = try ModelExport(checkpoint: checkpoint)
        XCTAssertThrowsError(try BioImageIOExport.write(export, options: BioImageIOOptions(), to: "\(dir)/m.zip")) { e in
            XCTAssertEqual("\(e)", "\(dir)/n2s/a.tif: is [32, 32] pixels; the test tensor needs at least 60 along each spatial axis (twice the receptive radius 29, rounded up to a multiple of 4) but axis 0 allows 32")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/m.zip"), "nothing is written on failure")
        try FileManager.default.removeItem(atPath: "\(dir)/n2s/a.tif")
        XCTAssertThrowsError(try BioImageIOExport.write(export, options: BioImageIOOptions(), to: "\(dir)/m.zip")) { e in
            XCTAssertEqual("\(e)", "\(dir)/ckpt: none of its training images is readable here; give a test image (--test-image)")
        }
        XCTAssertThrowsError(try ModelExport(checkpoint: checkpoint).writeONNX(to: "\(dir)/no/such/folder/m.onnx")) { e in
            XCTAssertTrue("\(e)".hasPrefix("\(dir)/no/such/folder/m.onnx: cannot write"), "\(e)")
        }
    }

    /// Python's zipfile reads the archive back byte for byte.
    func testZipArchiveReadsBackInPython() throws {
        try requirePython("zipfile")
        let dir = try temporaryFolder(self).path
        var zip = ZipArchive()
        let text = Data(String(repeating: "lucid ", count: 1000).utf8)
        var rng = RandomGenerator(seed: 1)
        let noise = Data((0..<5000).map { _ in UInt8(rng.int(below: 256)) })
        try zip.add("a/text.txt", text)
        try zip.add("noise.bin", noise)
        XCTAssertThrowsError(try zip.add("noise.bin", noise))
        XCTAssertThrowsError(try zip.add("../escape", noise))
        try zip.write(to: "\(dir)/t.zip")
        let r = try runPython("""
            import sys, zipfile, hashlib
            z = zipfile.ZipFile(sys.argv[1])
            assert z.testzip() is None
            for i in z.infolist(): print(i.filename, i.compress_type, hashlib.sha256(z.read(i)).hexdigest())
            """, ["\(dir)/t.zip"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.out, "a/text.txt 8 \(SHA256.hex(text))\nnoise.bin 0 \(SHA256.hex(noise))\n")
    }
}
