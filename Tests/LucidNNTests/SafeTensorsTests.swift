import Foundation
import LucidTestSupport
import XCTest
import LucidCore
@testable import LucidNN

func requirePythonSafetensors() throws { try requirePython("numpy, safetensors.numpy") }

final class SafeTensorsTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("lucid-st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// Tensors with awkward shapes: a scalar, an empty tensor, odd extents, special values.
    func sampleTensors() throws -> [String: Tensor] {
        var rng = RandomGenerator(seed: 3)
        return [
            "conv.weight": Tensor.randomNormal([3, 2, 3, 3], rng: &rng),
            "bias": try Tensor(shape: [3], scalars: [-0.0, .infinity, Float(bitPattern: 0x0000_0401)]),
            "scalar": Tensor(scalar: 7.25),
            "empty": Tensor(zeros: [0, 4]),
            "name with \"quotes\" / ünïcode": Tensor.randomUniform([5], rng: &rng),
        ]
    }

    func assertBitIdentical(_ a: [String: Tensor], _ b: [String: Tensor], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Set(a.keys), Set(b.keys), file: file, line: line)
        for (k, t) in a {
            guard let u = b[k] else { continue }
            XCTAssertEqual(t.shape, u.shape, k, file: file, line: line)
            XCTAssertEqual(t.scalars.map(\.bitPattern), u.scalars.map(\.bitPattern), k, file: file, line: line)
        }
    }

    func testRoundTripAndHeaderLayout() throws {
        let url = dir.appendingPathComponent("a.safetensors")
        let tensors = try sampleTensors()
        try SafeTensors.save(tensors, metadata: ["format": "pt", "epoch": "3"], to: url)
        let (back, meta) = try SafeTensors.load(from: url)
        assertBitIdentical(tensors, back)
        XCTAssertEqual(meta, ["format": "pt", "epoch": "3"])

        let bytes = [UInt8](try Data(contentsOf: url))
        let n = bytes[0..<8].enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        XCTAssertEqual(n % 8, 0, "header padded to 8 bytes")
        let dataBytes = tensors.values.reduce(0) { $0 + 4 * $1.count }
        XCTAssertEqual(bytes.count, 8 + n + dataBytes)
        // No temporary file is left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["a.safetensors"])
    }

    func testLucidFileReadByPythonIsBitIdentical() throws {
        try requirePythonSafetensors()
        let url = dir.appendingPathComponent("lucid.safetensors")
        let tensors = try sampleTensors()
        try SafeTensors.save(tensors, metadata: ["note": "from lucid"], to: url)
        let script = """
        import json, sys
        from safetensors.numpy import load_file
        from safetensors import safe_open
        d = load_file(sys.argv[1])
        with safe_open(sys.argv[1], framework="numpy") as f: meta = f.metadata()
        print(json.dumps({"meta": meta, "t": {k: [str(v.dtype), list(v.shape), v.tobytes().hex()] for k, v in d.items()}}))
        """
        let r = try runPython(script, [url.path]); let (status, out, err) = (r.status, r.out, r.err)
        XCTAssertEqual(status, 0, err)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        XCTAssertEqual(json["meta"] as? [String: String], ["note": "from lucid"])
        let t = try XCTUnwrap(json["t"] as? [String: [Any]])
        XCTAssertEqual(Set(t.keys), Set(tensors.keys))
        for (k, v) in tensors {
            let entry = try XCTUnwrap(t[k])
            XCTAssertEqual(entry[0] as? String, "float32", k)
            XCTAssertEqual(entry[1] as? [Int], v.shape, k)
            let hex = v.scalars.map { f -> String in
                let b = f.bitPattern.littleEndian
                return (0..<4).map { String(format: "%02x", (b >> (8 * $0)) & 0xFF) }.joined()
            }.joined()
            XCTAssertEqual(entry[2] as? String, hex, k)
        }
    }

    func testPythonFileLoadsInLucid() throws {
        try requirePythonSafetensors()
        let url = dir.appendingPathComponent("py.safetensors")
        let script = """
        import sys, numpy as np
        from safetensors.numpy import save_file
        a = ((np.arange(24, dtype=np.float32) - 7) * 0.25).reshape(2, 3, 4)
        save_file({"a": a, "b.f64": np.array([1.5, -2.25], dtype=np.float64),
                   "num_batches_tracked": np.array(12, dtype=np.int64),
                   "h": np.array([0.5, -3.0, 65504.0], dtype=np.float16)},
                  sys.argv[1], metadata={"who": "python"})
        """
        let r = try runPython(script, [url.path]); let (status, err) = (r.status, r.err)
        XCTAssertEqual(status, 0, err)
        let (t, meta) = try SafeTensors.load(from: url)
        XCTAssertEqual(meta, ["who": "python"])
        XCTAssertEqual(t["a"]?.shape, [2, 3, 4])
        XCTAssertEqual(t["a"]?.scalars, (0..<24).map { (Float($0) - 7) * 0.25 })
        XCTAssertEqual(t["b.f64"]?.scalars, [1.5, -2.25])
        XCTAssertEqual(t["num_batches_tracked"]?.shape, [])
        XCTAssertEqual(t["num_batches_tracked"]?.scalars, [12])
        XCTAssertEqual(t["h"]?.scalars, [0.5, -3.0, 65504.0])
    }

    /// Writes a file from a raw header string and data bytes.
    func rawFile(_ name: String, header: String, data: [UInt8], declaredLength: UInt64? = nil) throws -> URL {
        let url = dir.appendingPathComponent(name)
        let h = Array(header.utf8)
        var bytes = withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { Array($0) }
        bytes += h + data
        try Data(bytes).write(to: url)
        return url
    }

    func assertLoadFails(_ url: URL, containing cause: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensors.load(from: url), file: file, line: line) { e in
            let msg = "\(e)"
            XCTAssertTrue(msg.contains(url.path), "message does not name the file: \(msg)", file: file, line: line)
            XCTAssertTrue(msg.contains(cause), "message \(msg) does not contain '\(cause)'", file: file, line: line)
            XCTAssertFalse(msg.contains("\n"), "message must be one line: \(msg)", file: file, line: line)
        }
    }

    func testLoadValidatesInput() throws {
        let good = #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        assertLoadFails(dir.appendingPathComponent("missing"), containing: "cannot read file")
        let tiny = dir.appendingPathComponent("tiny")
        try Data([1, 2, 3]).write(to: tiny)
        assertLoadFails(tiny, containing: "truncated")
        assertLoadFails(try rawFile("trunc-header", header: good, data: [], declaredLength: 4096), containing: "truncated")
        assertLoadFails(try rawFile("huge-header", header: good, data: [], declaredLength: 1 << 40), containing: "bad header")
        assertLoadFails(try rawFile("json", header: "{\"x\": [", data: []), containing: "bad header: not valid JSON")
        assertLoadFails(try rawFile("notobj", header: "[1,2]", data: []), containing: "bad header: not a JSON object")
        assertLoadFails(try rawFile("trunc-data", header: good, data: [0, 0, 0, 0]), containing: "offset out of range")
        assertLoadFails(try rawFile("dtype", header: #"{"x":{"dtype":"Q8","shape":[2],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8)),
                        containing: "unsupported dtype 'Q8'")
        assertLoadFails(try rawFile("size", header: #"{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8)),
                        containing: "needs 12 bytes")
        assertLoadFails(try rawFile("overlap", header: #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                                    data: Array(repeating: 0, count: 8)), containing: "overlap or gap")
        assertLoadFails(try rawFile("tail", header: good, data: Array(repeating: 0, count: 12)), containing: "cover 8 bytes")
        assertLoadFails(try rawFile("entry", header: #"{"x":{"dtype":"F32"}}"#, data: []), containing: "lacks dtype, shape or data_offsets")
        // The good header itself loads.
        let ok = try SafeTensors.load(from: try rawFile("good", header: good, data: Array(repeating: 0, count: 8)))
        XCTAssertEqual(ok.tensors["x"]?.scalars, [0, 0])
    }

    func testFailedWriteLeavesPreviousFileIntact() throws {
        let url = dir.appendingPathComponent("ckpt.safetensors")
        let previous = ["w": Tensor(shape: [4], repeating: 1.5)]
        try SafeTensors.save(previous, to: url)
        let before = try Data(contentsOf: url)

        // A write that fails midway: the file-size limit stops it after 64 KiB (EFBIG).
        var rng = RandomGenerator(seed: 1)
        let big = ["w": Tensor.randomNormal([256 * 1024], rng: &rng)]
        var old = rlimit()
        getrlimit(Int32(RLIMIT_FSIZE.rawValue), &old)
        let oldHandler = signal(SIGXFSZ, SIG_IGN)
        var limited = old
        limited.rlim_cur = 64 * 1024
        XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limited), 0)
        XCTAssertThrowsError(try SafeTensors.save(big, to: url)) { e in
            XCTAssertTrue("\(e)".contains("write failed"), "\(e)")
            XCTAssertTrue("\(e)".contains(url.path), "\(e)")
        }
        setrlimit(Int32(RLIMIT_FSIZE.rawValue), &old)
        signal(SIGXFSZ, oldHandler)
        XCTAssertEqual(try Data(contentsOf: url), before)

        // A rename that fails (the destination is a non-empty folder) leaves no temporary behind.
        let folder = dir.appendingPathComponent("folder.safetensors")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data([1]).write(to: folder.appendingPathComponent("keep"))
        XCTAssertThrowsError(try SafeTensors.save(previous, to: folder)) { e in
            XCTAssertTrue("\(e)".contains("cannot rename"), "\(e)")
        }
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir.path)), ["ckpt.safetensors", "folder.safetensors"])
        XCTAssertEqual(try SafeTensors.load(from: url).tensors["w"]?.scalars, [1.5, 1.5, 1.5, 1.5])

        XCTAssertThrowsError(try SafeTensors.save(["__metadata__": Tensor(zeros: [1])], to: url)) { e in
            XCTAssertTrue("\(e)".contains("reserved"), "\(e)")
        }
    }
}
