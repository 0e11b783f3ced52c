import Foundation
import XCTest
import LucidCore
@testable import LucidOptics

/// FFTW wisdom: saved after measuring a size, imported by a later planner, which then plans that
/// size from it without measuring (same plan, same result); corrupt or foreign files ignored
/// with a note.
final class FFTWisdomTests: XCTestCase {
    private final class Notes: @unchecked Sendable { var lines: [String] = [] }

    /// Runs `body` with wisdom in a fresh folder, FFTW's memory cleared, notes collected.
    private func withWisdomFolder(_ body: (String, Notes) throws -> Void) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lucid-fftw-wisdom-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let (savedFolder, savedHandler, savedMeasure) = (Wisdom.folder, Wisdom.noteHandler, FFT.measureNewSizes)
        let notes = Notes()
        Wisdom.folder = folder
        FFT.measureNewSizes = true
        Wisdom.noteHandler = { notes.lines.append($0) }
        FFT.clearCache(wisdom: true)
        defer {
            Wisdom.folder = savedFolder
            Wisdom.noteHandler = savedHandler
            FFT.measureNewSizes = savedMeasure
            FFT.clearCache(wisdom: true)
            try? FileManager.default.removeItem(atPath: folder)
        }
        try body(folder, notes)
    }

    /// The forward transform of a fixed ramp on `shape`.
    private func transform(_ shape: [Int]) throws -> [Float] {
        let plan = try FFT.plan(shape: shape)
        let buffer = plan.makeBuffer()
        for r in 0..<plan.rows { for x in 0..<shape.last! { buffer.base[r * plan.rowStride + x] = Float((r * 7 + x * 3) % 11) - 5 } }
        plan.forward(buffer.base)
        return Array(UnsafeBufferPointer(start: buffer.base, count: plan.bufferCount))
    }

    func testWisdomIsSavedAndReimportedByTheNextPlanner() throws {
        try withWisdomFolder { folder, notes in
            let shape = [6, 10, 12]
            let first = try transform(shape)
            let file = Wisdom.path(kind: "fftw", in: folder)
            let text = try String(contentsOfFile: file, encoding: .utf8)
            XCTAssertTrue(text.hasPrefix(Wisdom.header(kind: "fftw") + "\n(fftw-3"), text)
            // Wisdom entries, in whatever order FFTW's hash table lists them.
            func entries(_ wisdom: String) -> [Substring] { wisdom.split(separator: "\n").sorted() }
            let saved = String(text.drop { $0 != "\n" }.dropFirst())
            XCTAssertEqual(entries(saved), entries(FFT.currentWisdom()))
            XCTAssertGreaterThan(entries(saved).count, 3)

            // A new process, which would estimate new sizes: FFTW forgets everything, imports the
            // file before planning and plans the measured size from it.
            FFT.measureNewSizes = false
            FFT.clearCache(wisdom: true)
            XCTAssertEqual(entries(FFT.currentWisdom()), entries(saved), "the file's wisdom is imported whole")
            XCTAssertEqual(try transform(shape), first, "the plan from wisdom computes bit-identically")
            XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), text, "nothing new to save")
            XCTAssertEqual(notes.lines, [])
        }
    }

    func testCorruptOrForeignWisdomIsIgnoredWithANote() throws {
        for (content, expected) in [
            (Wisdom.header(kind: "fftw") + "\n(fftw-3.3 this is not wisdom", "ignoring corrupt FFTW wisdom"),
            ("lucid-wisdom fftw lucid=0.0.1 isa=neon cpu=Apple M9\n(fftw-3.3.10 fftwf_wisdom)\n", "is not '\(Wisdom.header(kind: "fftw"))'"),
        ] {
            try withWisdomFolder { folder, notes in
                let file = Wisdom.path(kind: "fftw", in: folder)
                try content.write(toFile: file, atomically: true, encoding: .utf8)
                let spectrum = try transform([4, 6, 8])
                XCTAssertEqual(spectrum[0], try transform([4, 6, 8])[0])
                XCTAssertEqual(notes.lines.count, 1, "\(notes.lines)")
                XCTAssertTrue(notes.lines.first?.contains(expected) == true, "\(notes.lines)")
                XCTAssertTrue(notes.lines.first?.contains(file) == true, "\(notes.lines)")
                XCTAssertTrue(try String(contentsOfFile: file, encoding: .utf8).hasPrefix(Wisdom.header(kind: "fftw") + "\n(fftw-3"),
                              "replaced by this machine's wisdom")
            }
        }
    }
}
