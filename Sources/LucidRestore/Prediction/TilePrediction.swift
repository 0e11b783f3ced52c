import Foundation
import LucidAutograd
import LucidCore
import LucidNN

/// Settings of a sampled prediction (`lucid predict --samples N --steps K --sampler S --seed`);
/// nil takes the checkpoint recipe's setting.
public struct SamplingOptions: Sendable, Equatable {
    /// Samples drawn per tile.
    public var samples: Int?
    /// Noise levels the sampler visits.
    public var steps: Int?
    public var sampler: DiffusionSampler.Kind?
    /// Seed of every draw (a prediction is a function of the seed).
    public var seed: UInt64
    /// Whether the samples themselves are part of the output (besides their mean and spread).
    public var keepSamples: Bool

    public init(samples: Int? = nil, steps: Int? = nil, sampler: DiffusionSampler.Kind? = nil, seed: UInt64 = 0,
                keepSamples: Bool = false) {
        self.samples = samples
        self.steps = steps
        self.sampler = sampler
        self.seed = seed
        self.keepSamples = keepSamples
    }
}

/// Counts network evaluations of a prediction in progress: the sampler reports each one, a
/// progress display listens.
public final class EvaluationCounter: @unchecked Sendable {
    /// Called with the number of tiles an evaluation covered.
    public var onEvaluation: ((Int) -> Void)?

    public init() {}

    func evaluated(tiles: Int) { onEvaluation?(tiles) }
}

/// What prediction runs on each batch of tiles `[B, inputChannels, tile…]`, and what its
/// output channels `[B, outputChannels, tile…]` are: named parts in channel order, each a
/// number of channels (`mean`; or `mean`, `samples`, `std` for a generative method).
public struct TilePrediction {
    /// One named part of the output channels.
    public struct Part: Equatable, Sendable {
        public var name: String
        public var channels: Int
        public init(_ name: String, channels: Int) {
            self.name = name
            self.channels = channels
        }
    }

    public var run: TiledPredictor.Model
    /// Channels of an input sample.
    public var inputChannels: Int
    /// The leading output channels that are intensities (mapped back with offset and scale);
    /// the rest are spreads (scaled only).
    public var intensityChannels: Int
    /// The output channels, in order.
    public var parts: [Part]
    /// Network evaluations per tile (1 for a single pass), for progress and its ETA.
    public var evaluationsPerTile: Int
    /// Reports evaluations as they happen (nil for a single pass).
    public var counter: EvaluationCounter?

    public init(run: @escaping TiledPredictor.Model, inputChannels: Int, intensityChannels: Int, parts: [Part],
                evaluationsPerTile: Int = 1, counter: EvaluationCounter? = nil) {
        self.run = run
        self.inputChannels = inputChannels
        self.intensityChannels = intensityChannels
        self.parts = parts
        self.evaluationsPerTile = evaluationsPerTile
        self.counter = counter
    }

    /// A network's single pass on tiles `model`, of architecture `config`, through `head` (nil:
    /// every channel an intensity): one part, `mean`, of all its output channels.
    public init(model: @escaping TiledPredictor.Model, config: any ModelConfig, head: PredictionHead?) {
        var headed = model
        if let transform = head?.transform { headed = { x in try transform(model(x)) } }
        self.init(run: headed, inputChannels: config.inChannels,
                  intensityChannels: head?.intensityChannels ?? config.outputChannels,
                  parts: [Part("mean", channels: config.outputChannels)])
    }

    /// `net` once, in evaluation mode without gradient recording, through `head`.
    public init(net: any ImageModel, head: PredictionHead?) {
        self.init(model: TiledPredictor.model(net), config: net.architecture, head: head)
    }

    /// Output channels per input sample.
    public var outputChannels: Int { parts.reduce(0) { $0 + $1.channels } }

    /// The first output channel of part `name` and its channel count; nil when there is none.
    public func channels(of name: String) -> Range<Int>? {
        var offset = 0
        for p in parts {
            if p.name == name { return offset..<(offset + p.channels) }
            offset += p.channels
        }
        return nil
    }
}
