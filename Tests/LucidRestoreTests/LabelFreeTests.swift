import Foundation
import LucidAutograd
import LucidCore
import LucidImaging
import LucidNN
@testable import LucidRestore
import LucidTestSupport
import XCTest

/// Label-free prediction: the manifest, training from it, per-image normalization, resampling,
/// tiled prediction of an fnet-style net, and Pearson r.
final class LabelFreeTests: XCTestCase {
    /// A "brightfield" signal (an offset, scaled specimen) and its "fluorescence" target (a
    /// nonlinear function of the same specimen), both written as float32 TIFFs.
    private func writePair(_ dir: String, _ name: String, shape: [Int], seed: UInt64, pixelSize: Double? = nil) throws {
        let specimen = try SyntheticSpecimen(shape: shape, seed: seed).render()
        let axes = shape.count == 2 ? "YX" : "ZYX"
        let signal = specimen.scalars.map { 300 + 900 * $0 }
        let target = specimen.scalars.map { 50 * $0 * $0 }
        try Image(data: Tensor(shape: shape, scalars: signal), axes: axes, pixelSize: pixelSize).write(to: "\(dir)/s-\(name).tif")
        try Image(data: Tensor(shape: shape, scalars: target), axes: axes, pixelSize: pixelSize).write(to: "\(dir)/t-\(name).tif")
    }

    private func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// The 2-D recipe, verbatim: a contract for external evaluation.
    static let contractRecipe = """
        method: labelfree
        data: {manifest: pairs.csv, axes: YX, patch: [64, 64], validation: 0.1}
        model: {kind: unet, depth: 2, filters: 32, kernel: 3}
        training: {steps: 1000, batch: 8, lr: 1.0e-3, seed: 0}
        output: Checkpoints/labelfree-run
        """

    private func train(_ recipe: Recipe) throws -> TrainingSummary {
        let trainer = Trainer(recipe: recipe)
        trainer.showProgress = false
        return try trainer.run()
    }

    // MARK: - recipe

    func testContractRecipeAndLabelFreeDefaults() throws {
        let r = try Recipe.parse(yaml: Self.contractRecipe)
        XCTAssertEqual(r.data.source, .manifest("pairs.csv"))
        XCTAssertEqual(r.data.normalize, Normalization(method: .meanStd, perImage: true))
        XCTAssertEqual(r.data.targetNormalize, Normalization(method: .meanStd, perImage: true))
        XCTAssertTrue(r.data.normalize.perImage)
        XCTAssertNil(r.data.pixelSize)
        XCTAssertEqual(r.method as? LabelFree, LabelFree(loss: .mse))
        XCTAssertEqual(r.training.optimizer, .adam)
        XCTAssertEqual(r.training.schedule.kind, LearningRateSchedule.Kind.none)
        XCTAssertEqual(try Recipe.parse(yaml: r.yaml()), r)

        // fnet's net and patch; target normalization and resampling keys; lr default 1e-3.
        let fnet = try Recipe.parse(yaml: """
            method: labelfree
            data: {manifest: m.csv, axes: ZYX, target_normalize: {mode: percentile, per_image: false},
                   pixel_size: 0.29, source_pixel_size: 0.108}
            model: {kind: fnet}
            """)
        XCTAssertEqual(fnet.data.patch, [32, 64, 64])
        XCTAssertEqual(fnet.training.lr, 1e-3)
        XCTAssertEqual(fnet.data.targetNormalize, Normalization(method: .percentile, perImage: false))
        XCTAssertEqual(fnet.data.pixelSize, 0.29)
        XCTAssertEqual(fnet.data.sourcePixelSize, 0.108)
        XCTAssertEqual(fnet.model.kind, .fnet)
        XCTAssertEqual([fnet.model.unet.depth, fnet.model.unet.firstFilters, fnet.model.unet.kernel], [4, 32, 3])
        XCTAssertEqual(fnet.model.unet.norm, .batch)
        XCTAssertEqual(fnet.model.unet.pooling, .strideConv)
        XCTAssertEqual(fnet.model.unet.upsampling, .transposed)
        XCTAssertEqual(try Recipe.parse(yaml: fnet.yaml()), fnet)
        var config = try networkConfig(fnet, spatialRank: 3, inChannels: 1, outChannels: 1)
        var preset = UNetConfig.fnet3D
        XCTAssertEqual(config, preset)
        config = try networkConfig(try Recipe.parse(yaml: "method: labelfree\ndata: {manifest: m.csv}\nmodel: {kind: fnet, depth: 2}\n"),
                                                  spatialRank: 2, inChannels: 1, outChannels: 3)
        preset.dims = 2
        preset.depth = 2
        preset.outChannels = 3
        XCTAssertEqual(config, preset)

        // Keys only label-free training reads are errors elsewhere.
        let errors = [
            ("method: noise2void\ndata: {train: a.tif, pixel_size: 0.2}\n",
             "recipe.yaml: data.pixel_size: not used by method noise2void (only method labelfree reads it) [line 2]"),
            ("method: care\ndata: {input: a.tif, target: b.tif, normalize: {per_image: true}}\n",
             "recipe.yaml: data.normalize.per_image: unknown key (allowed: mode, low, high, clip) [line 2]"),
            ("method: labelfree\ndata: {manifest: m.csv, source_pixel_size: 0.1}\n",
             "recipe.yaml: data.source_pixel_size: needs data.pixel_size (the pixel size to resample to) [line 2]"),
            ("method: labelfree\ndata: {manifest: m.csv, pixel_size: 0}\n",
             "recipe.yaml: data.pixel_size: 0 is not allowed (a pixel size in µm, > 0) [line 2]"),
            ("method: labelfree\ndata: {manifest: m.csv, target_normalize: zscore}\n",
             "recipe.yaml: data.target_normalize: zscore is not allowed (one of percentile, meanstd, none) [line 2]"),
        ]
        for (yaml, message) in errors {
            XCTAssertThrowsError(try Recipe.parse(yaml: yaml)) { XCTAssertEqual("\($0)", message) }
        }
    }

