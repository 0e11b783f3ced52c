import Foundation
@testable import LucidImaging
import LucidTestSupport
import XCTest

final class ImageFilesTests: XCTestCase {
    func testFilesFoldersAndGlobs() throws {
        let dir = try temporaryFolder(self)
        let fm = FileManager.default
        for sub in ["stacks", "data/a", "data/b/c", "data/.hidden"] {
            try fm.createDirectory(at: dir.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        for f in ["stacks/b.tif", "stacks/a.tif", "stacks/c.TIFF", "stacks/notes.txt", "data/top.tif",
                  "data/a/x.tif", "data/b/c/y.tif", "data/b/c/z.png", "data/.hidden/h.tif"] {
            XCTAssertTrue(fm.createFile(atPath: dir.appendingPathComponent(f).path, contents: Data()))
        }
        let root = dir.path
        XCTAssertEqual(try ImageFiles.resolve(["\(root)/stacks/*.tif"]), ["\(root)/stacks/a.tif", "\(root)/stacks/b.tif"])
        XCTAssertEqual(try ImageFiles.resolve(["\(root)/stacks"]),
                       ["\(root)/stacks/a.tif", "\(root)/stacks/b.tif", "\(root)/stacks/c.TIFF"])
        XCTAssertEqual(try ImageFiles.resolve(["\(root)/data/**/*.tif"]),
                       ["\(root)/data/a/x.tif", "\(root)/data/b/c/y.tif", "\(root)/data/top.tif"])
        XCTAssertEqual(try ImageFiles.resolve(["\(root)/stacks/b.tif", "\(root)/stacks/?.tif"]),
                       ["\(root)/stacks/b.tif", "\(root)/stacks/a.tif"])
        // Relative patterns stay relative.
        let cwd = fm.currentDirectoryPath
        XCTAssertTrue(fm.changeCurrentDirectoryPath(root))
        defer { _ = fm.changeCurrentDirectoryPath(cwd) }
        XCTAssertEqual(try ImageFiles.resolve(["stacks/[ab].tif"]), ["stacks/a.tif", "stacks/b.tif"])

        for (input, why) in [("\(root)/stacks/*.png", "matches no file"), ("\(root)/missing.tif", "no such file"),
                             ("\(root)/data/a/../b", "holds no")] {
            XCTAssertThrowsError(try ImageFiles.resolve([input])) { e in
                XCTAssertTrue("\(e)".contains("'\(input)'") && "\(e)".contains(why), "\(e)")
            }
        }
    }

    func testPairsByName() throws {
        let pairs = try ImageFiles.pairs(sources: ["low/a.tif", "low/b.tif"], targets: ["high/b.tif", "high/a.tif"])
        XCTAssertEqual(pairs.map(\.target), ["high/a.tif", "high/b.tif"])
        XCTAssertThrowsError(try ImageFiles.pairs(sources: ["low/a.tif"], targets: ["high/c.tif"])) { e in
            XCTAssertTrue("\(e)".contains("low/a.tif"), "\(e)")
        }
    }
}
