import Foundation
import LucidCore

/// Samples a radially symmetric intensity `h(r, z)` on a PSF box, averaging `oversample`²
/// sub-samples per pixel (pixel integration).
struct PSFRenderer {
    let nxy: Int
    let dxy: Double
    let oversample: Int
    /// Axial positions of the planes (µm); `[0]` for a 2-D PSF.
    let zs: [Double]
    let shape: [Int]

    init(config: PSFConfig) {
        nxy = config.nxy
        dxy = config.dxy
        oversample = config.oversample
        shape = config.shape
        if let nz = config.nz {
            zs = (0..<nz).map { Double($0 - nz / 2) * config.dz }
        } else {
            zs = [0]
        }
    }

    /// Largest radius a sub-sample can have (µm).
    var maxRadius: Double { (Double(nxy / 2) + 0.5) * dxy * 2.0.squareRoot() }

    /// Sub-sample offsets within a pixel, in pixels, centred on 0.
    private var offsets: [Double] { (0..<oversample).map { (Double($0) + 0.5) / Double(oversample) - 0.5 } }

    /// Radii (µm) of the sub-samples of one quadrant-free pixel list: `[pixel][sub-sample]` flattened.
    private func radii() -> [Double] {
        let c = nxy / 2, o = offsets
        var r: [Double] = []
        r.reserveCapacity(nxy * nxy * oversample * oversample)
        for y in 0..<nxy { for x in 0..<nxy { for a in o { for b in o {
            let dy = (Double(y - c) + a) * dxy, dx = (Double(x - c) + b) * dxy
            r.append((dy * dy + dx * dx).squareRoot())
        }}}}
        return r
    }

    /// Evaluates `f(r, planeIndex)` at every sub-sample.
    func render(_ f: (Double, Int) -> Double) -> Tensor {
        let r = radii(), per = oversample * oversample
        var t = Tensor(uninitialized: shape)
        t.withUnsafeMutableBufferPointer { p in
            for (k, _) in zs.enumerated() {
                for pixel in 0..<(nxy * nxy) {
                    var s = 0.0
                    for j in 0..<per { s += f(r[pixel * per + j], k) }
                    p[k * nxy * nxy + pixel] = Float(s / Double(per))
                }
            }
        }
        return t
    }

    /// Interpolates per-plane radial profiles sampled at `r = j·dr` (linear interpolation).
    func render(profiles: [[Double]], dr: Double) -> Tensor {
        let r = radii(), per = oversample * oversample
        var t = Tensor(uninitialized: shape)
        let plane = nxy * nxy
        t.withUnsafeMutableBufferPointer { p in
            let base = p.baseAddress!
            Threads.parallelFor(zs.count) { k in
                let prof = profiles[k]
                for pixel in 0..<plane {
                    var s = 0.0
                    for j in 0..<per {
                        let u = r[pixel * per + j] / dr
                        let i = min(Int(u), prof.count - 2)
                        let f = u - Double(i)
                        s += prof[i] * (1 - f) + prof[i + 1] * f
                    }
                    base[k * plane + pixel] = Float(s / Double(per))
                }
            }
        }
        return t
    }

    /// A disk of `radius` µm: the covered fraction of each pixel, in a `size`² box.
    static func disk(radius: Double, dxy: Double, size: Int, oversample: Int) -> Tensor {
        var t = Tensor(uninitialized: [size, size])
        let c = size / 2
        t.withUnsafeMutableBufferPointer { p in
            for y in 0..<size { for x in 0..<size {
                var inside = 0
                for a in 0..<oversample { for b in 0..<oversample {
                    let dy = (Double(y - c) + (Double(a) + 0.5) / Double(oversample) - 0.5) * dxy
                    let dx = (Double(x - c) + (Double(b) + 0.5) / Double(oversample) - 0.5) * dxy
                    if dy * dy + dx * dx <= radius * radius { inside += 1 }
                }}
                p[y * size + x] = Float(inside) / Float(oversample * oversample)
            }}
            // A pinhole smaller than the sub-sampling still passes light through the centre.
            if p.reduce(0, +) == 0 { p[c * size + c] = 1 }
        }
        return t
    }
}

