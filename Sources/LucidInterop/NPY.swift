import Foundation
import LucidCore

/// NumPy's `.npy` format (version 1.0) for float32 tensors in C order: what bioimage.io
/// packages use for their test tensors and `numpy.load` reads.
public enum NPY {
    /// The file's bytes: magic, header dict (`<f4`, C order, the shape), padded to 64 bytes, data.
    public static func encode(_ tensor: Tensor) -> Data {
        let dims = tensor.shape.map(String.init).joined(separator: ", ") + (tensor.rank == 1 ? "," : "")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var d = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let n = UInt16(header.utf8.count)
        d.append(contentsOf: [UInt8(n & 0xFF), UInt8(n >> 8)])
        d.append(contentsOf: Array(header.utf8))
        d.append(tensor.withUnsafeBufferPointer { Data(buffer: $0) })   // hosts Swift runs on are little-endian
        return d
    }

    /// Reads a `.npy` of little-endian float32 (`<f4`) or float64 (`<f8`) in C order.
    public static func decode(_ data: Data, path: String) throws -> Tensor {
        func bad(_ why: String) -> ExportError { ExportError(path: path, reason: why) }
        let bytes = [UInt8](data)
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else { throw bad("not a .npy file") }
        let (headerLength, start): (Int, Int) = bytes[6] == 1
            ? (Int(bytes[8]) | Int(bytes[9]) << 8, 10)
            : (bytes.count >= 12 ? Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24 : -1, 12)
        guard headerLength >= 0, start + headerLength <= bytes.count else { throw bad("truncated header") }
        let header = String(decoding: bytes[start..<(start + headerLength)], as: UTF8.self)
        let f8 = header.contains("'descr': '<f8'")
        guard f8 || header.contains("'descr': '<f4'") else { throw bad("dtype in '\(header.trimmingCharacters(in: .whitespacesAndNewlines))' is not <f4 or <f8") }
        guard header.contains("'fortran_order': False") else { throw bad("Fortran-ordered arrays are not read") }
        guard let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw bad("no shape in the header")
        }
        let shape = header[open.upperBound..<close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let count = shape.reduce(1, *), size = f8 ? 8 : 4
        let offset = start + headerLength
        guard bytes.count - offset == count * size else { throw bad("\(bytes.count - offset) data bytes for shape \(shape)") }
        var values = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress! + offset
            for i in 0..<count {
                values[i] = f8
                    ? Float(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
                    : Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            }
        }
        return try Tensor(shape: shape, scalars: values)
    }
}
