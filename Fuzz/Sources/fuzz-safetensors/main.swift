import Foundation
import FuzzSupport
import LucidNN

/// safetensors files: header length, JSON header, dtypes, offsets, data.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    _ = Fuzz.scratch  // sets the memory cap
    do {
        _ = try SafeTensors.load(Data(bytes: data, count: size), path: "input.safetensors")
    } catch {
        Fuzz.checkMessage(error)
    }
    return 0
}
