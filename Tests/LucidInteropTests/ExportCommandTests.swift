import Foundation
import LucidCore
import LucidImaging
import LucidRestore
import LucidTestSupport
import XCTest

/// `lucid export` and `lucid report` as users run them.
final class ExportCommandTests: XCTestCase {
    private func lucid(_ args: [String], in dir: String) throws -> ProcessOutput {
        try runLucid(args, in: URL(fileURLWithPath: dir))
    }

    func testExportAndReportCommands() throws {
        let dir = try temporaryFolder(self).path
        let clean = try SyntheticSpecimen(shape: [96, 96], seed: 4).render()
        try Image(data: clean.map { 100 * $0 + 5 }, axes: "YX").write(to: "\(dir)/a.tif")
        try Data("""
            method: noise2self
            data: {train: a.tif, axes: YX, patch: [32, 32], validation: 0.25}
            model: {depth: 2, filters: 4}
            training: {steps: 2, batch: 2, seed: 1, validate_every: 2}
            output: ckpt
            """.utf8).write(to: URL(fileURLWithPath: "\(dir)/r.yaml"))
        var r = try lucid(["train", "r.yaml"], in: dir)
        XCTAssertEqual(r.status, 0, r.err)
        r = try lucid(["export", "ckpt", "--format", "onnx", "-o", "m.onnx"], in: dir)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.hasPrefix("wrote m.onnx: ONNX opset 17, input [batch, 1, y, x] (multiples of 4)"), r.err)
        r = try lucid(["export", "ckpt", "--format", "bioimageio", "-o", "m.zip", "--author", "A. Person|Lab", "--cite", "Some paper|10.1000/xyz"], in: dir)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.contains("wrote m.zip: rdf.yaml, README.md, model.onnx, test_input.npy, test_output.npy"), r.err)
        XCTAssertTrue(r.err.contains("test tensor [1, 1, 96, 96], inputs 60 + k·4 pixels, halo 29"), r.err)
        r = try lucid(["export", "ckpt", "--format", "tflite", "-o", "m.x"], in: dir)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("--format must be onnx or bioimageio, got 'tflite'"), r.err)
        r = try lucid(["export", "nowhere", "--format", "onnx", "-o", "m.onnx"], in: dir)
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.err, "lucid export: nowhere: no such checkpoint folder\n")
        try FileManager.default.removeItem(atPath: "\(dir)/ckpt/report.html")
        r = try lucid(["report", "ckpt"], in: dir)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.err, "wrote ckpt/report.html\n")
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/ckpt/report.html"))
    }
}
