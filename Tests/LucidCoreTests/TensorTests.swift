import XCTest
@testable import LucidCore

final class TensorTests: XCTestCase {
    func testCreationAndIndexing() throws {
        var t = Tensor(zeros: [2, 3])
        t[1, 2] = 5
        XCTAssertEqual(t.scalars, [0, 0, 0, 0, 0, 5])
        XCTAssertEqual(Tensor.strides(of: [2, 3, 4]), [12, 4, 1])
        let r = try t.reshaped([3, -1])
        XCTAssertEqual(r.shape, [3, 2])
        XCTAssertEqual(Tensor.arange(0, 5).scalars, [0, 1, 2, 3, 4])
    }

    func testCopyOnWrite() {
        let a = Tensor(ones: [4])
        var b = a
        b[0] = 7
        XCTAssertEqual(a.scalars, [1, 1, 1, 1])
        XCTAssertEqual(b.scalars, [7, 1, 1, 1])
    }

    func testBadShapesThrowWithOpName() {
        XCTAssertThrowsError(try Tensor(shape: [2, 2], scalars: [1, 2, 3])) { e in
            XCTAssertTrue("\(e)".contains("Tensor(shape:scalars:)"), "\(e)")
        }
        XCTAssertThrowsError(try Tensor(zeros: [2, 3]).reshaped([4, 2])) { e in
            XCTAssertTrue("\(e)".contains("reshape") && "\(e)".contains("[2, 3]") && "\(e)".contains("[4, 2]"), "\(e)")
        }
    }

    func testSeededRandomIsReproducibleAndNormal() {
        var r1 = RandomGenerator(seed: 42), r2 = RandomGenerator(seed: 42)
        let a = Tensor.randomNormal([10_000], rng: &r1), b = Tensor.randomNormal([10_000], rng: &r2)
        XCTAssertEqual(a.scalars, b.scalars)
        let mean = a.scalars.reduce(0, +) / 10_000
        let variance = a.scalars.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 10_000
        XCTAssertEqual(mean, 0, accuracy: 0.05)
        XCTAssertEqual(variance, 1, accuracy: 0.05)
    }

    func testParallelForCoversEveryIndexOnce() {
        var hits = [Int](repeating: 0, count: 1000)
        hits.withUnsafeMutableBufferPointer { h in
            let p = h
            Threads.parallelFor(1000) { p[$0] += 1 }
        }
        XCTAssertEqual(hits, [Int](repeating: 1, count: 1000))
    }

    func testFreedLargeStorageIsReusedAndTrimmed() throws {
        try XCTSkipIf(StorageCache.capacityBytes == 0, "LUCID_STORAGE_CACHE=0 turns the storage cache off (make test-asan)")
        StorageCache.trim()
        let count = 300_000   // above StorageCache.minimumBytes
        var first: UnsafeMutablePointer<Float>?
        do {
            let t = Tensor(zeros: [count])
            first = t.storage.base
        }
        XCTAssertEqual(StorageCache.cachedBytes, StorageCache.blockSize(count * 4))
        let again = Tensor(uninitialized: [count])
        XCTAssertEqual(again.storage.base, first, "a freed block of the same size is handed out again")
        XCTAssertEqual(StorageCache.cachedBytes, 0)
        let other = Tensor(zeros: [count + 5000])
        XCTAssertNotEqual(other.storage.base, first)
        StorageCache.trim()
        XCTAssertEqual(StorageCache.cachedBytes, 0)
        // Small tensors bypass the cache.
        do { _ = Tensor(zeros: [100]) }
        XCTAssertEqual(StorageCache.cachedBytes, 0)
    }

    func testManyTrainingLikeStepsDoNotGrowTheCache() {
        StorageCache.trim()
        var high = 0
        for step in 0..<50 {
            // Tensors of a few recurring sizes, freed in a different order each step.
            var live = [Tensor(zeros: [40_000]), Tensor(zeros: [90_000]), Tensor(zeros: [250_000])]
            if step % 2 == 0 { live.reverse() }
            live.removeAll()
            if step == 0 { high = StorageCache.cachedBytes }
            XCTAssertEqual(StorageCache.cachedBytes, high, "step \(step)")
        }
    }
}
