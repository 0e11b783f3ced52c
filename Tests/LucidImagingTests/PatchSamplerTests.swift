import Foundation
import LucidCore
@testable import LucidImaging
import XCTest

final class PatchSamplerTests: XCTestCase {
    /// Distinct values 0, 1, 2, … so every patch position is identifiable.
    private func ramp(_ shape: [Int], offset: Float = 0) -> Tensor {
        var t = Tensor(zeros: shape)
        t.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] = Float(i) + offset } }
        return t
    }

    /// Naive reference: the plane `plane` of the `h`×`w` region at (y0, x0), flipped and turned
    /// with numpy semantics (flipud, fliplr, then rot90 counter-clockwise k times).
    private func reference(_ plane: [[Float]], y0: Int, x0: Int, h: Int, w: Int, _ tr: PatchTransform) -> [Float] {
        var p = (0..<h).map { y in (0..<w).map { x in plane[y0 + y][x0 + x] } }
        if tr.flipY { p.reverse() }
        if tr.flipX { p = p.map { $0.reversed() } }
        for _ in 0..<tr.rotations {
            let n = p.count
            p = (0..<n).map { i in (0..<n).map { j in p[j][n - 1 - i] } }  // numpy.rot90
        }
        return p.flatMap { $0 }
    }

    func test2DPairsShapesTransformsAndDeterminism() throws {
        let a = ramp([2, 20, 24]), b = ramp([20, 24], offset: 0.5)  // 2-channel source, 1-channel target
        let c = ramp([2, 30, 16]), d = ramp([30, 16], offset: 0.5)
        let sampler = try PatchSampler(patchShape: [8, 8], patchesPerImage: 25)
        var rng = RandomGenerator(seed: 1)
        let set = try sampler.sample([[a, b], [c, d]], rng: &rng)
        XCTAssertEqual(set.count, 50)
        XCTAssertEqual(set.tensors[0].shape, [50, 2, 8, 8])
        XCTAssertEqual(set.tensors[1].shape, [50, 1, 8, 8])
        var rotations = Set<Int>(), flips = Set<[Bool]>()
        for n in 0..<set.count {
            let (src, tgt) = set.sourceIndices[n] == 0 ? (a, b) : (c, d)
            let (H, W) = (src.shape[1], src.shape[2])
            let tr = set.transforms[n]
            rotations.insert(tr.rotations)
            flips.insert([tr.flipY, tr.flipX])
            let (y0, x0) = (set.origins[n][0], set.origins[n][1])
            for ch in 0..<2 {
                let plane = (0..<H).map { y in (0..<W).map { x in src[ch, y, x] } }
                let got = Array(set.tensors[0].scalars[((n * 2 + ch) * 64)..<((n * 2 + ch + 1) * 64)])
                XCTAssertEqual(got, reference(plane, y0: y0, x0: x0, h: 8, w: 8, tr), "patch \(n) channel \(ch)")
            }
            let tplane = (0..<H).map { y in (0..<W).map { x in tgt[y, x] } }
            XCTAssertEqual(Array(set.tensors[1].scalars[(n * 64)..<((n + 1) * 64)]),
                           reference(tplane, y0: y0, x0: x0, h: 8, w: 8, tr), "target patch \(n)")
        }
        XCTAssertEqual(rotations, [0, 1, 2, 3])
        XCTAssertEqual(flips.count, 4)

        var again = RandomGenerator(seed: 1)
        let repeatSet = try sampler.sample([[a, b], [c, d]], rng: &again)
        XCTAssertEqual(repeatSet.tensors[0].scalars, set.tensors[0].scalars)
        XCTAssertEqual(repeatSet.origins, set.origins)
        var other = RandomGenerator(seed: 2)
        XCTAssertNotEqual(try sampler.sample([[a, b], [c, d]], rng: &other).origins, set.origins)
    }

    func test3DAndNonSquarePatchesNeverRotate() throws {
        let vol = ramp([6, 20, 24])
        let sampler = try PatchSampler(patchShape: [3, 4, 10], patchesPerImage: 40)
        var rng = RandomGenerator(seed: 3)
        let set = try sampler.sample([[vol]], rng: &rng)
        XCTAssertEqual(set.tensors[0].shape, [40, 1, 3, 4, 10])
        XCTAssertTrue(set.transforms.allSatisfy { $0.rotations == 0 })
        XCTAssertTrue(set.transforms.contains { $0.flipX } && set.transforms.contains { $0.flipY })
        for n in 0..<set.count {
            let o = set.origins[n], tr = set.transforms[n]
            for z in 0..<3 {
                let plane = (0..<20).map { y in (0..<24).map { x in vol[o[0] + z, y, x] } }
                let got = Array(set.tensors[0].scalars[((n * 3 + z) * 40)..<((n * 3 + z + 1) * 40)])
                XCTAssertEqual(got, reference(plane, y0: o[1], x0: o[2], h: 4, w: 10, tr), "patch \(n) z \(z)")
            }
        }
        let plain = try PatchSampler(patchShape: [3, 4, 4], patchesPerImage: 5, augment: false)
        XCTAssertTrue(try plain.sample([[vol]], rng: &rng).transforms.allSatisfy { $0 == .identity })
    }

    func testBackgroundFilterRejectsDarkPatches() throws {
        // Dark image with one bright 10×10 square: kept patches must overlap it.
        var img = Tensor(zeros: [64, 64])
        for y in 30..<40 { for x in 20..<30 { img[y, x] = 100 } }
        let filter = BackgroundFilter(threshold: 0.4, percentile: 99.9)
        let sampler = try PatchSampler(patchShape: [8, 8], patchesPerImage: 30, filter: filter)
        var rng = RandomGenerator(seed: 4)
        let set = try sampler.sample([[img]], rng: &rng)
        XCTAssertGreaterThan(set.count, 0)
        for n in 0..<set.count {
            XCTAssertEqual(set.tensors[0].scalars[(n * 64)..<((n + 1) * 64)].max(), 100, "patch \(n) at \(set.origins[n])")
        }
        let meanFilter = BackgroundFilter(threshold: 2, percentile: 50, statistic: .mean)
        let none = try PatchSampler(patchShape: [8, 8], patchesPerImage: 5, filter: meanFilter)
        XCTAssertThrowsError(try none.sample([[Tensor(ones: [16, 16])]], rng: &rng)) { e in
            XCTAssertTrue("\(e)".contains("rejected all"), "\(e)")
        }
    }

    func testValidationSplits() throws {
        let sources = (0..<5).map { [ramp([16, 16], offset: Float($0) * 1000)] }
        let sampler = try PatchSampler(patchShape: [4, 4], patchesPerImage: 10)
        var rng = RandomGenerator(seed: 5)
        let byFiles = try sampler.sample(sources, split: .files(fraction: 0.4), rng: &rng)
        XCTAssertEqual(byFiles.validation.count, 20)
        XCTAssertEqual(byFiles.training.count, 30)
        XCTAssertTrue(Set(byFiles.training.sourceIndices).isDisjoint(with: Set(byFiles.validation.sourceIndices)))
        XCTAssertEqual(Set(byFiles.validation.sourceIndices).count, 2)

        let byPatches = try sampler.sample(sources, split: .patches(fraction: 0.1), rng: &rng)
        XCTAssertEqual(byPatches.validation.count, 5)
        XCTAssertEqual(byPatches.training.count, 45)
        XCTAssertEqual(byPatches.validation.tensors[0].shape, [5, 1, 4, 4])

        XCTAssertThrowsError(try sampler.sample(sources, split: .patches(fraction: 1.5), rng: &rng)) { e in
            XCTAssertTrue("\(e)".contains("1.5"), "\(e)")
        }
        XCTAssertThrowsError(try sampler.sample([sources[0]], split: .files(fraction: 0.5), rng: &rng))
    }

    func testInvalidInputsNameTheProblem() throws {
        XCTAssertThrowsError(try PatchSampler(patchShape: [4], patchesPerImage: 1)) { e in
            XCTAssertTrue("\(e)".contains("[4]"), "\(e)")
        }
        let sampler = try PatchSampler(patchShape: [32, 32], patchesPerImage: 1)
        var rng = RandomGenerator(seed: 6)
        XCTAssertThrowsError(try sampler.sample([[Tensor(zeros: [16, 40])]], rng: &rng)) { e in
            XCTAssertTrue("\(e)".contains("[32, 32]") && "\(e)".contains("[16, 40]"), "\(e)")
        }
        XCTAssertThrowsError(try sampler.sample([[Tensor(zeros: [40, 40]), Tensor(zeros: [40, 41])]], rng: &rng)) { e in
            XCTAssertTrue("\(e)".contains("[40, 41]"), "\(e)")
        }
    }

    func testPatchLayoutFromImages() throws {
        let data = ramp([2, 3, 4, 5])  // C, Z, Y, X
        let img = Image(data: data, axes: "CZYX")
        let planes = try img.patchLayout(spatialRank: 2)
        XCTAssertEqual(planes.count, 3)
        XCTAssertEqual(planes[1].shape, [2, 4, 5])
        XCTAssertEqual(planes[1][1, 2, 3], data[1, 1, 2, 3])
        let volumes = try img.patchLayout(spatialRank: 3)
        XCTAssertEqual(volumes.count, 1)
        XCTAssertEqual(volumes[0].scalars, data.scalars)
        // Non-canonical order: Z before C.
        let zc = Image(data: ramp([3, 2, 4, 5]), axes: "ZCYX")
        XCTAssertEqual(try zc.patchLayout(spatialRank: 3)[0][1, 2, 3, 4], zc.data[2, 1, 3, 4])
        XCTAssertThrowsError(try Image(data: ramp([4, 5]), axes: "YX").patchLayout(spatialRank: 3)) { e in
            XCTAssertTrue("\(e)".contains("'YX'"), "\(e)")
        }
    }
}

private extension Tensor {
    /// All elements of `parts` in one rank-1 tensor.
    static func concat1D(_ parts: [Tensor]) throws -> Tensor {
        try Tensor(shape: [parts.map(\.count).reduce(0, +)], scalars: parts.flatMap(\.scalars))
    }
}