    func testShippedLabelFreeRecipes() throws {
        let folder = recipesFolder
        let two = try Recipe.load(path: folder.appendingPathComponent("labelfree-2d.yaml").path)
        XCTAssertEqual(two.data.axes, .yx)
        let three = try Recipe.load(path: folder.appendingPathComponent("labelfree-3d.yaml").path)
        XCTAssertEqual(three.model.kind, .fnet)
        XCTAssertEqual(three.data.patch, [32, 64, 64])
        XCTAssertEqual(try networkConfig(three, spatialRank: 3, inChannels: 1, outChannels: 1), .fnet3D)
        for recipe in [two, three] {
            XCTAssertEqual(recipe.data.normalize.perImage, true)
            XCTAssertEqual(recipe.data.targetNormalize?.perImage, true)
        }
    }

    // MARK: - manifest

    func testManifestColumnsQuotingAndPaths() throws {
        let text = "\u{FEFF}Input , Target,target2, TARGET2_channel,split,notes\r\n"
            + "\"dir a/x,1.tif\",/abs/t.tif,t2.tif,0;2,Validation,\"said \"\"hi\"\"\"\r\n"
            + "\r\n"
            + "y.tif,t.tif,t2.tif,,train,\n"
            + "z.tif,t.tif,t2.tif,1,test,\n"
        let m = try LabelFreeManifest.parse(text, file: "m.csv", directory: "/data")
        XCTAssertEqual(m.targetColumns, ["target", "target2"])
        XCTAssertEqual(m.rows.map(\.line), [2, 4, 5])
        XCTAssertEqual(m.rows[0].signal, .init(path: "/data/dir a/x,1.tif", channels: nil))
        XCTAssertEqual(m.rows[0].targets, [.init(path: "/abs/t.tif", channels: nil), .init(path: "/data/t2.tif", channels: [0, 2])])
        XCTAssertEqual(m.rows.map(\.split), [.validation, .train, .test])
        XCTAssertEqual(m.rows[1].targets[1].channels, nil)
        XCTAssertEqual(m.rows(.train).map(\.line), [4])
        // Without a split column every row trains.
        let plain = try LabelFreeManifest.parse("signal,target\na.tif,b.tif", file: "m.csv", directory: "")
        XCTAssertEqual(plain.rows, [.init(line: 2, signal: .init(path: "a.tif", channels: nil),
                                          targets: [.init(path: "b.tif", channels: nil)], split: .train)])
    }

