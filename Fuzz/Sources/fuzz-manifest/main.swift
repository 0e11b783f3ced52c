import FuzzSupport
import LucidRestore

/// Label-free CSV manifests (header, quoting, channels, splits).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzManifest(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    _ = Fuzz.scratch
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        let manifest = try LabelFreeManifest.parse(text, file: "pairs.csv", directory: "/data")
        precondition(!manifest.rows.isEmpty && manifest.rows.allSatisfy { $0.targets.count == manifest.targetColumns.count })
    } catch {
        Fuzz.checkMessage(error)
    }
    return 0
}
