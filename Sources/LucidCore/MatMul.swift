import COpenBLAS

/// Batched matrix product `op(a) · op(b)` on cblas_sgemm.
///
/// `a` is `[..., M, K]` (`[..., K, M]` with `transposeA`), `b` is `[..., K, N]` (`[..., N, K]`
/// with `transposeB`); the batch axes broadcast (NumPy rules). Both operands need rank ≥ 2.
/// ```swift
/// let c = try matmul(a, b, transposeB: true)   // a [2, 5, 3], b [4, 3] → [2, 5, 4]
/// ```
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) throws -> Tensor {
    guard a.rank >= 2, b.rank >= 2 else {
        throw TensorError.invalidArgument(op: "matmul", detail: "operands need rank >= 2, got \(a.shape) and \(b.shape)")
    }
    let m = transposeA ? a.shape[a.rank - 1] : a.shape[a.rank - 2]
    let ka = transposeA ? a.shape[a.rank - 2] : a.shape[a.rank - 1]
    let kb = transposeB ? b.shape[b.rank - 1] : b.shape[b.rank - 2]
    let n = transposeB ? b.shape[b.rank - 2] : b.shape[b.rank - 1]
    guard ka == kb else {
        throw TensorError.shapeMismatch(op: "matmul", detail: "\(a.shape)\(transposeA ? "ᵀ" : "") vs \(b.shape)\(transposeB ? "ᵀ" : ""): inner extents \(ka) and \(kb) differ")
    }
    let k = ka
    let aBatch = Array(a.shape.dropLast(2)), bBatch = Array(b.shape.dropLast(2))
    let batch: [Int]
    do { batch = try Tensor.broadcastShape(aBatch, bBatch, op: "matmul") } catch {
        throw TensorError.shapeMismatch(op: "matmul", detail: "batch axes of \(a.shape) vs \(b.shape)")
    }
    let out = Tensor(zeros: batch + [m, n])
    if out.count == 0 || k == 0 { return out }
    let pa = UnsafePointer(a.storage.base), pb = UnsafePointer(b.storage.base), pc = out.storage.base
    let lda = Int32(transposeA ? m : k), ldb = Int32(transposeB ? k : n)
    let ta = transposeA ? CblasTrans : CblasNoTrans, tb = transposeB ? CblasTrans : CblasNoTrans

    // One GEMM when b is shared and a's batch folds into its rows.
    if bBatch.allSatisfy({ $0 == 1 }) && !transposeA && aBatch == batch {
        let rows = batch.reduce(1, *) * m
        Threads.prepareBLAS()
        cblas_sgemm(CblasRowMajor, ta, tb, Int32(rows), Int32(n), Int32(k), 1, pa, lda, pb, ldb, 0, pc, Int32(n))
        return out
    }
    let plan = BroadcastPlan(a: aBatch, b: bBatch, out: batch)
    let count = batch.reduce(1, *)
    let aMat = m * k, bMat = k * n, cMat = m * n
    // Batch offset (in matrices) of each operand for batch index i.
    @inline(__always) func offsets(_ i: Int) -> (Int, Int) {
        let row = plan.inner > 0 ? i / plan.inner : 0, j = i - row * plan.inner
        let (oa, ob) = plan.offsets(row: row)
        return (oa + j * plan.aInner, ob + j * plan.bInner)
    }
    let gemm = { (i: Int) in
        let (oa, ob) = offsets(i)
        cblas_sgemm(CblasRowMajor, ta, tb, Int32(m), Int32(n), Int32(k), 1, pa + oa * aMat, lda,
                    pb + ob * bMat, ldb, 0, pc + i * cMat, Int32(n))
    }
    if count >= 2 && m * n * k <= 128 * 128 * 128 {
        Threads.parallelFor(count, gemm)
    } else {
        Threads.prepareBLAS()
        for i in 0..<count { gemm(i) }
    }
    return out
}
