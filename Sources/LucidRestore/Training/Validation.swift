import Foundation
import LucidAutograd
import LucidCore
import LucidNN

/// A quality measured on the validation patches besides the loss; its values become columns of
/// `metrics.csv` and appear on the progress line.
public protocol ValidationMetric: AnyObject {
    /// The `metrics.csv` columns it fills.
    var columns: [String] { get }
    /// Adds one validation batch: the network's output and the target.
    func add(output: Tensor, target: Tensor)
    /// The values of `columns` over the batches added since the last call, which starts over.
    func finish() -> [Double]
    /// A few characters for the progress line (`r 0.912`), from values `finish` returned.
    func status(_ values: [Double]) -> String
}

/// Pearson r between output and target over all validation pixels: the mean over target
/// channels (`val_pearson`), then each channel's when there are several (`val_pearson_k`).
public final class PearsonMetric: ValidationMetric {
    public let channels: Int
    private var sums: [PearsonSums]

    public init(channels: Int) {
        self.channels = channels
        sums = Array(repeating: PearsonSums(), count: channels)
    }

    public var columns: [String] {
        ["val_pearson"] + (channels > 1 ? (0..<channels).map { "val_pearson_\($0)" } : [])
    }

    public func add(output: Tensor, target: Tensor) {
        PearsonSums.add(prediction: output, reference: target, into: &sums)
    }

    public func finish() -> [Double] {
        let r = sums.map(\.r)
        sums = Array(repeating: PearsonSums(), count: channels)
        return [r.reduce(0, +) / Double(r.count)] + (r.count > 1 ? r : [])
    }

    public func status(_ values: [Double]) -> String { String(format: "r %.3f", values[0]) }
}

/// One validation: the mean loss over the held-out patches and the method's metrics.
public struct ValidationResult: Sendable {
    public var loss: Double
    /// Values of the metrics' columns, in order.
    public var metrics: [Double]
}

/// Scores a model on the training data's validation patches, in evaluation mode, with fixed
/// masks (the same generator at every validation), in batches of the training batch size.
struct Validator {
    let method: any RestorationMethod
    let data: TrainingData
    let batch: Int
    let seed: UInt64
    let metrics: [any ValidationMetric]

    var columns: [String] { metrics.flatMap(\.columns) }

    func validate(_ model: any ImageModel) throws -> ValidationResult {
        model.setTraining(false)
        defer { model.setTraining(true) }
        var rng = RandomGenerator(seed: seed ^ 0x7A11_DA7E_5EED_0001)
        let n = data.validationSize
        var total = 0.0
        for (k, start) in stride(from: 0, to: n, by: batch).enumerated() {
            let (x, y) = try data.validationBatch(start..<min(n, start + batch))
            // Batch k is scored at step 7k, so methods that cycle with the step (Noise2Self's
            // grid phases) see phases spread over the set.
            let (loss, output) = try noGrad { try method.validationStep(model, input: x, target: y, index: k * 7, rng: &rng) }
            if let output, let y { for m in metrics { m.add(output: output, target: y) } }
            total += Double(loss.value.scalars[0]) * Double(x.shape[0])
        }
        return ValidationResult(loss: total / Double(n), metrics: metrics.flatMap { $0.finish() })
    }
}
