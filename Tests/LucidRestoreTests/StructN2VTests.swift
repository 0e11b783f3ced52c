import LucidCore
import XCTest
@testable import LucidRestore

/// structN2V (`noise2void.struct_mask`): the pixels of a blind spot's row or column segment reach
/// the network with values that do not depend on their own.
final class StructN2VTests: XCTestCase {
    /// A `[2, 1, spatial…]` batch of distinct values in (0, 1), with its minimum and maximum at
    /// the first and last pixel of every patch.
    private func batch(_ spatial: [Int]) -> Tensor {
        var rng = RandomGenerator(seed: 7)
        let n = spatial.reduce(1, *)
        var v = (0..<(2 * n)).map { _ in 0.1 + 0.8 * rng.uniform() }
        for b in 0..<2 { v[b * n] = 0; v[b * n + n - 1] = 1 }
        return try! Tensor(shape: [2, 1] + spatial, scalars: v)
    }

    /// For every blind spot, the hidden pixels' network inputs are the same whatever their own
    /// values were (the batch perturbed there is masked identically), and the blind spot's
    /// replacement never comes from them.
    private func checkHidden(_ mask: StructMask, spatial: [Int], replacement: BlindSpotMasker.Replacement = .uniform,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        let masker = BlindSpotMasker(pixelFraction: 0.02, neighborhood: 5, replacement: replacement, structMask: mask)
        let x = batch(spatial)
        var rng = RandomGenerator(seed: 3)
        let a = try masker.apply(x, rng: &rng)
        let offsets = try mask.offsets(spatialRank: spatial.count)
        let strides = Tensor.strides(of: spatial)
        let n = spatial.reduce(1, *)
        let m = a.mask.scalars
        // Every hidden pixel (inside the patch) of every blind spot, extremes excluded.
        var hidden = Set<Int>()
        for flat in 0..<(2 * n) where m[flat] == 1 {
            let b = flat / n, p = flat % n
            let c = strides.indices.map { (p / strides[$0]) % spatial[$0] }
            for o in offsets {
                let q = zip(c, o).map { $0 + $1 }
                guard zip(q, spatial).allSatisfy({ $0 >= 0 && $0 < $1 }) else { continue }
                let at = b * n + zip(q, strides).map { $0 * $1 }.reduce(0, +)
                if at % n != 0 && at % n != n - 1 && m[at] == 0 { hidden.insert(at) }
            }
        }
        XCTAssertGreaterThan(hidden.count, 10, file: file, line: line)
        var perturbed = x.scalars
        for at in hidden { perturbed[at] = 0.5 * perturbed[at] + 0.05 }
        var rng2 = RandomGenerator(seed: 3)
        let b = try masker.apply(try Tensor(shape: x.shape, scalars: perturbed), rng: &rng2)
        // The same random draws, and nothing of the hidden values in the network input.
        XCTAssertEqual(a.input.scalars, b.input.scalars, "hidden pixels leak into the network input", file: file, line: line)
        XCTAssertEqual(a.mask.scalars, b.mask.scalars, file: file, line: line)
        for at in hidden { XCTAssertNotEqual(a.input.scalars[at], x.scalars[at], file: file, line: line) }
    }

    func testHorizontalMaskHidesTheBlindSpotsRow() throws {
        try checkHidden(.line(.horizontal, length: 5), spatial: [32, 32])
        try checkHidden(.line(.horizontal, length: 9), spatial: [32, 32], replacement: .median)
    }

    func testVerticalAndExplicitMasks() throws {
        try checkHidden(.line(.vertical, length: 7), spatial: [32, 32])
        let cross = StructMask.explicit(shape: [3, 3], values: [false, true, false, true, true, true, false, true, false])
        XCTAssertEqual(Set(try cross.offsets(spatialRank: 2)), [[-1, 0], [0, -1], [0, 1], [1, 0]])
        try checkHidden(cross, spatial: [32, 32])
    }

    func testThreeDimensionalMasks() throws {
        try checkHidden(.line(.horizontal, length: 5), spatial: [8, 16, 16])
        try checkHidden(.line(.depth, length: 3), spatial: [8, 16, 16])
        // A 2-D mask applies in the blind spot's plane.
        XCTAssertEqual(try StructMask.line(.vertical, length: 3).offsets(spatialRank: 3), [[0, -1, 0], [0, 1, 0]])
        XCTAssertThrowsError(try StructMask.line(.depth, length: 3).offsets(spatialRank: 2))
        // Three steps of 3-D structN2V training run and give finite losses.
        let recipe = try Recipe.parse(yaml: """
            method: noise2void
            data: {train: x.tif, axes: ZYX, patch: [8, 16, 16]}
            noise2void: {struct_mask: horizontal, pixel_fraction: 0.05}
            model: {depth: 1, filters: 4}
            """)
        let method = try XCTUnwrap(recipe.method as? Noise2Void)
        var initRNG = RandomGenerator(seed: 1)
        let model = try recipe.model.unetConfig(spatialRank: 3, inChannels: 1, outChannels: 1).makeModel(rng: &initRNG)
        var rng = RandomGenerator(seed: 2)
        for step in 0..<3 {
            let loss = try method.loss(model, input: batch([8, 16, 16]), target: nil, step: step, rng: &rng)
            XCTAssertTrue(loss.value.scalars[0].isFinite)
            try loss.backward()
        }
    }

    func testRecipeSpellings() throws {
        func mask(_ text: String, axes: String = "YX") throws -> StructMask? {
            let r = try Recipe.parse(yaml: "method: noise2void\ndata: {train: a.tif, axes: \(axes)}\nnoise2void: {struct_mask: \(text)}\n")
            return (r.method as? Noise2Void)?.masker.structMask
        }
        XCTAssertEqual(try mask("horizontal"), .line(.horizontal, length: 5))
        XCTAssertEqual(try mask("vertical"), .line(.vertical, length: 5))
        XCTAssertEqual(try mask("9"), .line(.horizontal, length: 9))
        XCTAssertEqual(try mask("{axis: vertical, length: 7}"), .line(.vertical, length: 7))
        XCTAssertEqual(try mask("[[0, 1, 0], [0, 1, 0], [0, 1, 0]]"),
                       .explicit(shape: [3, 3], values: [false, true, false, false, true, false, false, true, false]))
        XCTAssertEqual(try mask("depth", axes: "ZYX"), .line(.depth, length: 5))
        XCTAssertNil(try mask("none"))
        for bad in ["diagonal", "4", "[[0, 1], [1, 0]]", "[[0, 2, 0]]"] {
            XCTAssertThrowsError(try mask(bad)) { XCTAssertTrue("\($0)".contains("noise2void.struct_mask"), "\($0)") }
        }
        XCTAssertThrowsError(try mask("depth")) { XCTAssertTrue("\($0)".contains("struct_mask"), "\($0)") }
        // The resolved recipe reads back to the same mask.
        for text in ["horizontal", "{axis: vertical, length: 7}", "[[0, 1, 0], [1, 1, 1], [0, 1, 0]]"] {
            let r = try Recipe.parse(yaml: "method: noise2void\ndata: {train: a.tif}\nnoise2void: {struct_mask: \(text)}\n")
            XCTAssertEqual(try Recipe.parse(yaml: r.yaml()), r)
        }
    }
}
