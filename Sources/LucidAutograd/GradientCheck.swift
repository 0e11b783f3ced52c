import LucidCore

/// Central finite-difference check of reverse-mode gradients.
///
/// For a scalar-valued `f` it compares `backward()`'s gradient of every input with
/// `(f(x + h·eᵢ) − f(x − h·eᵢ)) / 2h`, accumulated in Float64. The loss is projected on a fixed
/// random direction when `f` returns a non-scalar, so every output element is exercised.
public enum GradientCheck {
    /// Result of a check: the largest error relative to `max(1, |numeric|)` over all inputs.
    public struct Report: CustomStringConvertible {
        public var maxError: Double
        public var worst: String
        public var description: String { "max error \(maxError) at \(worst)" }
    }

    /// Checks `f` at `inputs` (each becomes a variable requiring gradients).
    /// - Parameters:
    ///   - step: finite-difference step `h`.
    ///   - maxProbes: at most this many elements per input are probed (evenly spread).
    public static func run(_ inputs: [Tensor], step: Float = 1e-2, maxProbes: Int = 64, seed: UInt64 = 7,
                           _ f: ([Variable]) throws -> Variable) throws -> Report {
        let vars = inputs.map { Variable($0, requiresGrad: true) }
        let out0 = try f(vars)
        var rng = RandomGenerator(seed: seed)
        let direction = Tensor.randomNormal(out0.shape, rng: &rng)
        func project(_ t: Tensor) -> Double {
            var s = 0.0
            t.withUnsafeBufferPointer { a in direction.withUnsafeBufferPointer { d in
                for i in 0..<a.count { s += Double(a[i]) * Double(d[i]) }
            } }
            return s
        }
        try out0.backward(seed: direction)
        var report = Report(maxError: 0, worst: "none")
        for (k, x) in inputs.enumerated() {
            let analytic = vars[k].grad ?? Tensor(zeros: x.shape)
            let probes = Swift.min(maxProbes, x.count)
            for p in 0..<probes {
                let i = probes == x.count ? p : (p * x.count) / probes
                var plus = inputs, minus = inputs
                plus[k].withUnsafeMutableBufferPointer { $0[i] += step }
                minus[k].withUnsafeMutableBufferPointer { $0[i] -= step }
                let fp = try noGrad { try project(f(plus.map { Variable($0) }).value) }
                let fm = try noGrad { try project(f(minus.map { Variable($0) }).value) }
                let numeric = (fp - fm) / (2 * Double(step))
                let a = Double(analytic.withUnsafeBufferPointer { $0[i] })
                let err = abs(a - numeric) / Swift.max(1, abs(numeric))
                if err > report.maxError {
                    report.maxError = err
                    report.worst = "input \(k) element \(i): analytic \(a), numeric \(numeric)"
                }
            }
        }
        return report
    }
}
