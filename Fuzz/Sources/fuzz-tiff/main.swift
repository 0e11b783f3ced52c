import FuzzSupport
import LucidImaging

/// TIFF files through libtiff: the header (`Image.info`), then the pixels and the ImageJ/OME/
/// shaped metadata (`Image.read`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTIFF(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let path = Fuzz.file(data, size, name: "input.tif")
    do {
        let info = try Image.info(path)
        let image = try Image.read(path)
        precondition(image.data.shape == info.shape, "info \(info.shape) but read \(image.data.shape)")
    } catch {
        Fuzz.checkMessage(error)
    }
    return 0
}
