import Foundation
import LucidAutograd
import LucidCore
import LucidNN
import LucidTestSupport
import XCTest
@testable import LucidInterop

final class ONNXExportTests: XCTestCase {
    /// Every architecture variant of `UNetConfig` the export must cover.
    static func variants() -> [(name: String, config: UNetConfig)] {
        func make(_ name: String, _ edit: (inout UNetConfig) -> Void) -> (String, UNetConfig) {
            var c = UNetConfig()
            c.depth = 2
            c.firstFilters = 8
            c.groups = 4
            edit(&c)
            return (name, c)
        }
        return [
            make("care2d_max_nearest_residual") { $0.residual = true },
            make("batch_strideconv_transposed") { $0.norm = .batch; $0.convBias = false; $0.pooling = .strideConv; $0.upsampling = .transposed; $0.outputKernel = 3 },
            make("group_maxblur_linear_noskiptop") { $0.norm = .group; $0.pooling = .maxBlur; $0.upsampling = .linear; $0.skipTop = false },
            make("instance_leaky") { $0.norm = .instance; $0.activation = .leakyReLU },
            make("probabilistic_residual_silu") { $0.probabilistic = true; $0.residual = true; $0.activation = .silu },
            make("gelu_two_channels_depth1") { $0.activation = .gelu; $0.depth = 1; $0.inChannels = 2; $0.outChannels = 3 },
            make("dropout_in_training_only") { $0.dropout = 0.3 },
            make("depth0") { $0.depth = 0 },
            make("3d_batch_max_nearest") { $0.dims = 3; $0.norm = .batch; $0.convBias = false },
            make("3d_fnet_like") { $0.dims = 3; $0.norm = .batch; $0.pooling = .strideConv; $0.upsampling = .transposed; $0.outputKernel = 3 },
            make("3d_group_maxblur_linear") { $0.dims = 3; $0.norm = .group; $0.pooling = .maxBlur; $0.upsampling = .linear; $0.depth = 1 },
            make("3d_instance_probabilistic") { $0.dims = 3; $0.norm = .instance; $0.probabilistic = true; $0.depth = 1 },
        ]
    }

    /// A net with random weights and (for BatchNorm) non-trivial running statistics, in evaluation mode.
    static func randomNet(_ config: UNetConfig, seed: UInt64) throws -> UNet {
        var rng = RandomGenerator(seed: seed)
        let net = try UNet(config, rng: &rng)
        for (_, m) in net.namedModules {
            if let bn = m as? BatchNorm {
                bn.statistics.mean = Tensor.randomNormal([bn.channels], std: 0.2, rng: &rng)
                bn.statistics.variance = Tensor.randomUniform([bn.channels], low: 0.5, high: 2, rng: &rng)
            }
        }
        // Affine norm parameters start at 1/0; move them so the export's use of them is checked.
        for (name, p) in net.namedParameters where name.hasSuffix("norm.weight") || name.hasSuffix("bn.weight") {
            p.value = Tensor.randomUniform(p.value.shape, low: 0.5, high: 1.5, rng: &rng)
        }
        for (name, p) in net.namedParameters where name.hasSuffix("norm.bias") || name.hasSuffix("bn.bias") {
            p.value = Tensor.randomNormal(p.value.shape, std: 0.1, rng: &rng)
        }
        net.setTraining(false)
        return net
    }

    func testGraphHasDynamicAxesOpsetAndOneInitializerPerTensor() throws {
        let variants = Self.variants()
        for (name, config) in [variants[1], variants[2], variants[8]] {
            let net = try Self.randomNet(config, seed: 1)
            let data = try ONNXExport.model(net, metadata: [("lucid.method", "care")], docString: "test")
            let model = try Onnx_ModelProto(serializedBytes: data)
            XCTAssertEqual(model.opsetImport.map(\.version), [Int64(ONNXExport.opset)], name)
            XCTAssertEqual(model.metadataProps.map(\.key), ["lucid.method"], name)
            let input = model.graph.input[0].type.tensorType.shape.dim
            let spatial = config.dims == 3 ? ["z", "y", "x"] : ["y", "x"]
            XCTAssertEqual(input.map(\.dimParam), ["batch", ""] + spatial, name)
            XCTAssertEqual(input[1].dimValue, Int64(config.inChannels), name)
            XCTAssertEqual(model.graph.output.map(\.name), ["output"], name)
            XCTAssertEqual(model.graph.node.filter { $0.output.contains("output") }.count, 1, name)
            // Every parameter and BatchNorm statistic is stored once, with its values.
            let stored = Dictionary(uniqueKeysWithValues: model.graph.initializer.map { ($0.name, $0) })
            for (key, tensor) in net.stateDict() where !key.hasSuffix("num_batches_tracked") {
                let t = try XCTUnwrap(stored[key], "\(name): \(key) missing")
                // GroupNorm's affine parameters are stored as [C, 1, …] to broadcast over positions.
                let dims = t.dims.map(Int.init)
                XCTAssertEqual(config.norm == .group && key.contains("norm.") ? [dims[0]] : dims, tensor.shape, "\(name) \(key)")
                let values = t.rawData.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                XCTAssertEqual(values, tensor.scalars, "\(name) \(key)")
            }
            // Every node input is produced earlier, is an initializer, the graph input or omitted.
            var known = Set(stored.keys).union(["input", ""])
            for node in model.graph.node {
                for i in node.input { XCTAssertTrue(known.contains(i), "\(name): \(node.name) reads unknown '\(i)'") }
                known.formUnion(node.output)
            }
            let ops = Set(model.graph.node.map(\.opType))
            switch name {
            case "batch_strideconv_transposed": XCTAssertTrue(ops.isSuperset(of: ["BatchNormalization", "ConvTranspose", "Concat"]), "\(ops)")
            case "group_maxblur_linear_noskiptop":
                XCTAssertTrue(ops.isSuperset(of: ["ReduceMean", "Pad", "Resize", "MaxPool"]), "\(ops)")
                XCTAssertFalse(ops.contains("GroupNormalization"))
            default: XCTAssertTrue(ops.isSuperset(of: ["MaxPool", "Resize", "BatchNormalization"]), "\(ops)")
            }
        }
    }

