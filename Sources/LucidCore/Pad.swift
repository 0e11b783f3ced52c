/// How `padded` fills the border.
public enum PadMode: Sendable, Equatable {
    /// Zeros.
    case zero
    /// Mirror without repeating the edge (PyTorch `reflect`): `[a b c]` padded by 2 → `c b [a b c] b a`.
    case reflect
}

/// Index maps of one padding: for each padded axis, output coordinate → input coordinate or −1.
private struct PadPlan {
    let first: Int              // first padded axis
    let outShape: [Int]
    let maps: [[Int]]           // one per padded axis
    let blocks: Int             // product of the unpadded leading extents
    let inBlock: Int, outBlock: Int

    init(shape: [Int], pads: [(Int, Int)], mode: PadMode, op: String) throws {
        guard pads.count <= shape.count else {
            throw TensorError.invalidArgument(op: op, detail: "\(pads.count) pad pairs for shape \(shape)")
        }
        first = shape.count - pads.count
        var out = shape
        var maps: [[Int]] = []
        for (k, (lo, hi)) in pads.enumerated() {
            let ax = first + k, n = shape[ax]
            guard lo >= 0 && hi >= 0 else {
                throw TensorError.invalidArgument(op: op, detail: "negative padding (\(lo), \(hi)) on axis \(ax) of shape \(shape)")
            }
            if mode == .reflect && (lo >= n || hi >= n) {
                throw TensorError.invalidArgument(op: op, detail: "reflect padding (\(lo), \(hi)) must be smaller than extent \(n) of axis \(ax) in shape \(shape)")
            }
            out[ax] = n + lo + hi
            maps.append((0..<out[ax]).map { j in
                let i = j - lo
                if i >= 0 && i < n { return i }
                if mode == .zero { return -1 }
                return i < 0 ? -i : 2 * (n - 1) - i
            })
        }
        outShape = out
        self.maps = maps
        blocks = shape[..<first].reduce(1, *)
        inBlock = shape[first...].reduce(1, *)
        outBlock = out[first...].reduce(1, *)
    }

    /// Input row (offset within a block, counting whole last-axis rows) of output row `r`, or nil.
    @inline(__always) func sourceRow(_ r: Int, inShape: [Int]) -> Int? {
        var rem = r, src = 0, scale = 1
        var k = maps.count - 2
        while k >= 0 {
            let n = outShape[first + k]
            let q = rem / n, j = rem - q * n
            let m = maps[k][j]
            if m < 0 { return nil }
            src += m * scale
            scale *= inShape[first + k]
            rem = q; k -= 1
        }
        return src
    }
}

extension Tensor {
    /// Pads the trailing `pads.count` axes: `pads[k] = (before, after)` applies to axis
    /// `rank − pads.count + k`. Reflect padding needs each pad smaller than the axis extent.
    public func padded(_ pads: [(Int, Int)], mode: PadMode) throws -> Tensor {
        let plan = try PadPlan(shape: shape, pads: pads, mode: mode, op: "pad")
        if pads.isEmpty || pads.allSatisfy({ $0 == (0, 0) }) { return self }
        let out = Tensor(uninitialized: plan.outShape)
        let inLast = shape[rank - 1], outLast = plan.outShape[rank - 1]
        let lastMap = plan.maps[plan.maps.count - 1], (lo, _) = pads[pads.count - 1]
        let rowsPerBlock = plan.outBlock / Swift.max(outLast, 1)
        let src = UnsafePointer(storage.base), dst = out.storage.base
        let inShape = shape
        lastMap.withUnsafeBufferPointer { lm in
            Threads.parallelChunks(plan.blocks * rowsPerBlock, minChunk: Swift.max(1, 8192 / Swift.max(outLast, 1))) { r in
                for t in r {
                    let b = t / rowsPerBlock, row = t - b * rowsPerBlock
                    let o = dst + b * plan.outBlock + row * outLast
                    guard let sr = plan.sourceRow(row, inShape: inShape) else {
                        o.update(repeating: 0, count: outLast); continue
                    }
                    let p = src + b * plan.inBlock + sr * inLast
                    for j in 0..<lo { o[j] = lm[j] < 0 ? 0 : p[lm[j]] }
                    (o + lo).update(from: p, count: inLast)
                    for j in (lo + inLast)..<outLast { o[j] = lm[j] < 0 ? 0 : p[lm[j]] }
                }
            }
        }
        return out
    }

    /// Gradient of `padded(pads, mode:)` with respect to its input of shape `inputShape`:
    /// the centre of `grad`, plus (reflect) the border gradients added to the mirrored elements.
    public static func padBackward(_ grad: Tensor, inputShape: [Int], pads: [(Int, Int)], mode: PadMode) throws -> Tensor {
        let plan = try PadPlan(shape: inputShape, pads: pads, mode: mode, op: "pad backward")
        guard plan.outShape == grad.shape else {
            throw TensorError.shapeMismatch(op: "pad backward", detail: "gradient \(grad.shape) vs padded \(plan.outShape)")
        }
        if pads.isEmpty || pads.allSatisfy({ $0 == (0, 0) }) { return grad }
        let out = Tensor(zeros: inputShape)
        let rank = inputShape.count
        let inLast = inputShape[rank - 1], outLast = plan.outShape[rank - 1]
        let lastMap = plan.maps[plan.maps.count - 1]
        let rowsPerBlock = plan.outBlock / Swift.max(outLast, 1)
        let src = UnsafePointer(grad.storage.base), dst = out.storage.base
        lastMap.withUnsafeBufferPointer { lm in
            // Blocks (unpadded leading indices) never share input elements: parallel over them.
            Threads.parallelChunks(plan.blocks) { r in
                for b in r {
                    for row in 0..<rowsPerBlock {
                        guard let sr = plan.sourceRow(row, inShape: inputShape) else { continue }
                        let p = src + b * plan.outBlock + row * outLast
                        let o = dst + b * plan.inBlock + sr * inLast
                        for j in 0..<outLast where lm[j] >= 0 { o[lm[j]] += p[j] }
                    }
                }
            }
        }
        return out
    }
}
