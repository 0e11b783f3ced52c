import Foundation

/// Contiguous, 64-byte aligned Float32 storage shared by tensors (copy-on-write through `Tensor`).
public final class TensorStorage: @unchecked Sendable {
    /// Number of Float32 elements.
    public let count: Int
    /// First element; valid for `count` elements.
    public let base: UnsafeMutablePointer<Float>

    /// Bytes reserved for this storage (see `StorageCache`).
    private let blockSize: Int

    /// Allocates `count` uninitialized elements.
    public init(count: Int) {
        self.count = count
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        blockSize = StorageCache.blockSize(bytes)
        guard let raw = StorageCache.allocate(blockSize) else {
            fatalError("Lucid: out of memory allocating \(bytes) bytes")
        }
        base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    deinit { StorageCache.release(UnsafeMutableRawPointer(base), blockSize: blockSize) }
}

/// An N-d Float32 array: a shape over contiguous row-major storage.
///
/// Layout is batch-first (`NCHW`, `NCDHW`). Tensors are values: mutation copies shared storage.
/// ```swift
/// var t = Tensor(zeros: [2, 3])
/// t[1, 2] = 5
/// let r = try t.reshaped([3, 2])
/// ```
public struct Tensor: @unchecked Sendable {
    /// Extent along each axis; `[]` is a scalar.
    public private(set) var shape: [Int]
    /// The backing storage (may be shared with other tensors).
    public private(set) var storage: TensorStorage

    /// Number of elements (product of `shape`).
    @inlinable public var count: Int { storage.count }
    /// Number of axes.
    @inlinable public var rank: Int { shape.count }

    /// A tensor whose elements are not initialized: for kernels that write every element.
    public init(uninitialized shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative extent in shape \(shape)")
        self.shape = shape
        self.storage = TensorStorage(count: shape.reduce(1, *))
    }

    /// A tensor with every element equal to `value`.
    public init(shape: [Int], repeating value: Float) {
        self.init(uninitialized: shape)
        storage.base.initialize(repeating: value, count: count)
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) { self.init(shape: shape, repeating: 0) }

    /// A tensor of ones.
    public init(ones shape: [Int]) { self.init(shape: shape, repeating: 1) }

    /// A scalar (rank-0) tensor.
    public init(scalar: Float) { self.init(shape: [], repeating: scalar) }

    /// A tensor from row-major `scalars`; throws when the count does not match `shape`.
    public init(shape: [Int], scalars: [Float]) throws {
        let n = shape.reduce(1, *)
        guard shape.allSatisfy({ $0 >= 0 }), n == scalars.count else {
            throw TensorError.shapeMismatch(op: "Tensor(shape:scalars:)",
                                            detail: "shape \(shape) holds \(n) elements, got \(scalars.count) scalars")
        }
        self.init(uninitialized: shape)
        scalars.withUnsafeBufferPointer { storage.base.initialize(from: $0.baseAddress!, count: n) }
    }

    /// Wraps existing storage with a shape of the same element count (no copy).
    public init(shape: [Int], storage: TensorStorage) {
        precondition(shape.reduce(1, *) == storage.count, "Tensor: shape \(shape) does not match storage of \(storage.count)")
        self.shape = shape
        self.storage = storage
    }

    /// The elements in row-major order.
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.base, count: count)) }

    /// The single element of a one-element tensor.
    public var scalar: Float {
        precondition(count == 1, "Tensor.scalar: tensor of shape \(shape) has \(count) elements")
        return storage.base[0]
    }

    /// Read-only access to the elements.
    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.base, count: count))
    }

    /// Mutable access; copies the storage first when it is shared.
    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        makeUnique()
        return try body(UnsafeMutableBufferPointer(start: storage.base, count: count))
    }

    /// Ensures this tensor owns its storage.
    public mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) {
            let copy = TensorStorage(count: count)
            copy.base.initialize(from: storage.base, count: count)
            storage = copy
        }
    }

    /// Row-major strides (in elements) of `shape`.
    public static func strides(of shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) { s[i] = acc; acc *= shape[i] }
        return s
    }

    /// Element access by full index.
    public subscript(_ index: Int...) -> Float {
        get { storage.base[flatIndex(index)] }
        set { let i = flatIndex(index); makeUnique(); storage.base[i] = newValue }
    }

    private func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "Tensor subscript: \(index.count) indices for shape \(shape)")
        var flat = 0
        for (i, (ix, n)) in zip(index, shape).enumerated() {
            precondition(ix >= 0 && ix < n, "Tensor subscript: index \(ix) out of range for axis \(i) of shape \(shape)")
            flat = flat * n + ix
        }
        return flat
    }

    /// The same elements under a new shape (shares storage). One extent may be `-1` (inferred).
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var s = newShape
        let known = s.filter { $0 != -1 }.reduce(1, *)
        if let i = s.firstIndex(of: -1) {
            guard s.filter({ $0 == -1 }).count == 1, known > 0, count % known == 0 else {
                throw TensorError.shapeMismatch(op: "reshape", detail: "cannot reshape \(shape) to \(newShape)")
            }
            s[i] = count / known
        }
        guard s.allSatisfy({ $0 >= 0 }), s.reduce(1, *) == count else {
            throw TensorError.shapeMismatch(op: "reshape", detail: "cannot reshape \(shape) (\(count) elements) to \(newShape)")
        }
        return Tensor(shape: s, storage: storage)
    }

    /// A deep copy that owns its storage.
    public func copy() -> Tensor {
        let t = Tensor(uninitialized: shape)
        t.storage.base.initialize(from: storage.base, count: count)
        return t
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = scalars.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(count > 8 ? ", …" : "")])"
    }
}