    /// Every manifest mistake is one line naming the manifest, the line and the cause.
    func testManifestErrorsNameTheLineAndCause() throws {
        let dir = try temporaryFolder(self).path
        try writePair(dir, "a", shape: [32, 32], seed: 1)
        try Image(data: Tensor(zeros: [32, 40]), axes: "YX").write(to: "\(dir)/wide.tif")
        try Image(data: PredictionTests.random([2, 32, 32], seed: 2), axes: "CYX").write(to: "\(dir)/two.tif")
        let m = "\(dir)/m.csv"
        let recipe = try Recipe.parse(yaml: """
            method: labelfree
            data: {manifest: "\(m)", axes: YX, patch: [16, 16], validation: 0}
            model: {depth: 1, filters: 4}
            """)
        func error(_ csv: String?) -> String {
            try? FileManager.default.removeItem(atPath: m)
            if let csv { try? write(csv, to: m) }
            var message = ""
            XCTAssertThrowsError(try TrainingData.load(recipe, seed: 0)) { message = "\($0)" }
            XCTAssertEqual(message.split(separator: "\n").count, 1, message)
            return message
        }
        let cases: [(String?, String)] = [
            (nil, "\(m): no such manifest file (data.manifest: a CSV with columns signal and target)"),
            ("", "\(m) line 1: the manifest is empty (it needs a header line naming the columns signal and target, then one line per image pair)"),
            ("signal,target\n", "\(m) line 2: the manifest has a header but no image pairs (one line per pair after the header)"),
            ("signal,tgt\ns-a.tif,t-a.tif\n", "\(m) line 1: no target column (columns found: signal, tgt; a manifest needs signal and target)"),
            ("target,notes\nt-a.tif,x\n", "\(m) line 1: no signal column (columns found: target, notes; a manifest needs signal and target)"),
            ("signal,target,target_chanel\ns-a.tif,t-a.tif,0\n",
             "\(m) line 1: unknown column 'target_chanel' (columns: signal, signal_channel, target, target_channel, target2 …, split)"),
            ("signal,target\ns-a.tif,t-a.tif\nnope.tif,t-a.tif\n", "\(m) line 3: signal file '\(dir)/nope.tif' does not exist"),
            ("signal,target\ns-a.tif,gone.tif\n", "\(m) line 2: target file '\(dir)/gone.tif' does not exist"),
            ("signal,target\ns-a.tif\n", "\(m) line 2: 1 field, but the header (line 1) has 2 columns"),
            ("signal,target\ns-a.tif,\n", "\(m) line 2: no target file (the target column is empty)"),
            ("signal,target,target_channel\ns-a.tif,two.tif,0;2\n",
             "\(m) line 2: target_channel 2 is out of range: '\(dir)/two.tif' has 2 channels (axes CYX, channels 0…1)"),
            ("signal,signal_channel,target\ns-a.tif,1,t-a.tif\n",
             "\(m) line 2: signal_channel 1 is out of range: '\(dir)/s-a.tif' has 1 channel (axes YX, channels 0…0)"),
            ("signal,target,target_channel\ns-a.tif,two.tif,0;x\n",
             "\(m) line 2: target_channel '0;x' is not allowed (a channel number from 0, or several separated by ';' such as 0;2)"),
            ("signal,target\ns-a.tif,wide.tif\n",
             "\(m) line 2: target '\(dir)/wide.tif' has shape [32, 40] (axes YX), but signal '\(dir)/s-a.tif' has [32, 32] (axes YX); a pair must be two images of one scene on one grid"),
            ("signal,target,split\ns-a.tif,t-a.tif,test\ns-a.tif,t-a.tif,val\n",
             "\(m) line 1: the split column leaves no rows to train on (1 test, 1 validation; rows marked train are trained on)"),
            ("signal,target,split\ns-a.tif,t-a.tif,train\ns-a.tif,t-a.tif,\n", "\(m) line 3: the split is empty (train, test, val or validation)"),
            ("signal,target,split\ns-a.tif,t-a.tif,holdout\n", "\(m) line 2: split 'holdout' is not allowed (train, test, val or validation)"),
            ("signal,target\ns-a.tif,t-a.tif\ntwo.tif,t-a.tif\n",
             "\(m) line 3: signal '\(dir)/two.tif': has 2 channels (axes CYX) but data.axes is YX; use CYX"),
            ("signal,target\ns-a.tif,t-a.tif\ns-a.tif,two.tif\n",
             "\(m) line 3: 1 signal and 2 target channels, but line 2 has 1 and 1; every row must give the same channels"),
            ("signal,target\n\"s-a.tif,t-a.tif\n", "\(m) line 2: a quoted field is not closed"),
        ]
        for (csv, expected) in cases { XCTAssertEqual(error(csv), expected) }
    }

    // MARK: - training and prediction

