import LucidCore

/// Reductions over axes with their vector-Jacobian products.
extension Variable {
    /// Sum over `axes` (all when nil).
    public func sum(axes: [Int]? = nil, keepDims: Bool = false) throws -> Variable {
        let x = value
        let ax = try x.reductionAxes(axes, op: "sum"), kept = x.reducedShape(ax, keepDims: true)
        return Variable.record(try x.sum(axes: ax, keepDims: keepDims), parents: [self], op: "sum") { g in
            [try g.reshaped(kept).broadcast(to: x.shape)]
        }
    }

    /// Mean over `axes` (all when nil).
    public func mean(axes: [Int]? = nil, keepDims: Bool = false) throws -> Variable {
        let x = value
        let ax = try x.reductionAxes(axes, op: "mean"), kept = x.reducedShape(ax, keepDims: true)
        let n = ax.reduce(1) { $0 * x.shape[$1] }
        return Variable.record(try x.mean(axes: ax, keepDims: keepDims), parents: [self], op: "mean") { g in
            [try (g * (1 / Float(Swift.max(n, 1)))).reshaped(kept).broadcast(to: x.shape)]
        }
    }

    /// Maximum over `axes` (all when nil); the gradient is shared equally among tied maxima.
    public func max(axes: [Int]? = nil, keepDims: Bool = false) throws -> Variable {
        let x = value
        let ax = try x.reductionAxes(axes, op: "max"), kept = x.reducedShape(ax, keepDims: true)
        let m = try x.max(axes: ax, keepDims: true)
        return Variable.record(try m.reshaped(x.reducedShape(ax, keepDims: keepDims)), parents: [self], op: "max") { g in
            let hit = try x.zipMap(m.broadcast(to: x.shape), op: "max backward") { $0 == $1 ? 1 : 0 }
            let share = try g.reshaped(kept) / hit.sum(axes: ax, keepDims: true)
            return [try hit * share]
        }
    }

    /// Variance over `axes` (population unless `unbiased`).
    public func variance(axes: [Int]? = nil, keepDims: Bool = false, unbiased: Bool = false) throws -> Variable {
        let x = value
        let ax = try x.reductionAxes(axes, op: "variance"), kept = x.reducedShape(ax, keepDims: true)
        let n = ax.reduce(1) { $0 * x.shape[$1] }
        let out = try x.variance(axes: ax, keepDims: keepDims, unbiased: unbiased)
        return Variable.record(out, parents: [self], op: "variance") { g in
            let centered = try x - x.mean(axes: ax, keepDims: true)
            let scale = 2 / Float(Swift.max(unbiased ? n - 1 : n, 1))
            return [try centered * (g.reshaped(kept) * scale)]
        }
    }
}
