import Foundation
import LucidCore

/// Running statistics of a batch-norm layer (PyTorch buffers `running_mean`, `running_var`,
/// `num_batches_tracked`).
public final class BatchNormStatistics {
    /// Running mean per channel.
    public var mean: Tensor
    /// Running (unbiased) variance per channel.
    public var variance: Tensor
    /// Number of training batches folded into the running statistics.
    public var batchesTracked: Int

    /// Fresh statistics for `channels` channels: mean 0, variance 1.
    public init(channels: Int) {
        mean = Tensor(zeros: [channels])
        variance = Tensor(ones: [channels])
        batchesTracked = 0
    }
}

// MARK: - Run kernels (16 lanes, Float blocks folded into Float64 totals)

private typealias V16 = SIMD16<Float>


/// Adds Σ(x − shift) and Σ(x − shift)² over `n` elements to `s1`, `s2`.
@inline(__always)
private func accumulateMoments(_ p: UnsafePointer<Float>, _ n: Int, shift: Float, _ s1: inout Double, _ s2: inout Double) {
    var i = 0
    let k = V16(repeating: shift)
    while i < n {
        let end = Swift.min(n, i + 2048)
        var a1 = V16(), a2 = V16()
        while i + 16 <= end {
            let d = load16(p, i) - k
            a1 += d; a2 = a2.addingProduct(d, d)
            i += 16
        }
        var t1: Float = 0, t2: Float = 0
        while i < end { let d = p[i] - shift; t1 += d; t2 += d * d; i += 1 }
        s1 += Double(a1.sum() + t1); s2 += Double(a2.sum() + t2)
    }
}

/// Adds Σg and Σg·(x − mean) over `n` elements to `sg`, `sgx`.
@inline(__always)
private func accumulateGradSums(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int, mean: Float,
                                _ sg: inout Double, _ sgx: inout Double) {
    var i = 0
    let m = V16(repeating: mean)
    while i < n {
        let end = Swift.min(n, i + 2048)
        var a1 = V16(), a2 = V16()
        while i + 16 <= end {
            let gv = load16(g, i)
            a1 += gv; a2 = a2.addingProduct(gv, load16(x, i) - m)
            i += 16
        }
        var t1: Float = 0, t2: Float = 0
        while i < end { t1 += g[i]; t2 += g[i] * (x[i] - mean); i += 1 }
        sg += Double(a1.sum() + t1); sgx += Double(a2.sum() + t2)
    }
}

/// `dst = a·src + b` over `n` elements.
@inline(__always)
private func affineRun(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int, _ a: Float, _ b: Float) {
    var i = 0
    let av = V16(repeating: a), bv = V16(repeating: b)
    while i + 16 <= n { store16(bv.addingProduct(load16(src, i), av), dst, i); i += 16 }
    while i < n { dst[i] = src[i] * a + b; i += 1 }
}

/// `dst = a·g + b·x + c` over `n` elements.
@inline(__always)
private func combineRun(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
                        _ n: Int, _ a: Float, _ b: Float, _ c: Float) {
    var i = 0
    let av = V16(repeating: a), bv = V16(repeating: b), cv = V16(repeating: c)
    while i + 16 <= n { store16((cv + load16(g, i) * av) + load16(x, i) * bv, dst, i); i += 16 }
    while i < n { dst[i] = a * g[i] + b * x[i] + c; i += 1 }
}

/// Checks an optional per-channel parameter has shape `[c]`.
private func checkChannels(_ v: Variable?, _ c: Int, _ name: String, op: String, input: [Int]) throws {
    if let v, v.shape != [c] {
        throw TensorError.shapeMismatch(op: op, detail: "\(name) \(v.shape) vs input \(input) (expected [\(c)])")
    }
}

// MARK: - Batch norm

