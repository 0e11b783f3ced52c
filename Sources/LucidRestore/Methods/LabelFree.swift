import LucidAutograd
import LucidCore
import LucidImaging
import LucidNN

/// `method: labelfree` — predicting a fluorescence channel from transmitted light (Ounkomol et
/// al. 2018, pytorch_fnet): signal → target pairs from a CSV manifest or matched folders, each
/// image z-scored by itself by default, validation scored by Pearson r.
public struct LabelFree: RestorationMethod, Equatable {
    public static let name = "labelfree"
    public static let summary = "label-free prediction: a fluorescence target from brightfield (or any signal), 2D or 3D"
    public static let data = DataNeeds.signalToTarget

    public var loss = PixelLoss.mse

    public init() {}

    public init(loss: PixelLoss) { self.loss = loss }

    public static let keys: [RecipeKey<LabelFree>] = [
        .choice("loss", \.loss, among: [.mse, .mae], "pixel loss"),
    ]

    /// pytorch_fnet's choices: 32×64×64 patches in 3-D, each image z-scored by itself, Adam at a
    /// constant 1e-3.
    public static var defaults: MethodDefaults {
        var d = MethodDefaults()
        d.patch3D = [32, 64, 64]
        d.normalize = Normalization(method: .meanStd, perImage: true)
        d.learningRate = 1e-3
        d.schedule = .none
        return d
    }

    public func loss(_ model: any ImageModel, input: Tensor, target: Tensor?, step: Int,
                     rng: inout RandomGenerator) throws -> Variable {
        try supervisedLoss(loss, model, input: input, target: target)
    }

    /// The loss and the output, from one forward pass.
    public func validationStep(_ model: any ImageModel, input: Tensor, target: Tensor?, index: Int,
                               rng: inout RandomGenerator) throws -> (loss: Variable, output: Tensor?) {
        guard let target else { return (try loss(model, input: input, target: nil, step: index, rng: &rng), nil) }
        let output = try model(Variable(input))
        return (try loss.loss(output, target), output.value)
    }

    public func validationMetrics(outChannels: Int) -> [any ValidationMetric] { [PearsonMetric(channels: outChannels)] }
}
