import LucidCore

/// Shape changes with their vector-Jacobian products.
extension Variable {
    /// The same elements under a new shape (one extent may be −1).
    public func reshaped(_ shape: [Int]) throws -> Variable {
        let s = self.shape
        return Variable.record(try value.reshaped(shape), parents: [self], op: "reshape") { g in [try g.reshaped(s)] }
    }

    /// Reorders axes: output axis `i` is input axis `axes[i]`.
    public func permuted(_ axes: [Int]) throws -> Variable {
        let out = try value.permuted(axes)
        var inverse = [Int](repeating: 0, count: axes.count)
        for (i, a) in axes.enumerated() { inverse[a] = i }
        return Variable.record(out, parents: [self], op: "permute") { g in [try g.permuted(inverse)] }
    }

    /// The elements with index in `range` along `axis`.
    public func slice(axis: Int, range: Range<Int>) throws -> Variable {
        let out = try value.slice(axis: axis, range: range)
        let rank = self.shape.count, ax = axis < 0 ? axis + rank : axis, n = self.shape[ax]
        let pads = [(range.lowerBound, n - range.upperBound)] + [(Int, Int)](repeating: (0, 0), count: rank - ax - 1)
        return Variable.record(out, parents: [self], op: "slice") { g in [try g.padded(pads, mode: .zero)] }
    }
}

/// Joins variables along `axis`; each gets back its slice of the gradient.
public func concat(_ xs: [Variable], axis: Int) throws -> Variable {
    let out = try Tensor.concat(xs.map(\.value), axis: axis)
    let ax = axis < 0 ? axis + out.rank : axis
    let extents = xs.map { $0.shape[ax] }, needs = xs.map(\.requiresGrad)
    return Variable.record(out, parents: xs, op: "concat") { g in
        var start = 0
        return try zip(extents, needs).map { n, need in
            defer { start += n }
            return need ? try g.slice(axis: ax, range: start..<(start + n)) : nil
        }
    }
}

/// Pads the trailing `pads.count` axes of `x` (see `Tensor.padded(_:mode:)`).
public func pad(_ x: Variable, _ pads: [(Int, Int)], mode: PadMode) throws -> Variable {
    let shape = x.shape
    return Variable.record(try x.value.padded(pads, mode: mode), parents: [x], op: "pad") { g in
        [try Tensor.padBackward(g, inputShape: shape, pads: pads, mode: mode)]
    }
}