    /// Without a manifest, signal and target files pair by name as for CARE (all of them train).
    func testFoldersMatchedByName() throws {
        let dir = try temporaryFolder(self).path
        for sub in ["bf", "fluo"] { try FileManager.default.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true) }
        for (name, seed) in [("a", UInt64(1)), ("b", 2)] {
            try writePair(dir, name, shape: [24, 24], seed: seed)
            try FileManager.default.moveItem(atPath: "\(dir)/s-\(name).tif", toPath: "\(dir)/bf/\(name).tif")
            try FileManager.default.moveItem(atPath: "\(dir)/t-\(name).tif", toPath: "\(dir)/fluo/\(name).tif")
        }
        let yaml = """
            method: labelfree
            data: {input: "\(dir)/bf/*.tif", target: "\(dir)/fluo/*.tif", patch: [16, 16]}
            model: {depth: 1, filters: 4}
            """
        let recipe = try Recipe.parse(yaml: yaml)
        XCTAssertEqual(recipe.data.source, .paired(input: "\(dir)/bf/*.tif", target: "\(dir)/fluo/*.tif"))
        XCTAssertEqual(try Recipe.parse(yaml: recipe.yaml()), recipe)
        let data = try TrainingData.load(recipe, seed: 0)
        XCTAssertEqual(data.files, ["\(dir)/bf/a.tif", "\(dir)/fluo/a.tif", "\(dir)/bf/b.tif", "\(dir)/fluo/b.tif"])
        XCTAssertEqual(data.sources.count, 2)
        XCTAssertEqual(Double(data.sources[1][1].scalars.reduce(0, +)), 0, accuracy: 1e-2, "each target z-scored")
        // Errors name the signal file of the pair.
        try Image(data: Tensor(zeros: [24, 30]), axes: "YX").write(to: "\(dir)/fluo/b.tif")
        XCTAssertThrowsError(try TrainingData.load(recipe, seed: 0)) {
            XCTAssertEqual("\($0)", "\(dir)/bf/b.tif: target '\(dir)/fluo/b.tif' has shape [24, 30] (axes YX), but signal "
                           + "'\(dir)/bf/b.tif' has [24, 24] (axes YX); a pair must be two images of one scene on one grid")
        }
    }

    /// The contract recipe trains from a manifest (val rows validate, test rows are never read),
    /// logs validation Pearson r, records per-image normalization, and its checkpoint predicts
    /// whole images whose result does not move when the input is rescaled.
    func testTrainsFromAManifestAndPredictsWithPerImageNormalization() throws {
        let dir = try temporaryFolder(self).path
        for (name, seed) in [("a", UInt64(1)), ("b", 2), ("c", 3)] { try writePair(dir, name, shape: [72, 80], seed: seed) }
        try write("signal,target,split\ns-a.tif,t-a.tif,train\ns-b.tif,t-b.tif,train\ns-c.tif,t-c.tif,val\nmissing.tif,t-x.tif,test\n",
                  to: "\(dir)/pairs.csv")
        let recipe = try Recipe.parse(yaml: Self.contractRecipe, overrides: [
            "data.manifest=\(dir)/pairs.csv", "output=\(dir)/run", "training.steps=4", "training.batch=4", "training.validate_every=2"])
        let data = try TrainingData.load(recipe, seed: 0)
        XCTAssertEqual(data.sources.count, 2)
        XCTAssertEqual(data.validationSize, 2, "the val image (72 × 80) covered once by 64 × 64 patches")
        // Each image is z-scored by itself.
        for source in data.sources {
            for t in source {
                let v = t.scalars.map(Double.init), mean = v.reduce(0, +) / Double(v.count)
                XCTAssertEqual(mean, 0, accuracy: 1e-4)
                XCTAssertEqual((v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count)).squareRoot(), 1, accuracy: 1e-3)
            }
        }

        let summary = try train(recipe)
        XCTAssertEqual(summary.step, 4)
        XCTAssertEqual(summary.metricColumns, ["val_pearson"])
        XCTAssertEqual(summary.validationMetrics.map(\.step), [2, 4])
        XCTAssertTrue(summary.validationMetrics.allSatisfy { $0.values.count == 1 && abs($0.values[0]) <= 1 })
        let csv = try String(contentsOfFile: "\(dir)/run/metrics.csv", encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(csv[0], "step,loss,val_loss,val_pearson,lr,patches_per_s,elapsed")
        XCTAssertEqual(csv[1].split(separator: ",", omittingEmptySubsequences: false).count, 7)
        let row2 = csv[2].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(Double(row2[3]), summary.validationMetrics[0].values[0])

        let ckpt = try Checkpoint.load(directory: "\(dir)/run")
        XCTAssertEqual(ckpt.metadata.method, "labelfree")
        XCTAssertEqual(ckpt.metadata.normalization.method, .meanStd)
        XCTAssertTrue(ckpt.metadata.normalization.perImage)
        XCTAssertEqual(ckpt.metadata.targetNormalization?.perImage, true)
        let json = try String(contentsOfFile: "\(dir)/run/lucid.json", encoding: .utf8)
        XCTAssertEqual(json.components(separatedBy: "\"perImage\" : true").count, 3, "input and target normalization")
        XCTAssertEqual(ckpt.metadata.dataFiles.map { ($0.path as NSString).lastPathComponent },
                       ["pairs.csv", "s-a.tif", "t-a.tif", "s-b.tif", "t-b.tif", "s-c.tif", "t-c.tif"])
        XCTAssertEqual(try Recipe.load(path: "\(dir)/run/recipe.yaml"), recipe)

        // lucid predict: any size, the input's axes.
        let specimen = try SyntheticSpecimen(shape: [50, 70], seed: 9).render()
        try Image(data: specimen, axes: "YX", pixelSize: 0.3).write(to: "\(dir)/new.tif")
        let restorer = try ImagePredictor(checkpoint: ckpt)
        let written = try PredictionRun.run(restorer: restorer, inputs: ["\(dir)/new.tif"], output: "\(dir)/pred.tif")
        let predicted = try Image.read(written[0])
        XCTAssertEqual(predicted.axes, "YX")
        XCTAssertEqual(predicted.data.shape, [50, 70])
        XCTAssertTrue(predicted.data.scalars.allSatisfy(\.isFinite))

        // Rescaling the input leaves the prediction where it was (z-scored input, z-score output) ...
        let rescaled = Image(data: specimen.map { 7 * $0 + 300 }, axes: "YX")
        let base = try restorer.predict(Image(data: specimen, axes: "YX")).data
        XCTAssertLessThan(PredictionTests.maxDifference(try restorer.predict(rescaled).data, base), 1e-3)
        // ... which a fixed input normalization would not do.
        var fixed = restorer
        fixed.normalization.perImage = false
        XCTAssertGreaterThan(PredictionTests.maxDifference(try fixed.predict(rescaled).data, base), 0.1)

        // --scale target: z-scores mapped to the training targets' mean and standard deviation.
        let targets = try ["t-a", "t-b"].flatMap { try Image.read("\(dir)/\($0).tif").data.scalars.map(Double.init) }
        let mean = targets.reduce(0, +) / Double(targets.count)
        let std = (targets.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(targets.count)).squareRoot()
        let intensity = try XCTUnwrap(ckpt.metadata.targetIntensity)
        XCTAssertEqual(Double(intensity.offset), mean, accuracy: 1e-3 * abs(mean) + 1e-4)
        XCTAssertEqual(Double(intensity.scale), std, accuracy: 1e-3 * std)
        var toTarget = restorer
        toTarget.scaleToTarget = true
        let scaled = try toTarget.predict(Image(data: specimen, axes: "YX")).data
        XCTAssertLessThan(PredictionTests.maxDifference(scaled, base.map { $0 * intensity.scale + intensity.offset }), 1e-3 * Float(std))
    }

    /// The manifest's signal_channel is recorded in the checkpoint when every row names the same
    /// one; prediction then takes that channel from multi-channel files (as if the file held it
    /// alone) and refuses files without it. Checkpoints without the record use files whole.
    func testPredictionTakesTheSignalChannelsOfTheManifest() throws {
        let dir = try temporaryFolder(self).path
        let shape = [40, 48]
        let planes = try (0..<3).map { try SyntheticSpecimen(shape: shape, seed: 20 + UInt64($0)).render().map { 100 + 500 * $0 } }
        try Image(data: try Tensor.concat(planes.map { try $0.reshaped([1] + shape) }, axis: 0), axes: "CYX")
            .write(to: "\(dir)/multi.tif")
        try writePair(dir, "a", shape: shape, seed: 5)
        let overrides = ["output=\(dir)/run", "data.patch=[32,32]", "model.filters=4", "training.steps=1", "training.batch=2"]
        // Rows naming different channels: nothing to record.
        try write("signal,signal_channel,target\nmulti.tif,1,t-a.tif\nmulti.tif,2,t-a.tif\n", to: "\(dir)/mixed.csv")
        let mixed = try Recipe.parse(yaml: Self.contractRecipe, overrides: overrides + ["data.manifest=\(dir)/mixed.csv"])
        XCTAssertNil(try TrainingData.load(mixed, seed: 0).signalChannels)

        try write("signal,signal_channel,target\nmulti.tif,1,t-a.tif\n", to: "\(dir)/pairs.csv")
        _ = try train(try Recipe.parse(yaml: Self.contractRecipe, overrides: overrides + ["data.manifest=\(dir)/pairs.csv"]))
        let ckpt = try Checkpoint.load(directory: "\(dir)/run")
        XCTAssertEqual(ckpt.metadata.signalChannels, [1])
        let restorer = try ImagePredictor(checkpoint: ckpt)
        XCTAssertEqual(restorer.signalChannels, [1])
        let fromStack = try restorer.predict(try Image.read("\(dir)/multi.tif"))
        XCTAssertEqual(fromStack.axes, "YX")
        var whole = restorer
        whole.signalChannels = nil
        let alone = try whole.predict(Image(data: planes[1], axes: "YX"))
        XCTAssertLessThan(PredictionTests.maxDifference(fromStack.data, alone.data), 1e-5)
        // Before: every channel predicted by itself.
        XCTAssertEqual(try whole.predict(try Image.read("\(dir)/multi.tif")).data.shape, [3] + shape)

        XCTAssertThrowsError(try PredictionRun.run(restorer: restorer, inputs: ["\(dir)/s-a.tif"], output: "\(dir)/out.tif")) { e in
            XCTAssertEqual("\(e)", """
                '\(dir)/s-a.tif': predict: invalid argument: the model was trained on signal channel 1 (signal_channel in its \
                manifest), but the image has no channel 1: 1 channel, axes YX, shape [40, 48]
                """)
        }

        // A lucid.json written before signalChannels existed loads, and prediction uses files whole.
        let file = "\(dir)/run/lucid.json"
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as? [String: Any])
        XCTAssertEqual(json.removeValue(forKey: "signalChannels") as? [Int], [1])
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: file))
        let old = try Checkpoint.load(directory: "\(dir)/run")
        XCTAssertNil(old.metadata.signalChannels)
        XCTAssertEqual(try ImagePredictor(checkpoint: old).predict(try Image.read("\(dir)/multi.tif")).axes, "CYX")
    }

    /// Several targets (channels of one file, in the order listed, and a second target column)
    /// train as output channels of one fnet-style 3-D net at another pixel size; prediction
    /// writes a C axis on the input's grid.
    func testSeveralTargetsAndResamplingIn3D() throws {
        let dir = try temporaryFolder(self).path
        let shape = [8, 40, 48]
        try writePair(dir, "a", shape: shape, seed: 4, pixelSize: 0.1)
        let channels = try (0..<3).map { try SyntheticSpecimen(shape: shape, seed: 10 + UInt64($0)).render() }
        try Image(data: try Tensor.concat(channels.map { try $0.reshaped([1] + shape) }, axis: 0), axes: "CZYX")
            .write(to: "\(dir)/multi.tif")
        try write("signal,target,target_channel,target2\ns-a.tif,multi.tif,2;0,t-a.tif\n", to: "\(dir)/m.csv")
        let recipe = try Recipe.parse(yaml: """
            method: labelfree
            data: {manifest: "\(dir)/m.csv", axes: ZYX, patch: [8, 16, 16], validation: 0.5, pixel_size: 0.2}
            model: {kind: fnet, depth: 2, filters: 4}
            training: {steps: 2, batch: 2, validate_every: 2}
            output: \(dir)/run
            """)
        let data = try TrainingData.load(recipe, seed: 0)
        XCTAssertEqual(data.sources[0][0].shape, [1, 8, 20, 24])
        XCTAssertEqual(data.sources[0][1].shape, [3, 8, 20, 24])
        // Output channel 0 is channel 2 of multi.tif, resampled, z-scored by itself.
        let expected = try Resampling.linearYX(channels[2], height: 20, width: 24)
        let z = try LucidImaging.Normalization.meanStd.fitted(to: expected).apply(expected)
        XCTAssertLessThan(PredictionTests.maxDifference(try data.sources[0][1].slice(axis: 0, range: 0..<1).reshaped([8, 20, 24]), z), 1e-4)

        let summary = try train(recipe)
        XCTAssertEqual(summary.validationMetrics.map { $0.values.count }, [4])
        let csv = try String(contentsOfFile: "\(dir)/run/metrics.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv[0], "step,loss,val_loss,val_pearson,val_pearson_0,val_pearson_1,val_pearson_2,lr,patches_per_s,elapsed")
        for row in csv.dropFirst() { XCTAssertEqual(row.split(separator: ",", omittingEmptySubsequences: false).count, 10, "\(row)") }
        let values = summary.validationMetrics[0].values, r = Array(values.dropFirst())
        XCTAssertEqual(values[0], r.reduce(0, +) / 3, accuracy: 1e-12)
        XCTAssertEqual(csv[2].split(separator: ",").dropFirst(3).prefix(4).compactMap { Double($0) }, values)
        let ckpt = try Checkpoint.load(directory: "\(dir)/run")
        XCTAssertEqual(ckpt.metadata.pixelSize, 0.2)
        XCTAssertEqual(try ckpt.metadata.unet().outChannels, 3)
        XCTAssertEqual(try ckpt.metadata.unet().outputKernel, 3)
        let restorer = try ImagePredictor(checkpoint: ckpt)
        let out = try restorer.predict(try Image.read("\(dir)/s-a.tif"))
        XCTAssertEqual(out.axes, "CZYX")
        XCTAssertEqual(out.data.shape, [3] + shape)
        XCTAssertEqual(out.pixelSize ?? 0, 0.1, accuracy: 1e-6)
        XCTAssertThrowsError(try restorer.predict(Image(data: Tensor(zeros: shape), axes: "ZYX"))) { e in
            XCTAssertTrue("\(e)".contains("the model works at 0.2 µm pixels, but the image has no pixel size in its metadata"), "\(e)")
        }
    }

    /// Tiled prediction with blending equals one pass over the whole volume for the fnet-style
    /// net of a labelfree recipe (stride-2 convolutions, transposed convolutions, BatchNorm with
    /// running statistics in evaluation mode), through the label-free image path.
    func testTiledPredictionOfAnFnetNetEqualsTheWholeVolume() throws {
        let recipe = try Recipe.parse(yaml: "method: labelfree\ndata: {manifest: m.csv, axes: ZYX, patch: [16, 16, 16]}\nmodel: {kind: fnet, depth: 2, filters: 4}\n")
        let config = try networkConfig(recipe, spatialRank: 3, inChannels: 1, outChannels: 2)
        var rng = RandomGenerator(seed: 7)
        let net = try UNet(config, rng: &rng)
        // Running statistics away from their initial values.
        for seed in 0..<3 {
            _ = try noGrad { try net(Variable(PredictionTests.random([2, 1, 8, 16, 16], seed: UInt64(seed)).map { 3 * $0 + 1 })) }
        }
        XCTAssertNotEqual(net.stateDict()["d0.0.bn.running_mean"]?.scalars.first, 0)
        net.setTraining(false)
        let x = PredictionTests.random([1, 1, 16, 96, 96], seed: 5)
        var tiled = TiledPredictor(model: TiledPredictor.model(net), spatialRank: 3, sizeMultiple: net.sizeMultiple,
                                   receptiveRadius: config.receptiveRadius, tile: [16, 80, 80],
                                   overlap: [8, 2 * config.receptiveRadius + 2, 2 * config.receptiveRadius + 2])
        XCTAssertEqual(try tiled.layout(spatialShape: [16, 96, 96]).map { $0.starts.count }, [1, 2, 2])
        let whole = try PredictionTests.whole(net, x)
        XCTAssertEqual(whole.shape, [1, 2, 16, 96, 96])
        XCTAssertLessThan(PredictionTests.maxDifference(try tiled.predict(x), whole), 1e-4)

        // The image path: per-image z-score in, targets' z-scores out (not inverted), a C axis.
        var predictor = ImagePredictor(net: net, normalization: LucidImaging.Normalization(method: .meanStd, perImage: true),
                                       tile: 80, overlap: 2 * config.receptiveRadius + 2)
        predictor.outputNormalization = LucidImaging.Normalization(method: .meanStd, perImage: true)
        predictor.predictor.tile = [16, 80, 80]
        let raw = Image(data: try x.reshaped([16, 96, 96]).map { 40 * $0 + 100 }, axes: "ZYX")
        let image = try predictor.predict(raw)
        XCTAssertEqual(image.axes, "CZYX")
        let zscored = try LucidImaging.Normalization.meanStd.fitted(to: raw.data).apply(raw.data)
        let direct = try PredictionTests.whole(net, zscored.reshaped([1, 1, 16, 96, 96])).reshaped([2, 16, 96, 96])
        XCTAssertLessThan(PredictionTests.maxDifference(image.data, direct), 1e-4)

        // The comparison is sensitive: an overlap far below the receptive field is not exact.
        tiled.overlap = [8, 4, 4]
        XCTAssertGreaterThan(PredictionTests.maxDifference(try tiled.predict(x), whole), 1e-4)
        // So is the mode: BatchNorm with batch statistics gives another result.
        net.setTraining(true)
        XCTAssertGreaterThan(PredictionTests.maxDifference(try noGrad { try net(Variable(x)).value }, whole), 1e-3)
    }

    // MARK: - Pearson r

    /// Direct double-precision Pearson r.
    private func pearson(_ a: [Float], _ b: [Float]) -> Double {
        let (x, y) = (a.map(Double.init), b.map(Double.init))
        let mx = x.reduce(0, +) / Double(x.count), my = y.reduce(0, +) / Double(y.count)
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in x.indices {
            sxy += (x[i] - mx) * (y[i] - my)
            sxx += (x[i] - mx) * (x[i] - mx)
            syy += (y[i] - my) * (y[i] - my)
        }
        return sxy / (sxx * syy).squareRoot()
    }

    func testPearsonPerImageAndChannelAgreesWithTheDirectFormula() throws {
        // Two channels of a 3-D stack, the prediction a noisy, rescaled copy of the reference.
        let reference = PredictionTests.random([2, 3, 9, 10], seed: 1).map { 1000 + 50 * $0 }
        let noise = PredictionTests.random([2, 3, 9, 10], seed: 2)
        var prediction = reference.copy()
        prediction.withUnsafeMutableBufferPointer { p in
            for i in p.indices { p[i] = 0.01 * p[i] + (i < 270 ? 0.2 : 0.6) * noise.scalars[i] }
        }
        let scores = try ImageEvaluation.scores(Image(data: prediction, axes: "CZYX"), reference: Image(data: reference, axes: "CZYX"),
                                                metrics: [.pearson])
        XCTAssertEqual(scores.values.count, 1)
        XCTAssertEqual(scores.values[0].value, pearson(prediction.scalars, reference.scalars), accuracy: 1e-9)
        let channels = try XCTUnwrap(scores.channelPearson)
        for c in 0..<2 {
            let range = (c * 270)..<((c + 1) * 270)
            XCTAssertEqual(channels[c], pearson(Array(prediction.scalars[range]), Array(reference.scalars[range])), accuracy: 1e-9)
        }
        XCTAssertGreaterThan(channels[0], channels[1] + 0.1, "the noisier channel correlates less")
        XCTAssertEqual(scores.json(), "{\"pearson\": \(scores.values[0].value), \"pearson_channels\": [\(channels[0]), \(channels[1])]}")
        XCTAssertEqual(scores.json(prediction: "p.tif", reference: "r \"1\".tif"),
                       "{\"prediction\": \"p.tif\", \"reference\": \"r \\\"1\\\".tif\", \"pearson\": \(scores.values[0].value), "
                       + "\"pearson_channels\": [\(channels[0]), \(channels[1])]}")

        // One channel: the single-image JSON keeps its format; metrics come in the order asked for.
        let single = try ImageEvaluation.scores(Image(data: try prediction.slice(axis: 0, range: 0..<1), axes: "CZYX"),
                                                reference: Image(data: try reference.slice(axis: 0, range: 0..<1), axes: "CZYX"),
                                                metrics: [.pearson, .nrmse])
        XCTAssertNil(single.channelPearson)
        XCTAssertEqual(single.values.map(\.metric), [.pearson, .nrmse])
        XCTAssertEqual(single.json(), "{\"pearson\": \(channels[0]), \"nrmse\": \(single.values[1].value)}")

        // The training log's running sums over batches give the same r (data far from 0).
        var sums = [PearsonSums(), PearsonSums()]
        let batch = try prediction.reshaped([1, 2, 3, 9, 10]), truth = try reference.reshaped([1, 2, 3, 9, 10])
        for z in 0..<3 {
            PearsonSums.add(prediction: try batch.slice(axis: 2, range: z..<(z + 1)), reference: try truth.slice(axis: 2, range: z..<(z + 1)),
                            into: &sums)
        }
        XCTAssertEqual(sums[0].r, channels[0], accuracy: 1e-9)
        XCTAssertEqual(sums[1].r, channels[1], accuracy: 1e-9)
        XCTAssertTrue(PearsonSums().r.isNaN)
    }
}

