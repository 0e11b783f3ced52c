import Foundation
import LucidCore

/// Element-wise arithmetic on variables (NumPy broadcasting; gradients summed back to each
/// operand's shape).
extension Variable {
    /// Sum with broadcasting.
    public static func + (a: Variable, b: Variable) throws -> Variable {
        let sa = a.shape, sb = b.shape, ga = a.requiresGrad, gb = b.requiresGrad
        return Variable.record(try a.value + b.value, parents: [a, b], op: "add") { g in
            [ga ? try Tensor.reduce(g, toShape: sa) : nil, gb ? try Tensor.reduce(g, toShape: sb) : nil]
        }
    }

    /// Difference with broadcasting.
    public static func - (a: Variable, b: Variable) throws -> Variable {
        let sa = a.shape, sb = b.shape, ga = a.requiresGrad, gb = b.requiresGrad
        return Variable.record(try a.value - b.value, parents: [a, b], op: "sub") { g in
            [ga ? try Tensor.reduce(g, toShape: sa) : nil, gb ? try Tensor.reduce(-g, toShape: sb) : nil]
        }
    }

    /// Product with broadcasting.
    public static func * (a: Variable, b: Variable) throws -> Variable {
        let x = a.value, y = b.value, ga = a.requiresGrad, gb = b.requiresGrad
        return Variable.record(try x * y, parents: [a, b], op: "mul") { g in
            [ga ? try Tensor.reduce(g * y, toShape: x.shape) : nil,
             gb ? try Tensor.reduce(g * x, toShape: y.shape) : nil]
        }
    }

    /// Quotient with broadcasting.
    public static func / (a: Variable, b: Variable) throws -> Variable {
        let x = a.value, y = b.value, ga = a.requiresGrad, gb = b.requiresGrad
        let out = try x / y
        return Variable.record(out, parents: [a, b], op: "div") { g in
            let gy = try g / y
            return [ga ? try Tensor.reduce(gy, toShape: x.shape) : nil,
                    gb ? try Tensor.reduce(-(try gy * out), toShape: y.shape) : nil]
        }
    }

    /// Adds a constant.
    public static func + (a: Variable, s: Float) -> Variable {
        Variable.record(a.value + s, parents: [a], op: "add scalar") { g in [g] }
    }
    /// Adds a constant.
    public static func + (s: Float, a: Variable) -> Variable { a + s }
    /// Subtracts a constant.
    public static func - (a: Variable, s: Float) -> Variable { a + (-s) }
    /// `s − a`.
    public static func - (s: Float, a: Variable) -> Variable {
        Variable.record(s - a.value, parents: [a], op: "rsub scalar") { g in [-g] }
    }
    /// Multiplies by a constant.
    public static func * (a: Variable, s: Float) -> Variable {
        Variable.record(a.value * s, parents: [a], op: "mul scalar") { g in [g * s] }
    }
    /// Multiplies by a constant.
    public static func * (s: Float, a: Variable) -> Variable { a * s }
    /// Divides by a constant.
    public static func / (a: Variable, s: Float) -> Variable { a * (1 / s) }
    /// `s / a`.
    public static func / (s: Float, a: Variable) -> Variable {
        let x = a.value
        return Variable.record(s / x, parents: [a], op: "rdiv scalar") { g in
            [try g.zipMap(x, op: "rdiv scalar backward") { g, x in -s * g / (x * x) }]
        }
    }
    /// Negation.
    public static prefix func - (a: Variable) -> Variable {
        Variable.record(-a.value, parents: [a], op: "neg") { g in [-g] }
    }

    /// `eˣ`.
    public func exp() -> Variable {
        let out = value.exp()
        return Variable.record(out, parents: [self], op: "exp") { g in
            [try g.zipMap(out, op: "exp backward") { $0 * $1 }]
        }
    }
    /// Natural logarithm.
    public func log() -> Variable {
        let x = value
        return Variable.record(x.log(), parents: [self], op: "log") { g in
            [try g.zipMap(x, op: "log backward") { $0 / $1 }]
        }
    }
    /// Square root.
    public func sqrt() -> Variable {
        let out = value.sqrt()
        return Variable.record(out, parents: [self], op: "sqrt") { g in
            [try g.zipMap(out, op: "sqrt backward") { 0.5 * $0 / $1 }]
        }
    }
    /// `xᵖ`.
    public func pow(_ p: Float) -> Variable {
        let x = value
        return Variable.record(x.pow(p), parents: [self], op: "pow") { g in
            [try g.zipMap(x, op: "pow backward") { g, x in
                p == 2 ? 2 * x * g : p * Foundation.pow(x, p - 1) * g
            }]
        }
    }
    /// Absolute value (gradient `sign(x)`, 0 at 0).
    public func abs() -> Variable {
        let x = value
        return Variable.record(x.abs(), parents: [self], op: "abs") { g in
            [try g.zipMap(x, op: "abs backward") { g, x in x > 0 ? g : (x < 0 ? -g : 0) }]
        }
    }
    /// Clamps into `[min, max]`; the gradient passes where `min ≤ x ≤ max`.
    public func clamped(min lo: Float? = nil, max hi: Float? = nil) -> Variable {
        let x = value, l = lo ?? -.infinity, h = hi ?? .infinity
        return Variable.record(x.clamped(min: lo, max: hi), parents: [self], op: "clamp") { g in
            [try g.zipMap(x, op: "clamp backward") { g, x in x >= l && x <= h ? g : 0 }]
        }
    }

    /// Picks `a` where `cond != 0`, else `b` (broadcasting); `cond` gets no gradient.
    public static func `where`(_ cond: Tensor, _ a: Variable, _ b: Variable) throws -> Variable {
        let out = try Tensor.where(cond, a.value, b.value)
        let sa = a.shape, sb = b.shape, ga = a.requiresGrad, gb = b.requiresGrad
        return Variable.record(out, parents: [a, b], op: "where") { g in
            let zero = Tensor(zeros: [])
            return [ga ? try Tensor.reduce(Tensor.where(cond, g, zero), toShape: sa) : nil,
                    gb ? try Tensor.reduce(Tensor.where(cond, zero, g), toShape: sb) : nil]
        }
    }
}
