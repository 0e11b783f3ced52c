import Foundation

/// Shape arithmetic of an N-d convolution (1D/2D/3D all run as 3D with unit leading axes).
struct ConvGeometry {
    var batch, cin, cout: Int
    var iD, iH, iW: Int
    var kD, kH, kW: Int
    var sD, sH, sW: Int
    var pD, pH, pW: Int
    var dD, dH, dW: Int
    var oD, oH, oW: Int

    var taps: Int { kD * kH * kW }
    /// Rows of the column matrix: `cin · taps`.
    var k: Int { cin * taps }
    var inPlane: Int { iD * iH * iW }
    var outPlane: Int { oD * oH * oW }
    /// Output "rows" (`oD·oH`), each `oW` pixels long: the unit of column chunks.
    var outRows: Int { oD * oH }

    /// Builds the geometry; `spatialIn`, `kernel`, … have one entry per spatial axis (1…3).
    /// The output extent is `(in + 2p − d(k−1) − 1)/s + 1` per axis (the caller validates).
    init(batch: Int, cin: Int, cout: Int, spatialIn: [Int], kernel: [Int], stride: [Int],
         padding: [Int], dilation: [Int]) {
        func lead(_ a: [Int], _ fill: Int) -> [Int] { [Int](repeating: fill, count: 3 - a.count) + a }
        let i = lead(spatialIn, 1), kk = lead(kernel, 1), s = lead(stride, 1)
        let p = lead(padding, 0), d = lead(dilation, 1)
        self.batch = batch; self.cin = cin; self.cout = cout
        (iD, iH, iW) = (i[0], i[1], i[2])
        (kD, kH, kW) = (kk[0], kk[1], kk[2])
        (sD, sH, sW) = (s[0], s[1], s[2])
        (pD, pH, pW) = (p[0], p[1], p[2])
        (dD, dH, dW) = (d[0], d[1], d[2])
        func out(_ n: Int, _ k: Int, _ s: Int, _ p: Int, _ d: Int) -> Int { (n + 2 * p - d * (k - 1) - 1) / s + 1 }
        oD = out(iD, kD, sD, pD, dD)
        oH = out(iH, kH, sH, pH, dH)
        oW = out(iW, kW, sW, pW, dW)
    }

    /// Output rows per column chunk so that one chunk holds about `targetFloats` elements.
    func rowsPerChunk(targetFloats: Int = 1 << 18) -> Int {
        max(1, min(outRows, targetFloats / max(1, k * oW)))
    }

    /// Range of output columns `ow` whose input column `ow·sW − pW + c·dW` lies inside the image.
    @inline(__always) func validColumns(tapW c: Int) -> (Int, Int) {
        let off = c * dW - pW
        var lo = off >= 0 ? 0 : (-off + sW - 1) / sW
        var hi = iW - 1 - off < 0 ? 0 : (iW - 1 - off) / sW + 1
        lo = min(lo, oW)
        hi = max(lo, min(hi, oW))
        return (lo, hi)
    }

    /// Writes columns of output rows `r0..<r1` of one image into `col` (`k` rows, leading
    /// dimension `ld`): `col[(ci, a, b, c), pixel] = x[ci, od·sD − pD + a·dD, …]` or 0 outside.
    /// With `channels`, only the rows of those input channels are written.
    func im2col(_ x: UnsafePointer<Float>, rows r0: Int, _ r1: Int, into col: UnsafeMutablePointer<Float>, ld: Int,
                channels: Range<Int>? = nil) {
        let channels = channels ?? 0..<cin
        var row = channels.lowerBound * taps
        for ci in channels {
            let xc = x + ci * inPlane
            for a in 0..<kD {
                for b in 0..<kH {
                    for c in 0..<kW {
                        let dst = col + row * ld
                        row += 1
                        let (lo, hi) = validColumns(tapW: c)
                        let offW = c * dW - pW
                        for r in r0..<r1 {
                            let od = r / oH, oh = r - od * oH
                            let zd = od * sD - pD + a * dD, zh = oh * sH - pH + b * dH
                            let out = dst + (r - r0) * oW
                            if zd < 0 || zd >= iD || zh < 0 || zh >= iH || lo >= hi {
                                out.initialize(repeating: 0, count: oW)
                                continue
                            }
                            let src = xc + (zd * iH + zh) * iW + offW
                            if lo > 0 { out.initialize(repeating: 0, count: lo) }
                            if sW == 1 {
                                (out + lo).update(from: src + lo, count: hi - lo)
                            } else {
                                for ow in lo..<hi { out[ow] = src[ow * sW] }
                            }
                            if hi < oW { (out + hi).initialize(repeating: 0, count: oW - hi) }
                        }
                    }
                }
            }
        }
    }

    /// Adds columns of output rows `r0..<r1` back into one image `dx` (the adjoint of `im2col`).
    func col2im(_ col: UnsafePointer<Float>, ld: Int, rows r0: Int, _ r1: Int, into dx: UnsafeMutablePointer<Float>) {
        var row = 0
        for ci in 0..<cin {
            let xc = dx + ci * inPlane
            for a in 0..<kD {
                for b in 0..<kH {
                    for c in 0..<kW {
                        let srcRow = col + row * ld
                        row += 1
                        let (lo, hi) = validColumns(tapW: c)
                        if lo >= hi { continue }
                        let offW = c * dW - pW
                        for r in r0..<r1 {
                            let od = r / oH, oh = r - od * oH
                            let zd = od * sD - pD + a * dD, zh = oh * sH - pH + b * dH
                            if zd < 0 || zd >= iD || zh < 0 || zh >= iH { continue }
                            let src = srcRow + (r - r0) * oW
                            let dst = xc + (zd * iH + zh) * iW + offW
                            if sW == 1 {
                                for ow in lo..<hi { dst[ow] += src[ow] }
                            } else {
                                for ow in lo..<hi { dst[ow * sW] += src[ow] }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Reusable scratch buffers (column chunks, padded grids), keyed by rounded size (thread-safe).
enum ScratchPool {
    nonisolated(unsafe) private static var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private static let lock = NSLock()

    /// A buffer of at least `count` floats (contents undefined); give it back with `recycle`.
    static func take(_ count: Int) -> (UnsafeMutablePointer<Float>, Int) {
        let size = (max(count, 1) + 4095) & ~4095
        lock.lock()
        if let p = free[size]?.popLast() { lock.unlock(); return (p, size) }
        lock.unlock()
        return (.allocate(capacity: size), size)
    }

    /// Returns a buffer from `take` to the pool (at most 8 kept per size).
    static func recycle(_ p: UnsafeMutablePointer<Float>, size: Int) {
        lock.lock(); defer { lock.unlock() }
        if free[size, default: []].count < 8 { free[size, default: []].append(p) } else { p.deallocate() }
    }

    /// Runs `body` with a scratch buffer of at least `count` floats.
    static func with<R>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        let (p, size) = take(count)
        defer { recycle(p, size: size) }
        return try body(p)
    }
}
