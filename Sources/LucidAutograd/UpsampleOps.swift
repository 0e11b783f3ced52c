import LucidCore

/// Differentiable upsampling by integer factors (`nearest`, or `linear` = bi/trilinear with
/// `align_corners = false`).
public func upsample(_ x: Variable, scale: [Int], mode: UpsampleMode) throws -> Variable {
    let y = try LucidCore.upsample(x.value, scale: scale, mode: mode)
    let shape = x.shape
    return Variable.record(y, parents: [x], op: "upsample") { g in
        [try upsampleBackward(g, inputShape: shape, scale: scale, mode: mode)]
    }
}
