import Foundation
import LucidCore
import LucidImaging
import LucidNN
@testable import LucidRestore
import LucidTestSupport
import XCTest

final class TrainingReportTests: XCTestCase {
    private var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "lucid-report-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/noisy", withIntermediateDirectories: true)
        let clean = try SyntheticSpecimen(shape: [128, 128], seed: 2).render()
        var rng = RandomGenerator(seed: 9)
        try Image(data: clean.map { 20 * $0 + 2 * rng.normal() }, axes: "YX").write(to: dir + "/noisy/a.tif")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// Trains a tiny Noise2Self model; `before` sees each step (and the report written so far).
    private func train(steps: Int = 6, before: ((Int) -> Void)? = nil) throws -> String {
        let recipe = try Recipe.parse(yaml: """
            method: noise2self
            data: {train: "\(dir!)/noisy/*.tif", axes: YX, patch: [32, 32], validation: 0.25}
            model: {depth: 1, filters: 4}
            training: {steps: \(steps), batch: 4, lr: 1.0e-3, seed: 3, validate_every: 3}
            output: \(dir!)/ckpt
            """, file: "test.yaml")
        let trainer = Trainer(recipe: recipe)
        trainer.showProgress = false
        if let before { trainer.extraCallbacks = [BeforeStep { step, _ in before(step) }] }
        return try trainer.run().output
    }

    private func report(_ folder: String) throws -> String {
        try String(contentsOfFile: folder + "/" + TrainingReport.fileName, encoding: .utf8)
    }

    /// The embedded PNGs, decoded.
    private func images(_ html: String) throws -> [Data] {
        html.components(separatedBy: "src=\"data:image/png;base64,").dropFirst().compactMap { part in
            part.split(separator: "\"", maxSplits: 1).first.flatMap { Data(base64Encoded: String($0)) }
        }
    }

    func testTrainingKeepsTheReportCurrentAtEachValidation() throws {
        var midRun: String?
        let folder = try train { step in
            if step == 4 { midRun = try? String(contentsOfFile: self.dir + "/ckpt/report.html", encoding: .utf8) }
        }
        let during = try XCTUnwrap(midRun, "the report exists after the first validation")
        XCTAssertTrue(during.contains("running: step 3 of 6"))
        XCTAssertTrue(during.contains("http-equiv=\"refresh\""), "a running report reloads itself")
        let html = try report(folder)
        XCTAssertTrue(html.contains("finished at step 6 of 6 (completed)"))
        XCTAssertFalse(html.contains("http-equiv=\"refresh\""))
        XCTAssertEqual(html.components(separatedBy: "<svg class=\"chart\"").count - 1, 3, "loss, learning rate, throughput")
        XCTAssertFalse(html.contains("<script"), "self-contained and static")
        XCTAssertFalse(html.contains("src=\"http"), "nothing is fetched")
        let pngs = try images(html)
        XCTAssertEqual(pngs.count, 9, "3 validation examples × input | prediction | target")
        for png in pngs { XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) }
        // The loss chart holds one point per step and the validation curve one per validation.
        let csv = try String(contentsOfFile: folder + "/metrics.csv", encoding: .utf8)
        XCTAssertEqual(csv.split(separator: "\n").count, 7)
        XCTAssertEqual(html.components(separatedBy: "r=\"3\" fill=\"#d62728\"").count - 1, 2, "validations at steps 3 and 6")
    }

    func testReportCommandRegeneratesFromTheCheckpoint() throws {
        let folder = try train()
        try FileManager.default.removeItem(atPath: folder + "/report.html")
        XCTAssertNil(try TrainingReport.regenerate(checkpointFolder: folder))
        XCTAssertEqual(try images(report(folder)).count, 9)
        try FileManager.default.removeItem(atPath: dir + "/noisy/a.tif")
        let missing = try XCTUnwrap(try TrainingReport.regenerate(checkpointFolder: folder))
        XCTAssertTrue(missing.hasPrefix("validation examples unavailable: "), missing)
        let html = try report(folder)
        XCTAssertTrue(html.contains("validation examples unavailable"))
        XCTAssertEqual(try images(html).count, 0)
        XCTAssertEqual(html.components(separatedBy: "<svg class=\"chart\"").count - 1, 3, "the curves need only metrics.csv")
        XCTAssertThrowsError(try TrainingReport.regenerate(checkpointFolder: dir + "/nothing")) { e in
            XCTAssertEqual("\(e)", "\(dir!)/nothing: no such checkpoint folder")
        }
    }

    /// Label-free columns add a Pearson chart; an empty table draws placeholders; text is escaped.
    func testChartsFollowTheColumns() throws {
        let metrics = MetricsTable(columns: ["step", "loss", "val_loss", "val_pearson", "val_pearson_0", "val_pearson_1", "lr", "patches_per_s", "elapsed"],
                                   rows: (1...50).map { s in
                                       let v: Double? = s % 10 == 0 ? 1 / Double(s) : nil
                                       return [Double(s), 2 / Double(s), v, v.map { 1 - $0 }, v.map { 1 - 2 * $0 }, v.map { 1 - $0 / 2 }, 1e-3, 100, Double(s)]
                                   })
        let html = try TrainingReport.html(metrics: metrics, metadata: nil, triplets: [], title: "a<b", state: .unknown, note: nil)
        XCTAssertEqual(html.components(separatedBy: "<svg class=\"chart\"").count - 1, 4)
        XCTAssertTrue(html.contains("Validation Pearson r") && html.contains("channel 1"))
        XCTAssertTrue(html.contains("a&lt;b") && !html.contains("a<b"))
        let empty = try TrainingReport.html(metrics: MetricsTable(columns: [], rows: []), metadata: nil, triplets: [], title: "x",
                                            state: .running, note: nil)
        XCTAssertTrue(empty.contains("running: step 0"))
        XCTAssertEqual(empty.components(separatedBy: "no data yet").count - 1, 3)
        XCTAssertEqual(SVGChart.ticks(0, 1), [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1])
        XCTAssertEqual(SVGChart.logTicks(-2.2, 0.1), [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1])
    }

    /// Headless Chromium renders the report: each chart's area holds its series' colours, and
    /// each validation image appears on screen pixel for pixel as embedded.
    func testHeadlessChromiumRendersChartsAndImages() throws {
        guard let chromium = Self.chromium() else {
            let why = "no headless Chromium starts here (apt-get install chromium)"
            print("skipping: \(why)")
            throw XCTSkip(why)
        }
        let folder = try train(steps: 30)
        let html = try report(folder)
        // Where the browser lays out each chart and image: a copy with a script that records it.
        let probe = html.replacingOccurrences(of: "</body>", with: """
            <script>document.body.setAttribute('data-rects', JSON.stringify([...document.querySelectorAll('svg.chart, img.triplet')]
              .map(e => { const r = e.getBoundingClientRect(); return [e.tagName, r.x, r.y, r.width, r.height]; })))</script></body>
            """)
        try probe.write(toFile: folder + "/probe.html", atomically: true, encoding: .utf8)
        let window = "--window-size=1200,2400"
        let dom = try Self.run(chromium, ["--dump-dom", window, "file://\(folder)/probe.html"])
        let attribute = try XCTUnwrap(dom.components(separatedBy: "data-rects=\"").dropFirst().first?.split(separator: "\"").first)
        let json = String(attribute).replacingOccurrences(of: "&quot;", with: "\"")
        let rects = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[Any]])
        let shot = folder + "/screenshot.png"
        _ = try Self.run(chromium, ["--screenshot=\(shot)", window, "file://\(folder)/report.html"])
        let pixels = try PNG.readRGB(shot)
        let kept = NSTemporaryDirectory() + "lucid-report-screenshot.png"
        try? FileManager.default.removeItem(atPath: kept)
        try FileManager.default.copyItem(atPath: shot, toPath: kept)
        print("report screenshot: \(kept) (\(pixels.shape[1])×\(pixels.shape[0]))")

        let (height, width) = (pixels.shape[0], pixels.shape[1])
        let p = pixels.scalars
        func rgb(_ x: Int, _ y: Int) -> (Float, Float, Float) {
            let i = (y * width + x) * 3
            return (p[i], p[i + 1], p[i + 2])
        }
        func count(in r: [Int], near color: (Float, Float, Float)) -> Int {
            var n = 0
            for y in r[1]..<min(height, r[1] + r[3]) {
                for x in r[0]..<min(width, r[0] + r[2]) {
                    let c = rgb(x, y)
                    if abs(c.0 - color.0) + abs(c.1 - color.1) + abs(c.2 - color.2) < 0.25 { n += 1 }
                }
            }
            return n
        }
        let charts = rects.filter { $0[0] as? String == "svg" }.map { $0.dropFirst().map { Int(($0 as! Double).rounded()) } }
        let images = rects.filter { $0[0] as? String == "IMG" }.map { $0.dropFirst().map { Int(($0 as! Double).rounded()) } }
        XCTAssertEqual(charts.count, 3)
        XCTAssertEqual(images.count, 9)
        for r in charts + images { XCTAssertLessThanOrEqual(r[1] + r[3], height, "\(r) lies inside the screenshot") }
        // Series colours: loss blue and validation red, learning rate orange, throughput green.
        let blue: (Float, Float, Float) = (31 / 255, 119 / 255, 180 / 255), red: (Float, Float, Float) = (214 / 255, 39 / 255, 40 / 255)
        let orange: (Float, Float, Float) = (1, 127 / 255, 14 / 255), green: (Float, Float, Float) = (44 / 255, 160 / 255, 44 / 255)
        XCTAssertGreaterThan(count(in: charts[0], near: blue), 300, "training loss drawn")
        XCTAssertGreaterThan(count(in: charts[0], near: red), 40, "validation loss drawn")
        XCTAssertGreaterThan(count(in: charts[1], near: orange), 300, "learning rate drawn")
        XCTAssertGreaterThan(count(in: charts[2], near: green), 300, "throughput drawn")
        XCTAssertEqual(count(in: [0, 0, width, 8], near: blue), 0, "the colours appear only in charts")
        // Each image on screen equals its PNG, upscaled without smoothing (1-pixel border).
        let embedded = try self.images(html)
        for (k, r) in images.enumerated() {
            let file = folder + "/embedded-\(k).png"
            try embedded[k].write(to: URL(fileURLWithPath: file))
            let source = try PNG.readRGB(file)
            let (h, w) = (source.shape[0], source.shape[1])
            let scale = (r[2] - 2) / w
            var difference: Float = 0, spread = Set<Int>()
            for y in 0..<h {
                for x in 0..<w {
                    let s = source.scalars[(y * w + x) * 3]
                    let c = rgb(r[0] + 1 + x * scale + scale / 2, r[1] + 1 + y * scale + scale / 2)
                    difference += abs(c.0 - s)
                    spread.insert(Int(c.0 * 255))
                }
            }
            XCTAssertLessThan(difference / Float(h * w), 0.02, "image \(k) on screen differs from its PNG")
            XCTAssertGreaterThan(spread.count, 20, "image \(k) shows structure, not a flat area")
        }
    }

    /// The first browser that starts headless: `chromium` (Debian), `chromium-browser`, `google-chrome`.
    static func chromium() -> String? {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            if let out = try? run(name, ["--version"]), out.lowercased().contains("chrom") { return name }
        }
        return nil
    }

    /// Runs the browser headless (sandbox off for root and containers); returns stdout.
    @discardableResult
    static func run(_ browser: String, _ args: [String]) throws -> String {
        let headless = args == ["--version"] ? [] : ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                                     "--force-device-scale-factor=1", "--force-color-profile=srgb"]
        let r = try runProcess(URL(fileURLWithPath: "/usr/bin/env"), [browser] + headless + args)
        guard r.status == 0 else {
            throw ImagingError.invalidArgument(op: browser, detail: "exited with status \(r.status)")
        }
        return r.out
    }
}
