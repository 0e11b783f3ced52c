import Foundation
import LucidCore
import LucidImaging
import LucidNN
import LucidTestSupport
import XCTest
@testable import LucidRestore

final class CheckpointTests: XCTestCase {
    private func tinyConfig() -> UNetConfig {
        var c = UNetConfig()
        c.depth = 1
        c.firstFilters = 4
        return c
    }

    private func metadata(step: Int, config: UNetConfig) -> CheckpointMetadata {
        CheckpointMetadata(method: "noise2self", recipe: "{}", model: config,
                           normalization: LucidImaging.Normalization.percentile(), targetNormalization: nil,
                           axes: "YX", spatialRank: 2, step: step, bestValidationLoss: 0.5, bestStep: step,
                           dataFiles: [DataFileDigest(path: "a.tif", sha256: "00")],
                           training: TrainingState(seed: 1, learningRate: 1e-3, plateau: nil,
                                                   validationsWithoutImprovement: 0, elapsedSeconds: 1))
    }

    /// A state dict whose every value is `value`, shaped like the tiny net's.
    private func state(_ net: UNet, _ value: Float) -> [String: Tensor] {
        net.stateDict().mapValues { Tensor(shape: $0.shape, repeating: value) }
    }

    func testSHA256KnownVectors() {
        XCTAssertEqual(SHA256.hex(Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // Two blocks, and data that straddles the block boundary when fed in pieces.
        let text = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
        XCTAssertEqual(SHA256.hex(Data(text.utf8)), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        let million = Data(repeating: UInt8(ascii: "a"), count: 1_000_000)
        XCTAssertEqual(SHA256.hex(million), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testSaveLoadRoundTrip() throws {
        let dir = try temporaryFolder(self).path
        var rng = RandomGenerator(seed: 3)
        let net = try UNet(tinyConfig(), rng: &rng)
        let opt = OptimizerState(step: 7, tensors: ["out.weight.exp_avg": Tensor(shape: [1, 4, 1, 1], repeating: 2)])
        try Checkpoint.save(to: dir, metadata: metadata(step: 7, config: tinyConfig()), last: net.stateDict(),
                            best: state(net, 0.25), optimizer: opt)
        let ckpt = try Checkpoint.load(directory: dir)
        XCTAssertEqual(ckpt.metadata.step, 7)
        XCTAssertEqual(try ckpt.metadata.unet(), tinyConfig())
        let last = try ckpt.makeModel(weights: .last)
        for (name, t) in net.stateDict() { XCTAssertEqual(last.stateDict()[name]?.scalars, t.scalars, name) }
        let best = try ckpt.makeModel(weights: .best)
        XCTAssertTrue(best.stateDict().values.allSatisfy { $0.scalars.allSatisfy { $0 == 0.25 } })
        let restored = try ckpt.optimizerState()
        XCTAssertEqual(restored.step, 7)
        XCTAssertEqual(restored.tensors["out.weight.exp_avg"]?.scalars, [2, 2, 2, 2])
        // The stable names exist and hold the same bytes as the step files.
        XCTAssertEqual(FileManager.default.contents(atPath: ckpt.path(Checkpoint.lastLink)),
                       FileManager.default.contents(atPath: ckpt.path(ckpt.metadata.files.weightsLast)))
    }

    /// A save interrupted after any phase leaves a folder that loads one complete step: the
    /// previous one before the commit, the new one after it.
    func testInterruptedSaveLeavesAConsistentCheckpoint() throws {
        struct Crash: Error {}
        var rng = RandomGenerator(seed: 4)
        let net = try UNet(tinyConfig(), rng: &rng)
        for phase in Checkpoint.SavePhase.allCases {
            let dir = try temporaryFolder(self).path
            try Checkpoint.save(to: dir, metadata: metadata(step: 10, config: tinyConfig()), last: state(net, 1),
                                best: state(net, 1), optimizer: OptimizerState(step: 10, tensors: [:]))
            XCTAssertThrowsError(try Checkpoint.save(
                to: dir, metadata: metadata(step: 20, config: tinyConfig()), last: state(net, 2), best: state(net, 2),
                optimizer: OptimizerState(step: 20, tensors: [:]), interrupt: { if $0 == phase { throw Crash() } }))
            let ckpt = try Checkpoint.load(directory: dir)
            let committed = Checkpoint.SavePhase.allCases.firstIndex(of: phase)! >= Checkpoint.SavePhase.allCases.firstIndex(of: .committed)!
            let expected: Float = committed ? 2 : 1
            XCTAssertEqual(ckpt.metadata.step, committed ? 20 : 10, "\(phase)")
            for which in [Checkpoint.Weights.last, .best] {
                let m = try ckpt.makeModel(weights: which)
                XCTAssertTrue(m.stateDict().values.allSatisfy { $0.scalars.allSatisfy { $0 == expected } }, "\(phase) \(which)")
            }
            XCTAssertEqual(try ckpt.optimizerState().step, committed ? 20 : 10, "\(phase)")
            // The next save completes and removes the leftovers of the interrupted one.
            try Checkpoint.save(to: dir, metadata: metadata(step: 30, config: tinyConfig()), last: state(net, 3),
                                best: nil, optimizer: OptimizerState(step: 30, tensors: [:]))
            let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
            let expectedBest = "weights_best-000000\(committed ? 20 : 10).safetensors"
            XCTAssertEqual(names, [expectedBest, "lucid.json", "optimizer-00000030.safetensors",
                                   "weights_best.safetensors", "weights_last-00000030.safetensors",
                                   "weights_last.safetensors"].sorted(), "\(phase)")
        }
    }

    func testLoadErrorsNameTheFile() throws {
        let dir = try temporaryFolder(self).path
        XCTAssertThrowsError(try Checkpoint.load(directory: dir + "/nope")) {
            XCTAssertEqual("\($0)", "\(dir)/nope: no such checkpoint folder")
        }
        XCTAssertThrowsError(try Checkpoint.load(directory: dir)) {
            XCTAssertEqual("\($0)", "\(dir)/lucid.json: missing (not a Lucid checkpoint folder, or no step was saved yet)")
        }
        try Data("{\"format\": 1}".utf8).write(to: URL(fileURLWithPath: dir + "/lucid.json"))
        XCTAssertThrowsError(try Checkpoint.load(directory: dir)) {
            XCTAssertTrue("\($0)".hasPrefix("\(dir)/lucid.json: not a valid checkpoint description (missing key"), "\($0)")
        }
    }
}