    /// onnxruntime on each exported variant gives the Lucid network's output within 1e-4.
    func testOnnxRuntimeReproducesEveryVariant() throws {
        try requirePython("onnxruntime, numpy")
        let dir = try temporaryFolder(self).path
        var names: [String] = []
        for (k, (name, config)) in Self.variants().enumerated() {
            let net = try Self.randomNet(config, seed: UInt64(10 + k))
            var rng = RandomGenerator(seed: UInt64(100 + k))
            // Extents are multiples of 2^depth, odd multiples so pooling of odd levels is covered.
            let m = net.sizeMultiple
            let spatial = config.dims == 3 ? [3 * m, 5 * m, 3 * m] : [5 * m, 7 * m]
            let x = Tensor.randomNormal([2, config.inChannels] + spatial, rng: &rng)
            let y = try noGrad { try net(Variable(x)).value }
            let expected = config.probabilistic ? try Self.exponentiateScales(y, channels: config.outChannels) : y
            try ONNXExport.model(net).write(to: URL(fileURLWithPath: "\(dir)/\(name).onnx"))
            try NPY.encode(x).write(to: URL(fileURLWithPath: "\(dir)/\(name).input.npy"))
            try NPY.encode(expected).write(to: URL(fileURLWithPath: "\(dir)/\(name).expected.npy"))
            names.append(name)
        }
        let script = """
        import json, sys, numpy as np, onnxruntime as ort
        out = {}
        for name in sys.argv[2:]:
            base = sys.argv[1] + '/' + name
            s = ort.InferenceSession(base + '.onnx', providers=['CPUExecutionProvider'])
            y = s.run(['output'], {'input': np.load(base + '.input.npy')})[0]
            e = np.load(base + '.expected.npy')
            out[name] = [float(np.abs(y - e).max()), list(y.shape) == list(e.shape), float(np.abs(e).max())]
        print(json.dumps(out))
        """
        let r = try runPython(script, [dir] + names)
        XCTAssertEqual(r.status, 0, r.err)
        let results = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: [Any]], r.out + r.err)
        XCTAssertEqual(Set(results.keys), Set(names))
        for name in names {
            let row = try XCTUnwrap(results[name])
            let diff = try XCTUnwrap(row[0] as? Double), sameShape = try XCTUnwrap(row[1] as? Bool)
            let magnitude = try XCTUnwrap(row[2] as? Double)
            print("onnxruntime vs Lucid, \(name): max |Δ| \(diff) (outputs up to \(magnitude))")
            XCTAssertTrue(sameShape, name)
            XCTAssertGreaterThan(magnitude, 1e-3, "\(name): the comparison must see a non-zero output")
            XCTAssertLessThanOrEqual(diff, 1e-4, "\(name): onnxruntime differs from Lucid by \(diff)")
        }
    }

    /// `exp` of the scale half of a probabilistic output, as the exported head computes it.
    static func exponentiateScales(_ y: Tensor, channels c: Int) throws -> Tensor {
        let mean = try y.slice(axis: 1, range: 0..<c)
        let scale = try y.slice(axis: 1, range: c..<(2 * c)).map { Foundation.exp($0) }
        return try Tensor.concat([mean, scale], axis: 1)
    }

    func testNPYRoundTripAndErrors() throws {
        var rng = RandomGenerator(seed: 4)
        let t = Tensor.randomNormal([2, 3, 5], rng: &rng)
        let data = NPY.encode(t)
        XCTAssertEqual((data.count - t.count * 4) % 64, 0, "header padded to 64 bytes")
        let back = try NPY.decode(data, path: "t.npy")
        XCTAssertEqual(back.shape, t.shape)
        XCTAssertEqual(back.scalars, t.scalars)
        XCTAssertThrowsError(try NPY.decode(Data("hello".utf8), path: "bad.npy")) { e in
            XCTAssertEqual("\(e)", "bad.npy: not a .npy file")
        }
        XCTAssertThrowsError(try NPY.decode(data.dropLast(4), path: "short.npy")) { e in
            XCTAssertEqual("\(e)", "short.npy: 116 data bytes for shape [2, 3, 5]")
        }
    }
}
