import Foundation
import LucidCore

/// Exact percentiles with linear interpolation between order statistics, as `numpy.percentile`
/// (`method="linear"`): for `n` values sorted ascending, `q` picks position `q/100·(n−1)`.
///
/// NaNs are ignored. No sort and no copy of the data: a two-pass radix selection on the
/// order-preserving 32-bit keys of the floats (first histogram on the high 16 bits, then on the
/// low 16 bits of the few buckets holding the wanted ranks), parallel over `Threads.count`.
/// ```swift
/// let p = try percentiles(image.data, [1, 99.8])   // [p1, p99.8]
/// ```
public func percentiles(_ data: Tensor, _ qs: [Double]) throws -> [Float] {
    try data.withUnsafeBufferPointer { try percentiles($0, qs) }
}

/// Percentiles of raw values (see `percentiles(_:_:)` on a tensor).
public func percentiles(_ values: UnsafeBufferPointer<Float>, _ qs: [Double]) throws -> [Float] {
    for q in qs where !(0...100).contains(q) {
        throw ImagingError.invalidArgument(op: "percentiles", detail: "percentile \(q) outside 0...100")
    }
    guard !qs.isEmpty else { return [] }
    if values.count <= 8192 { return try smallPercentiles(values, qs) }
    let select = RadixSelect(values)
    guard select.count > 0 else {
        throw ImagingError.invalidArgument(op: "percentiles", detail: "no values (all NaN) among \(values.count) elements")
    }
    // Ranks needed: floor and floor+1 of each position.
    let n = select.count
    var positions: [(lo: Int, frac: Double)] = []
    var ranks = Set<Int>()
    for q in qs {
        let pos = q / 100 * Double(n - 1)
        let lo = min(Int(pos.rounded(.down)), n - 1)
        positions.append((lo, pos - Double(lo)))
        ranks.insert(lo)
        if lo + 1 < n { ranks.insert(lo + 1) }
    }
    let values = select.values(atRanks: Array(ranks))
    return positions.map { p in
        let a = Double(values[p.lo]!)
        guard p.frac > 0, let bv = values[p.lo + 1] else { return Float(a) }
        let b = Double(bv)
        return Float(a + (b - a) * p.frac)
    }
}

/// Small inputs: sorting a copy beats two 65536-bin histograms.
private func smallPercentiles(_ values: UnsafeBufferPointer<Float>, _ qs: [Double]) throws -> [Float] {
    let sorted = values.filter { !$0.isNaN }.sorted()
    guard !sorted.isEmpty else {
        throw ImagingError.invalidArgument(op: "percentiles", detail: "no values (all NaN) among \(values.count) elements")
    }
    let n = sorted.count
    return qs.map { q in
        let pos = q / 100 * Double(n - 1)
        let lo = min(Int(pos.rounded(.down)), n - 1)
        let frac = pos - Double(lo)
        guard frac > 0, lo + 1 < n else { return sorted[lo] }
        let a = Double(sorted[lo]), b = Double(sorted[lo + 1])
        return Float(a + (b - a) * frac)
    }
}

/// Rank selection over float keys by two 16-bit histogram passes.
private struct RadixSelect {
    let values: UnsafeBufferPointer<Float>
    /// Number of non-NaN values.
    let count: Int
    private let high: [Int]

    /// Order-preserving map of a non-NaN float to UInt32 (negative floats reversed).
    @inline(__always) static func key(_ v: Float) -> UInt32 {
        let b = v.bitPattern
        return (b & 0x8000_0000) != 0 ? ~b : b | 0x8000_0000
    }

    @inline(__always) static func value(_ k: UInt32) -> Float {
        Float(bitPattern: (k & 0x8000_0000) != 0 ? k & 0x7FFF_FFFF : ~k)
    }

    init(_ values: UnsafeBufferPointer<Float>) {
        self.values = values
        high = RadixSelect.highHistogram(values)
        count = high.reduce(0, +)
    }

    /// Sums per-part histograms of `bins` bins filled by `fill(range, counts)` in parallel.
    private static func histogram(_ n: Int, bins: Int,
                                  _ fill: (Range<Int>, UnsafeMutablePointer<UInt32>) -> Void) -> [Int] {
        // Parts of at most 2^31 elements keep UInt32 counts exact.
        let parts = max(Threads.count, (n >> 31) + 1, 1)
        var counts = [UInt32](repeating: 0, count: parts * bins)
        counts.withUnsafeMutableBufferPointer { all in
            let base = all.baseAddress!
            Threads.parallelFor(parts) { part in
                fill((n * part / parts)..<(n * (part + 1) / parts), base + part * bins)
            }
        }
        var total = [Int](repeating: 0, count: bins)
        for p in 0..<parts { for b in 0..<bins { total[b] += Int(counts[p * bins + b]) } }
        return total
    }

    /// Histogram of the high 16 key bits of the non-NaN values.
    private static func highHistogram(_ values: UnsafeBufferPointer<Float>) -> [Int] {
        let v = values.baseAddress!
        return histogram(values.count, bins: 65536) { r, h in
            for i in r where !v[i].isNaN { h[Int(key(v[i]) >> 16)] &+= 1 }
        }
    }

    /// The values of the given 0-based ranks (each below `count`).
    func values(atRanks ranks: [Int]) -> [Int: Float] {
        // Locate each rank's high bucket and its rank inside that bucket.
        var cumulative = [Int](repeating: 0, count: 65537)
        for b in 0..<65536 { cumulative[b + 1] = cumulative[b] + high[b] }
        var wanted: [(rank: Int, bucket: Int, inner: Int)] = []
        for r in ranks {
            var lo = 0, hi = 65536  // find b with cumulative[b] <= r < cumulative[b+1]
            while hi - lo > 1 {
                let mid = (lo + hi) / 2
                if cumulative[mid] <= r { lo = mid } else { hi = mid }
            }
            wanted.append((r, lo, r - cumulative[lo]))
        }
        let buckets = Array(Set(wanted.map(\.bucket))).sorted()
        var slot = [Int](repeating: -1, count: 65536)
        for (i, b) in buckets.enumerated() { slot[b] = i }
        // One pass: a 65536-bin histogram of the low key bits for each wanted bucket.
        let v = values.baseAddress!
        let low = slot.withUnsafeBufferPointer { slots in
            RadixSelect.histogram(values.count, bins: buckets.count * 65536) { r, h in
                for i in r where !v[i].isNaN {
                    let k = RadixSelect.key(v[i])
                    let s = slots[Int(k >> 16)]
                    if s >= 0 { h[s * 65536 + Int(k & 0xFFFF)] &+= 1 }
                }
            }
        }
        var result: [Int: Float] = [:]
        for (i, b) in buckets.enumerated() {
            for w in wanted where slot[w.bucket] == i {
                var acc = 0
                for l in 0..<65536 {
                    acc += low[i * 65536 + l]
                    if acc > w.inner {
                        result[w.rank] = RadixSelect.value(UInt32(b) << 16 | UInt32(l))
                        break
                    }
                }
            }
        }
        return result
    }
}