/// Batch normalization over axis 1 of `x` (`[N, C, ...]`, rank ≥ 2), PyTorch semantics.
///
/// Training uses the batch statistics (biased variance) and folds them into `statistics`
/// (`running = (1 − momentum)·running + momentum·batch`, unbiased variance); evaluation uses the
/// running statistics. Forward and backward are fused per channel. In a training step whose
/// batch is split over processes (`Autograd.splitBatch`), the statistics are the whole batch's.
public func batchNorm(_ x: Variable, weight: Variable?, bias: Variable?, statistics: BatchNormStatistics,
                      training: Bool, momentum: Float = 0.1, eps: Float = 1e-5) throws -> Variable {
    let shape = x.shape
    guard shape.count >= 2 else {
        throw TensorError.invalidArgument(op: "batchNorm", detail: "input \(shape) needs rank >= 2 ([N, C, ...])")
    }
    let n = shape[0], c = shape[1], s = shape[2...].reduce(1, *), m = n * s
    try checkChannels(weight, c, "weight", op: "batchNorm", input: shape)
    try checkChannels(bias, c, "bias", op: "batchNorm", input: shape)
    guard statistics.mean.shape == [c], statistics.variance.shape == [c] else {
        throw TensorError.shapeMismatch(op: "batchNorm", detail: "running statistics \(statistics.mean.shape) vs input \(shape) (expected [\(c)])")
    }
    if training && m <= 1 {
        throw TensorError.invalidArgument(op: "batchNorm", detail: "training needs more than one value per channel, input \(shape)")
    }
    let xv = x.value, blocks = n * c
    let meanT = Tensor(uninitialized: [c]), invT = Tensor(uninitialized: [c]), batchVar = Tensor(zeros: [c])
    let out = Tensor(uninitialized: shape)
    let src = UnsafePointer(xv.storage.base), dst = out.storage.base
    let mp = meanT.storage.base, ip = invT.storage.base, bv = batchVar.storage.base
    // A batch split over processes (`Autograd.batchGroup`) is normalized with the whole batch's
    // statistics (synchronized batch normalization): the moments are summed over the processes.
    let group = training ? Autograd.batchGroup : nil
    var count = m
    if training {
        // Per-(sample, channel) moments in parallel, shifted by the channel's first element (by
        // its running mean, the same in every process, when the batch is split).
        let runningMean = UnsafePointer(statistics.mean.storage.base)
        let shifts = (0..<c).map { group == nil ? src[$0 * s] : runningMean[$0] }
        let moments = perBlockSums(blocks) { k, s1, s2 in
            accumulateMoments(src + k * s, s, shift: shifts[k % c], &s1, &s2)
        }
        var totals = [Double](repeating: 0, count: 2 * c)
        for ch in 0..<c {
            for b in 0..<n { totals[ch] += moments[2 * (b * c + ch)]; totals[c + ch] += moments[2 * (b * c + ch) + 1] }
        }
        if let group {
            let sums = try group.sum(totals + [Double(m)])
            totals = Array(sums[0..<(2 * c)])
            count = Int(sums[2 * c])
        }
        for ch in 0..<c {
            let mu = totals[ch] / Double(count), v = Swift.max(totals[c + ch] / Double(count) - mu * mu, 0)
            mp[ch] = Float(Double(shifts[ch]) + mu)
            ip[ch] = Float(1 / (v + Double(eps)).squareRoot())
            bv[ch] = Float(v)
        }
    } else {
        let rm = UnsafePointer(statistics.mean.storage.base), rv = UnsafePointer(statistics.variance.storage.base)
        for ch in 0..<c { mp[ch] = rm[ch]; ip[ch] = 1 / (rv[ch] + eps).squareRoot() }
    }
    let gamma = weight.map { UnsafePointer($0.value.storage.base) }, beta = bias.map { UnsafePointer($0.value.storage.base) }
    let scale = (0..<c).map { (gamma?[$0] ?? 1) * ip[$0] }
    let offset = (0..<c).map { (beta?[$0] ?? 0) - mp[$0] * scale[$0] }
    Threads.parallelFor(blocks) { k in
        affineRun(src + k * s, dst + k * s, s, scale[k % c], offset[k % c])
    }
    if training {
        let f = Float(count) / Float(count - 1)
        statistics.mean = try statistics.mean * (1 - momentum) + meanT * momentum
        statistics.variance = try statistics.variance * (1 - momentum) + batchVar * (momentum * f)
        statistics.batchesTracked += 1
    }
    let needX = x.requiresGrad, needW = weight?.requiresGrad ?? false, needB = bias?.requiresGrad ?? false
    var parents = [x]
    if let weight { parents.append(weight) }
    if let bias { parents.append(bias) }
    let hasW = weight != nil, hasB = bias != nil
    let gammaT = weight?.value
    return Variable.record(out, parents: parents, op: "batchNorm") { g in
        // Pointers re-derived from the captured tensors, which keep their storage alive.
        let gp = UnsafePointer(g.storage.base), src = UnsafePointer(xv.storage.base)
        let gamma = gammaT.map { UnsafePointer($0.storage.base) }
        let mp = UnsafePointer(meanT.storage.base), ip = UnsafePointer(invT.storage.base)
        var sg = [Double](repeating: 0, count: c), sgx = [Double](repeating: 0, count: c)
        if training || needW || needB {
            let sums = perBlockSums(blocks) { k, a, b in
                accumulateGradSums(gp + k * s, src + k * s, s, mean: mp[k % c], &a, &b)
            }
            for b in 0..<n { for ch in 0..<c { sg[ch] += sums[2 * (b * c + ch)]; sgx[ch] += sums[2 * (b * c + ch) + 1] } }
        }
        // The parameters' gradients are this process's share; the input's needs the whole batch's sums.
        let dw = try Tensor(shape: [c], scalars: (0..<c).map { Float(sgx[$0]) * ip[$0] })
        let db = try Tensor(shape: [c], scalars: sg.map { Float($0) })
        if let group, needX {
            let sums = try group.sum(sg + sgx)
            sg = Array(sums[0..<c])
            sgx = Array(sums[c...])
        }
        var dx: Tensor?
        if needX {
            // dx = a·g + b·x + c per channel (b = c = 0 in evaluation).
            var ca = [Float](repeating: 0, count: c), cb = ca, cc = ca
            for ch in 0..<c {
                let inv = ip[ch]
                ca[ch] = (gamma?[ch] ?? 1) * inv
                if training {
                    cb[ch] = -ca[ch] * inv * inv * Float(sgx[ch] / Double(count))
                    cc[ch] = -ca[ch] * Float(sg[ch] / Double(count)) - cb[ch] * mp[ch]
                }
            }
            let t = Tensor(uninitialized: shape)
            let dxp = t.storage.base
            Threads.parallelFor(blocks) { k in
                let ch = k % c
                combineRun(gp + k * s, src + k * s, dxp + k * s, s, ca[ch], cb[ch], cc[ch])
            }
            dx = t
        }
        var grads: [Tensor?] = [dx]
        if hasW { grads.append(needW ? dw : nil) }
        if hasB { grads.append(needB ? db : nil) }
        return grads
    }
}

