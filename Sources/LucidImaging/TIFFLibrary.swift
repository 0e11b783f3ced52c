import CTIFF
import Foundation

/// Thin Swift layer over libtiff: message capture, field access through `va_list`, open/close.
///
/// libtiff reports problems through process-wide handlers. Lucid installs handlers once that
/// store the message in a per-thread log (libtiff calls them on the calling thread), so a failed
/// call can be turned into an `ImagingError` naming the file and libtiff's cause, and nothing is
/// printed to stderr.
enum TIFFLibrary {
    /// Messages libtiff reported on the current thread since the last `resetMessages()`.
    final class MessageLog {
        var lastError: String?
        var warnings: [String] = []
    }

    private static let logKey = "lucid.tiff.messages"

    static var log: MessageLog {
        let td = Thread.current.threadDictionary
        if let l = td[logKey] as? MessageLog { return l }
        let l = MessageLog()
        td[logKey] = l
        return l
    }

    static func format(_ module: UnsafePointer<CChar>?, _ fmt: UnsafePointer<CChar>?,
                       _ args: CVaListPointer?) -> String {
        var buffer = [CChar](repeating: 0, count: 1024)
        if let fmt, let args { _ = vsnprintf(&buffer, buffer.count, fmt, args) }
        let text = String(cString: buffer)
        let mod = module.map { String(cString: $0) } ?? ""
        return ImagingError.oneLine(mod.isEmpty ? text : "\(mod): \(text)")
    }

    private static let installHandlers: Void = {
        _ = TIFFSetErrorHandler { module, fmt, args in
            TIFFLibrary.log.lastError = TIFFLibrary.format(module, fmt, args)
        }
        _ = TIFFSetWarningHandler { module, fmt, args in
            let log = TIFFLibrary.log
            if log.warnings.count < 16 { log.warnings.append(TIFFLibrary.format(module, fmt, args)) }
        }
    }()

    /// Installs the handlers (once) and clears this thread's log.
    static func resetMessages() {
        _ = installHandlers
        let l = log
        l.lastError = nil
        l.warnings.removeAll()
    }

    /// libtiff's last error on this thread, or `fallback`.
    static func lastError(or fallback: String) -> String {
        log.lastError ?? fallback
    }

    // MARK: fields (TIFFSetField/TIFFGetField are variadic; Swift calls the va_list forms)

    @discardableResult
    static func set(_ tif: OpaquePointer, _ tag: Int32, _ args: CVarArg...) -> Bool {
        withVaList(args) { TIFFVSetField(tif, UInt32(tag), $0) } == 1
    }

    /// Reads a scalar field (with libtiff's default when `defaulted`); nil when absent.
    static func get<T: FixedWidthInteger>(_ tif: OpaquePointer, _ tag: Int32, _ type: T.Type,
                                          defaulted: Bool = true) -> T? {
        var value: T = 0
        let ok = withUnsafeMutablePointer(to: &value) { p in
            withVaList([p]) {
                defaulted ? TIFFVGetFieldDefaulted(tif, UInt32(tag), $0) : TIFFVGetField(tif, UInt32(tag), $0)
            }
        }
        return ok == 1 ? value : nil
    }

    /// Reads a float field (XResolution, YResolution); nil when absent.
    static func getFloat(_ tif: OpaquePointer, _ tag: Int32) -> Float? {
        var value: Float = 0
        let ok = withUnsafeMutablePointer(to: &value) { p in
            withVaList([p]) { TIFFVGetField(tif, UInt32(tag), $0) }
        }
        return ok == 1 ? value : nil
    }

    /// Reads an ASCII field (ImageDescription); nil when absent.
    static func getString(_ tif: OpaquePointer, _ tag: Int32) -> String? {
        var value: UnsafeMutablePointer<CChar>?
        let ok = withUnsafeMutablePointer(to: &value) { p in
            withVaList([p]) { TIFFVGetField(tif, UInt32(tag), $0) }
        }
        guard ok == 1, let value else { return nil }
        return String(cString: value)
    }
}
