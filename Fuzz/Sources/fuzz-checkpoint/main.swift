import Foundation
import FuzzSupport
import LucidCore
import LucidImaging
import LucidNN
import LucidRestore

/// A checkpoint folder of a tiny U-Net, made once; each input replaces its `lucid.json`.
let fixture: String = {
    let dir = Fuzz.scratch + "/checkpoint"
    var config = UNetConfig()
    config.depth = 1
    config.firstFilters = 4
    var rng = RandomGenerator(seed: 1)
    let net = try! UNet(config, rng: &rng)
    let recipe = try! Recipe.parse(yaml: "method: noise2self\ndata: {train: a.tif, patch: [32, 32]}\n").json()
    let meta = CheckpointMetadata(method: "noise2self", recipe: recipe, model: config,
                                  normalization: .percentile(), targetNormalization: nil, axes: "YX", spatialRank: 2,
                                  step: 2, bestValidationLoss: 0.5, bestStep: 2, dataFiles: [],
                                  training: TrainingState(seed: 1, learningRate: 1e-3, plateau: nil,
                                                          validationsWithoutImprovement: 0, elapsedSeconds: 1))
    let optimizer = OptimizerState(step: 2, tensors: net.stateDict().mapValues { Tensor(shape: $0.shape, repeating: 0.5) })
    try! Checkpoint.save(to: dir, metadata: meta, last: net.stateDict(), best: nil, optimizer: optimizer)
    // `LUCID_FUZZ_SEED=path` copies the fixture's lucid.json there (the seed corpus).
    if let seed = ProcessInfo.processInfo.environment["LUCID_FUZZ_SEED"] {
        try! FileManager.default.copyItem(atPath: dir + "/lucid.json", toPath: seed)
    }
    return dir
}()

/// `lucid.json`: decoding, the files it names and their SHA-256, then the network it describes
/// with the weights loaded, and the optimizer state.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckpoint(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let dir = fixture
    _ = FileManager.default.createFile(atPath: dir + "/lucid.json", contents: Data(bytes: data, count: size))
    do {
        let checkpoint = try Checkpoint.load(directory: dir)
        _ = try ImagePredictor(checkpoint: checkpoint, weights: .best)
        _ = try checkpoint.makeModel(weights: .last)
        _ = try checkpoint.optimizerState()
    } catch {
        Fuzz.checkMessage(error)
    }
    return 0
}
