import Foundation
import LucidCore
import LucidImaging
import LucidTestSupport
import XCTest
@testable import LucidRestore

/// One training run at a time per checkpoint folder.
final class OutputLockTests: XCTestCase {
    private func folder() throws -> String { try temporaryFolder(self).path }

    func testASecondLockIsRefusedUntilTheFirstIsReleased() throws {
        let dir = try folder()
        var first: OutputLock? = try OutputLock(folder: dir)
        XCTAssertThrowsError(try OutputLock(folder: dir)) { e in
            XCTAssertEqual("\(e)", "\(dir): another lucid train (pid \(getpid())) is writing this checkpoint folder; wait for it "
                + "to end (or stop it) before training or resuming here, or choose another --output")
        }
        withExtendedLifetime(first) {}
        first = nil
        XCTAssertNoThrow(try OutputLock(folder: dir))
    }

    /// A run started on a folder another run holds stops before it reads data or writes anything.
    func testTrainingRefusesAFolderAnotherRunIsWriting() throws {
        let dir = try folder()
        try Image(data: try SyntheticSpecimen(shape: [32, 32], seed: 1).render(), axes: "YX").write(to: dir + "/a.tif")
        let recipe = try Recipe.parse(yaml: """
            method: noise2self
            data: {train: "\(dir)/a.tif", axes: YX, patch: [16, 16], validation: 0}
            model: {depth: 1, filters: 4}
            training: {steps: 2, batch: 2}
            output: \(dir)/out
            """)
        try FileManager.default.createDirectory(atPath: dir + "/out", withIntermediateDirectories: true)
        var held: OutputLock? = try OutputLock(folder: dir + "/out")
        for resume in [false, true] {
            let trainer = Trainer(recipe: recipe, resume: resume)
            trainer.showProgress = false
            XCTAssertThrowsError(try trainer.run()) { e in
                if resume {
                    XCTAssertEqual("\(e)", "\(dir)/out: --resume needs a checkpoint, but lucid.json is missing")
                } else {
                    XCTAssertTrue("\(e)".hasPrefix("\(dir)/out: another lucid train (pid \(getpid())) is writing"), "\(e)")
                }
            }
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/out"), [OutputLock.fileName])
        withExtendedLifetime(held) {}
        held = nil
        // Released: the run trains, and a resume of it takes the lock again.
        let trainer = Trainer(recipe: recipe)
        trainer.showProgress = false
        XCTAssertEqual(try trainer.run().step, 2)
        var longer = recipe
        longer.training.steps = 3
        let resumed = Trainer(recipe: longer, resume: true)
        resumed.showProgress = false
        XCTAssertEqual(try resumed.run().step, 3)
    }
}
