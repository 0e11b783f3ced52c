import LucidCore

/// Inverted dropout: in training each element is zeroed with `probability` and the survivors
/// are scaled by `1 / (1 − probability)`, so evaluation (`training == false`) is the identity.
/// The mask is drawn from `rng`, so a seeded generator reproduces it.
public func dropout(_ x: Variable, probability: Float, training: Bool, rng: inout RandomGenerator) -> Variable {
    guard training, probability > 0 else { return x }
    let keep: Float = probability >= 1 ? 0 : 1 / (1 - probability)
    let mask = Tensor(uninitialized: x.shape), out = Tensor(uninitialized: x.shape)
    let m = mask.storage.base, o = out.storage.base, src = UnsafePointer(x.value.storage.base)
    for i in 0..<mask.count {
        m[i] = rng.uniform() < probability ? 0 : keep
        o[i] = src[i] * m[i]
    }
    return Variable.record(out, parents: [x], op: "dropout") { g in [try g * mask] }
}
