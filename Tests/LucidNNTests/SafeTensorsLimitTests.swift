import Foundation
import LucidCore
@testable import LucidNN
import XCTest

/// Headers that declare more data than the file or the memory holds give a one-line error
/// before anything of that size is allocated.
final class SafeTensorsLimitTests: XCTestCase {
    /// A safetensors file: the 8-byte header length, `header`, then `data` bytes of zeros.
    func file(_ header: String, data: Int = 0, length: UInt64? = nil) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lucid-st-limit-\(UUID().uuidString).safetensors")
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        var bytes = Data()
        withUnsafeBytes(of: (length ?? UInt64(header.utf8.count)).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: Array(header.utf8))
        bytes.append(Data(count: data))
        try bytes.write(to: url)
        return url
    }

    func message(_ url: URL) -> String {
        do { _ = try SafeTensors.load(from: url); return "loaded" } catch { return "\(error)" }
    }

    func testHeadersClaiming2To60BytesAreRefused() throws {
        // The length prefix itself.
        var url = try file("{}", length: 1 << 60)
        XCTAssertEqual(message(url), "safetensors \(url.path): bad header: length 1152921504606846976 exceeds 100000000 bytes")
        // One tensor of 2^58 float32 (2^60 bytes) in a file of a few bytes.
        url = try file(#"{"w":{"dtype":"F32","shape":[288230376151711744],"data_offsets":[0,1152921504606846976]}}"#)
        XCTAssertEqual(message(url), "safetensors \(url.path): offset out of range: 'w' spans [0, 1152921504606846976) but the data section has 0 bytes")
        // A shape whose element count overflows 64 bits (it used to trap).
        url = try file(#"{"w":{"dtype":"F64","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}}"#, data: 8)
        XCTAssertEqual(message(url), "safetensors \(url.path): 'w' of shape [4294967296, 4294967296, 4] has more elements than a 64-bit size can count")
        // Numbers that are not integers an Int holds.
        url = try file(#"{"w":{"dtype":"F32","shape":[1e30],"data_offsets":[0,4]}}"#, data: 4)
        XCTAssertEqual(message(url), "safetensors \(url.path): bad header: shape of 'w' is not a list of non-negative integers")
        url = try file(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]}}"#, data: 4)
        XCTAssertEqual(message(url), "safetensors \(url.path): bad header: data_offsets of 'w' are not non-negative integers")
    }

    /// Data that is really in the file but would not fit in memory as Float32 (F16 doubles in
    /// size): refused before the tensors are allocated.
    func testDataLargerThanAvailableMemoryIsRefused() throws {
        let url = try file(#"{"w":{"dtype":"F16","shape":[1048576],"data_offsets":[0,2097152]}}"#, data: 2_097_152)
        setenv("LUCID_MEMORY_LIMIT_MB", "3", 1)
        defer { unsetenv("LUCID_MEMORY_LIMIT_MB") }
        XCTAssertEqual(message(url), "safetensors \(url.path): the tensors as Float32 needs 0.00391 GiB, more than the 0.00293 GiB of memory available")
        setenv("LUCID_MEMORY_LIMIT_MB", "5", 1)
        XCTAssertEqual(try SafeTensors.load(from: url).tensors["w"]?.shape, [1_048_576])
    }
}
