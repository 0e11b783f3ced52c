import Foundation
import LucidCore
import LucidImaging

/// Recorrupted pairs of a noisy image (Pang et al. 2021, "Recorrupted-to-Recorrupted"): with
/// `z ~ N(0, 1)` per pixel and `s = √v(y)` the measured noise's standard deviation,
/// `ŷ = y + α·s·z` and `ỹ = y − s·z/α`. For Gaussian noise of variance `v` the noises of `ŷ`
/// and `ỹ` are uncorrelated (`v − s²·α/α = 0`) and `E[ỹ | x] = x`, so a network trained to map
/// `ŷ` to `ỹ` learns `E[x | ŷ]`, Tweedie's posterior mean of the more noisy `ŷ`.
struct Recorruption {
    /// The noise of the images, in their (normalized) units.
    let noise: PoissonGaussianNoise
    /// α, in units of the measured noise.
    let strength: Double

    /// `y + α·s·z` for a given `z`.
    func recorrupted(_ y: Tensor, _ z: Tensor) throws -> Tensor {
        let a = Float(strength)
        return try y.zipMap(z, op: "Recorruption") { y, z in y + a * noise.variance(y).squareRoot() * z }
    }

    /// A training pair `(ŷ, ỹ)` of `y`.
    func pair(_ y: Tensor, rng: inout RandomGenerator) throws -> (input: Tensor, target: Tensor) {
        let z = Tensor.randomNormal(y.shape, rng: &rng)
        let inverse = Float(1 / strength)
        return (try recorrupted(y, z), try y.zipMap(z, op: "Recorruption") { y, z in y - inverse * noise.variance(y).squareRoot() * z })
    }
}
