import Foundation

/// Keeps the large blocks of freed tensors for the next tensor of the same size.
///
/// A training step allocates the same tensors every step. Returning them to the C allocator
/// costs either page faults (glibc maps each large block fresh from the kernel and unmaps it on
/// free: the 3-D U-Net step measured 13–22% slower) or, if glibc is told to keep them,
/// fragmentation that grows the process step after step (a 2-D U-Net trainer reached 2.5 GB of
/// resident memory after 1,000 steps for a 200 MB heap peak). Here a freed block of at least
/// `minimumBytes` waits in a list for its exact (page-rounded) size; a training loop reaches a
/// steady state after its first step and resident memory stays at the step's peak. When the kept
/// blocks would exceed `capacityBytes` (a quarter of physical memory), every kept block is
/// returned to the system first. `LUCID_STORAGE_CACHE=0` keeps nothing (every block is freed
/// at once, so that AddressSanitizer sees a use after free).
enum StorageCache {
    /// Blocks below this size go straight to `malloc`/`free`.
    static let minimumBytes = 64 << 10
    static let capacityBytes: Int = {
        if ProcessInfo.processInfo.environment["LUCID_STORAGE_CACHE"] == "0" { return 0 }
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        return pages > 0 && pageSize > 0 ? pages * pageSize / 4 : 1 << 30
    }()

    private static let lock = NSLock()
    nonisolated(unsafe) private static var kept: [Int: [UnsafeMutableRawPointer]] = [:]
    nonisolated(unsafe) private static var keptBytes = 0

    /// Bytes actually reserved for a request of `bytes` (what `allocate` and `release` take).
    static func blockSize(_ bytes: Int) -> Int {
        bytes < minimumBytes ? (max(bytes, 1) + 63) & ~63 : (bytes + 4095) & ~4095
    }

    /// A 64-byte aligned block of `blockSize` bytes, or nil when the system has no memory.
    static func allocate(_ blockSize: Int) -> UnsafeMutableRawPointer? {
        if blockSize >= minimumBytes {
            lock.lock()
            let block = kept[blockSize]?.popLast()
            if block != nil { keptBytes -= blockSize }
            lock.unlock()
            if let block { return block }
        }
        var raw: UnsafeMutableRawPointer?
        if posix_memalign(&raw, 64, blockSize) == 0, let raw { return raw }
        // Out of memory: give back every kept block and try once more.
        trim()
        return posix_memalign(&raw, 64, blockSize) == 0 ? raw : nil
    }

    /// Takes back a block from `allocate(blockSize)`.
    static func release(_ block: UnsafeMutableRawPointer, blockSize: Int) {
        guard blockSize >= minimumBytes, blockSize <= capacityBytes else {
            Glibc.free(block)
            return
        }
        lock.lock()
        if keptBytes + blockSize > capacityBytes { trimLocked() }
        kept[blockSize, default: []].append(block)
        keptBytes += blockSize
        lock.unlock()
    }

    /// Returns every kept block to the system.
    static func trim() {
        lock.lock()
        trimLocked()
        lock.unlock()
    }

    /// Bytes held in the cache now (for tests).
    static var cachedBytes: Int {
        lock.lock()
        defer { lock.unlock() }
        return keptBytes
    }

    private static func trimLocked() {
        for blocks in kept.values { blocks.forEach { Glibc.free($0) } }
        kept.removeAll(keepingCapacity: true)
        keptBytes = 0
    }
}
