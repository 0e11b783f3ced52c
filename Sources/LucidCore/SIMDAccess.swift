/// Unaligned 16-lane loads and stores of `Float`s, the access every SIMD loop of Lucid uses
/// (`-target-cpu native` makes them one `vmovups` on AVX-512, two on AVX2, four on NEON).

/// The 16 floats at `p + i` (no alignment needed).
@inlinable @inline(__always)
public func load16(_ p: UnsafePointer<Float>, _ i: Int = 0) -> SIMD16<Float> {
    UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
}

/// Writes the 16 lanes of `v` to `p + i …` (no alignment needed).
@inlinable @inline(__always)
public func store16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>, _ i: Int = 0) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: SIMD16<Float>.self)
}