/// Runs `body(k, &a, &b)` for every block `k < blocks` in parallel; returns `[a₀, b₀, a₁, b₁, …]`.
private func perBlockSums(_ blocks: Int, _ body: (Int, inout Double, inout Double) -> Void) -> [Double] {
    var sums = [Double](repeating: 0, count: 2 * blocks)
    sums.withUnsafeMutableBufferPointer { buf in
        let p = buf.baseAddress!
        Threads.parallelFor(blocks) { k in
            var a = 0.0, b = 0.0
            body(k, &a, &b)
            p[2 * k] = a; p[2 * k + 1] = b
        }
    }
    return sums
}

// MARK: - Group / instance norm

/// Shared group normalization: statistics over each (sample, group of channels).
private func groupNormCore(_ x: Variable, groups: Int, weight: Variable?, bias: Variable?, eps: Float, op: String) throws -> Variable {
    let shape = x.shape
    guard shape.count >= 2 else {
        throw TensorError.invalidArgument(op: op, detail: "input \(shape) needs rank >= 2 ([N, C, ...])")
    }
    let n = shape[0], c = shape[1], s = shape[2...].reduce(1, *)
    guard groups > 0, c % groups == 0 else {
        throw TensorError.invalidArgument(op: op, detail: "\(groups) groups do not divide \(c) channels of input \(shape)")
    }
    try checkChannels(weight, c, "weight", op: op, input: shape)
    try checkChannels(bias, c, "bias", op: op, input: shape)
    let cg = c / groups, m = cg * s
    let xv = x.value
    let out = Tensor(uninitialized: shape)
    let stats = Tensor(uninitialized: [n * groups, 2])   // mean, 1/σ per (sample, group)
    let src = UnsafePointer(xv.storage.base), dst = out.storage.base, st = stats.storage.base
    let gamma = weight.map { UnsafePointer($0.value.storage.base) }, beta = bias.map { UnsafePointer($0.value.storage.base) }
    Threads.parallelFor(n * groups) { blk in
        let base = blk * m
        let shift = m > 0 ? src[base] : 0
        var s1 = 0.0, s2 = 0.0
        accumulateMoments(src + base, m, shift: shift, &s1, &s2)
        let mu = s1 / Double(Swift.max(m, 1)), v = Swift.max(s2 / Double(Swift.max(m, 1)) - mu * mu, 0)
        let mean = Float(Double(shift) + mu), inv = Float(1 / (v + Double(eps)).squareRoot())
        st[2 * blk] = mean; st[2 * blk + 1] = inv
        let c0 = (blk % groups) * cg
        for k in 0..<cg {
            let a = (gamma?[c0 + k] ?? 1) * inv, b = (beta?[c0 + k] ?? 0) - mean * a
            affineRun(src + base + k * s, dst + base + k * s, s, a, b)
        }
    }
    let gammaT = weight?.value
    let needX = x.requiresGrad, needW = weight?.requiresGrad ?? false, needB = bias?.requiresGrad ?? false
    var parents = [x]
    if let weight { parents.append(weight) }
    if let bias { parents.append(bias) }
    let hasW = weight != nil, hasB = bias != nil
    return Variable.record(out, parents: parents, op: op) { g in
        let gp = UnsafePointer(g.storage.base), stp = UnsafePointer(stats.storage.base), src = UnsafePointer(xv.storage.base)
        let dx = Tensor(uninitialized: shape)
        let partial = Tensor(uninitialized: [n, c, 2])      // Σg·x̂, Σg per (sample, channel)
        let dxp = dx.storage.base, pp = partial.storage.base
        let gam = gammaT.map { UnsafePointer($0.storage.base) }
        Threads.parallelFor(n * groups) { blk in
            let base = blk * m, mean = stp[2 * blk], inv = stp[2 * blk + 1]
            let sample = blk / groups, c0 = (blk % groups) * cg
            var sumD = 0.0, sumDX = 0.0   // Σ γ·g and Σ γ·g·x̂ over the group
            for k in 0..<cg {
                var sg = 0.0, sgx = 0.0
                accumulateGradSums(gp + base + k * s, src + base + k * s, s, mean: mean, &sg, &sgx)
                let w = Double(gam?[c0 + k] ?? 1)
                sumD += w * sg; sumDX += w * sgx * Double(inv)
                pp[2 * (sample * c + c0 + k)] = Float(sgx) * inv
                pp[2 * (sample * c + c0 + k) + 1] = Float(sg)
            }
            guard needX else { return }
            let aMean = Float(sumD / Double(m)), bMean = Float(sumDX / Double(m))
            let bcoef = -inv * inv * bMean
            let ccoef = -inv * aMean - bcoef * mean
            for k in 0..<cg {
                let a = (gam?[c0 + k] ?? 1) * inv
                combineRun(gp + base + k * s, src + base + k * s, dxp + base + k * s, s, a, bcoef, ccoef)
            }
        }
        var dw = Tensor(zeros: [c]), db = Tensor(zeros: [c])
        dw.withUnsafeMutableBufferPointer { w in
            db.withUnsafeMutableBufferPointer { b in
                for i in 0..<n { for ch in 0..<c { w[ch] += pp[2 * (i * c + ch)]; b[ch] += pp[2 * (i * c + ch) + 1] } }
            }
        }
        var grads: [Tensor?] = [needX ? dx : nil]
        if hasW { grads.append(needW ? dw : nil) }
        if hasB { grads.append(needB ? db : nil) }
        return grads
    }
}

/// Group normalization of `x` (`[N, C, ...]`): each sample's channels split into `groups`
/// groups normalized together (biased variance), then a per-channel affine (PyTorch `GroupNorm`).
public func groupNorm(_ x: Variable, groups: Int, weight: Variable?, bias: Variable?, eps: Float = 1e-5) throws -> Variable {
    try groupNormCore(x, groups: groups, weight: weight, bias: bias, eps: eps, op: "groupNorm")
}

/// Instance normalization: each (sample, channel) normalized over its spatial extent
/// (PyTorch `InstanceNorm` without running statistics), then an optional per-channel affine.
public func instanceNorm(_ x: Variable, weight: Variable?, bias: Variable?, eps: Float = 1e-5) throws -> Variable {
    guard x.shape.count >= 2 else {
        throw TensorError.invalidArgument(op: "instanceNorm", detail: "input \(x.shape) needs rank >= 2 ([N, C, ...])")
    }
    return try groupNormCore(x, groups: x.shape[1], weight: weight, bias: bias, eps: eps, op: "instanceNorm")
}
