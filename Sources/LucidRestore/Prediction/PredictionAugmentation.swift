import LucidCore

/// One of the 8 flips/rotations of the last two axes (Y, X) of a tensor: an optional transpose
/// of Y and X followed by optional flips of the output's rows and columns.
public struct Dihedral: Equatable, Sendable {
    /// Swap Y and X (turns `[…, H, W]` into `[…, W, H]`).
    public var transpose: Bool
    /// Reverse the output's rows.
    public var flipY: Bool
    /// Reverse the output's columns.
    public var flipX: Bool

    public init(transpose: Bool, flipY: Bool, flipX: Bool) {
        self.transpose = transpose
        self.flipY = flipY
        self.flipX = flipX
    }

    public static let identity = Dihedral(transpose: false, flipY: false, flipX: false)

    /// All 8 elements, or the 4 flips when the plane is not square (identity first).
    public static func group(square: Bool) -> [Dihedral] {
        (square ? [false, true] : [false]).flatMap { t in
            [(false, false), (false, true), (true, false), (true, true)].map { Dihedral(transpose: t, flipY: $0.0, flipX: $0.1) }
        }
    }

    /// The transformed tensor (rank ≥ 2).
    public func apply(_ x: Tensor) -> Tensor { map(x, inverse: false) }

    /// Undoes `apply`: `inverse(apply(x)) == x`.
    public func inverse(_ x: Tensor) -> Tensor { map(x, inverse: true) }

    /// Output `[i, j]` of the forward map reads input `[a, b]`; the inverse writes it back there.
    private func map(_ x: Tensor, inverse: Bool) -> Tensor {
        if self == .identity { return x }
        let r = x.rank
        let (h, w) = (x.shape[r - 2], x.shape[r - 1])
        // Forward: input plane h×w, output plane (oh, ow). Inverse: the reverse.
        let (inH, inW) = inverse ? (transpose ? (w, h) : (h, w)) : (h, w)
        let (oh, ow) = transpose ? (inW, inH) : (inH, inW)
        var shape = x.shape
        if inverse { shape[r - 2] = inH; shape[r - 1] = inW } else { shape[r - 2] = oh; shape[r - 1] = ow }
        let out = Tensor(uninitialized: shape)
        let planes = x.count / max(1, h * w)
        let src = x.storage.base, dst = out.storage.base
        let (t, fy, fx) = (transpose, flipY, flipX)
        Threads.parallelFor(planes) { p in
            let s = src + p * h * w, d = dst + p * h * w
            for i in 0..<oh {
                let a0 = fy ? oh - 1 - i : i
                for j in 0..<ow {
                    let b0 = fx ? ow - 1 - j : j
                    let (a, b) = t ? (b0, a0) : (a0, b0)
                    if inverse { d[a * inW + b] = s[i * ow + j] } else { d[i * ow + j] = s[a * inW + b] }
                }
            }
        }
        return out
    }
}