private extension Tensor {
    func map(_ f: (Float) -> Float) -> Tensor { try! Tensor(shape: shape, scalars: scalars.map(f)) }
}

/// The contract recipe through the built `lucid` binary: train, predict, evaluate.
final class LabelFreeCommandLineTests: XCTestCase {
    /// Runs `lucid args` in `dir`; stdout and stderr apart.
    private func lucid(_ args: [String], in dir: String) throws -> (status: Int32, out: String, err: String) {
        let r = try runLucid(args, in: URL(fileURLWithPath: dir))
        return (r.status, r.out, r.err)
    }

    /// `lucid demo labelfree` is its own command and `lucid demo` still the Noise2Self demo
    /// (their argument checks answer before anything runs).
    func testDemoSpellings() throws {
        guard lucidBinary != nil else { throw XCTSkip("the lucid binary is not built next to the tests") }
        let dir = NSTemporaryDirectory()
        var r = try lucid(["demo", "labelfree", "--shape", "32,32", "-o", "unused"], in: dir)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("shape [32, 32] is smaller than the training patch [64, 64]"), r.err)
        r = try lucid(["demo", "labelfree", "--shape", "64,x"], in: dir)
        XCTAssertTrue(r.err.contains("--shape 64,x must be Y,X or Z,Y,X"), r.err)
        r = try lucid(["demo", "--size", "32"], in: dir)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("--size 32 must be at least 64"), r.err)
        r = try lucid(["demo", "labelfree", "--help"], in: dir)
        XCTAssertTrue(r.out.contains("predicted.tif"), r.out)
    }

    func testContractRecipeTrainsPredictsAndEvaluates() throws {
        guard lucidBinary != nil else { throw XCTSkip("the lucid binary is not built next to the tests") }
        let dir = NSTemporaryDirectory() + "lucid-labelfree-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rows = "signal,target\n"
        for (name, seed) in [("a", UInt64(1)), ("b", 2)] {
            let specimen = try SyntheticSpecimen(shape: [64, 64], seed: seed).render()
            try Image(data: specimen.map { 200 + 800 * $0 }, axes: "YX").write(to: "\(dir)/s-\(name).tif", as: .uint16)
            try Image(data: specimen.map { $0 * $0 }, axes: "YX").write(to: "\(dir)/t-\(name).tif")
            rows += "s-\(name).tif,t-\(name).tif\n"
        }
        try Data(rows.utf8).write(to: URL(fileURLWithPath: "\(dir)/pairs.csv"))
        try Data(LabelFreeTests.contractRecipe.utf8).write(to: URL(fileURLWithPath: "\(dir)/recipe.yaml"))

        var r = try lucid(["train", "recipe.yaml", "--set", "training.steps=2", "--set", "training.batch=2",
                           "--set", "training.validate_every=2"], in: dir)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.contains("completed at step 2"), r.err)
        r = try lucid(["predict", "Checkpoints/labelfree-run", "s-a.tif", "s-b.tif", "-o", "pred"], in: dir)
        XCTAssertEqual(r.status, 0, r.err)
        r = try lucid(["evaluate", "pred/s-a.tif", "pred/s-b.tif", "--reference", "t-a.tif", "--reference", "t-b.tif",
                       "--metric", "pearson"], in: dir)
        XCTAssertEqual(r.status, 0, r.err)
        let lines = r.out.split(separator: "\n")
        XCTAssertEqual(lines.count, 2, r.out)
        XCTAssertTrue(lines[0].hasPrefix("{\"prediction\": \"pred/s-a.tif\", \"reference\": \"t-a.tif\", \"pearson\": "), r.out)
        XCTAssertTrue(lines[1].hasPrefix("{\"prediction\": \"pred/s-b.tif\", \"reference\": \"t-b.tif\", \"pearson\": "), r.out)
        XCTAssertTrue(r.err.contains("Pearson r"), r.err)
        // One pair: the single JSON object of before.
        r = try lucid(["evaluate", "pred/s-a.tif", "--reference", "t-a.tif", "--metric", "pearson", "--quiet"], in: dir)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.hasPrefix("{\"pearson\": ") && r.out.split(separator: "\n").count == 1, r.out)
        XCTAssertEqual(r.err, "")
        r = try lucid(["evaluate", "pred/s-a.tif", "pred/s-b.tif", "--reference", "t-a.tif"], in: dir)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("2 predictions but 1 --reference image; give one --reference per prediction, in order"), r.err)
    }
}
