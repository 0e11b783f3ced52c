import CTIFF
import Foundation
import LucidCore
@testable import LucidImaging
import LucidTestSupport
import XCTest

final class TIFFTests: XCTestCase {
    func testRoundTripEveryTypeAndAxes() throws {
        let dir = try temporaryFolder(self)
        let cases: [(String, [Int])] = [("YX", [5, 7]), ("ZYX", [3, 5, 7]), ("CYX", [2, 5, 7]),
                                         ("CZYX", [2, 3, 5, 7]), ("TYX", [4, 3, 6]), ("TCZYX", [2, 3, 2, 4, 5])]
        var seed: UInt64 = 0
        for type in PixelType.allCases {
            for (axes, shape) in cases {
                seed += 1
                let data = randomData(shape, type, seed: seed)
                let img = Image(data: data, axes: axes, pixelSize: 0.65, zSpacing: axes.contains("Z") ? 2.5 : nil)
                let path = dir.appendingPathComponent("\(type)-\(axes).tif").path
                try img.write(to: path, as: type)
                let back = try Image.read(path)
                XCTAssertEqual(back.axes, axes, "\(type) \(axes)")
                XCTAssertEqual(back.data.shape, shape, "\(type) \(axes)")
                XCTAssertEqual(back.data.scalars, data.scalars, "\(type) \(axes)")
                XCTAssertEqual(back.sourceType, type, "\(type) \(axes)")
                XCTAssertEqual(back.pixelSize ?? 0, 0.65, accuracy: 1e-9, "\(type) \(axes)")
                if axes.contains("Z") { XCTAssertEqual(back.zSpacing, 2.5) } else { XCTAssertNil(back.zSpacing) }
            }
        }
    }

    func testIntegerWriteRoundsAndClamps() throws {
        let dir = try temporaryFolder(self)
        let data = try Tensor(shape: [1, 6], scalars: [-3, 1.4, 1.6, 300, .nan, 254.5])
        let path = dir.appendingPathComponent("u8.tif").path
        try Image(data: data, axes: "YX").write(to: path, as: .uint8)
        XCTAssertEqual(try Image.read(path).data.scalars, [0, 1, 2, 255, 0, 254])
        try Image(data: try Tensor(shape: [1, 3], scalars: [-40000, -2.5, 40000]), axes: "YX").write(to: path, as: .int16)
        XCTAssertEqual(try Image.read(path).data.scalars, [-32768, -2, 32767])
    }

    func testNonCanonicalAxesReadBackInTCZOrder() throws {
        let dir = try temporaryFolder(self)
        let data = randomData([3, 2, 4, 5], .float32, seed: 9)  // Z, C, Y, X
        let path = dir.appendingPathComponent("zc.tif").path
        try Image(data: data, axes: "ZCYX").write(to: path)
        let back = try Image.read(path)
        XCTAssertEqual(back.axes, "CZYX")
        XCTAssertEqual(back.data.shape, [2, 3, 4, 5])
        for c in 0..<2 { for z in 0..<3 { for y in 0..<4 { for x in 0..<5 {
            XCTAssertEqual(back.data[c, z, y, x], data[z, c, y, x])
        } } } }
    }

    func testWriterOptionsCompressionTilesBigTIFF() throws {
        let dir = try temporaryFolder(self)
        let data = randomData([3, 37, 45], .uint16, seed: 4)
        let img = Image(data: data, axes: "ZYX", pixelSize: 0.1, zSpacing: 0.3)
        let options = [TIFFWriteOptions(compression: .lzw), TIFFWriteOptions(compression: .deflate, tileSize: 16),
                       TIFFWriteOptions(compression: .packbits), TIFFWriteOptions(bigTIFF: true, tileSize: 32)]
        for (i, o) in options.enumerated() {
            for type in [PixelType.uint16, .float32] {
                let path = dir.appendingPathComponent("opt\(i)-\(type).tif").path
                try img.write(to: path, as: type, options: o)
                let back = try Image.read(path)
                XCTAssertEqual(back.axes, "ZYX")
                XCTAssertEqual(back.data.scalars, data.scalars, "\(o) \(type)")
                XCTAssertEqual(back.zSpacing, 0.3)
                XCTAssertEqual(back.pixelSize ?? 0, 0.1, accuracy: 1e-9)
            }
        }
        let info = try Image.info(dir.appendingPathComponent("opt1-uint16.tif").path)
        XCTAssertEqual(info, ImageInfo(axes: "ZYX", shape: [3, 37, 45], pixelSize: 0.1, zSpacing: 0.3, sourceType: .uint16,
                                       bitsPerSample: 16, compression: "deflate", tiled: true, bigTIFF: false, pages: 3))
        XCTAssertTrue(try Image.info(dir.appendingPathComponent("opt3-float32.tif").path).bigTIFF)
        // The BigTIFF request really gives a BigTIFF (version 43 in the header).
        let header = try Data(contentsOf: dir.appendingPathComponent("opt3-uint16.tif"))
        XCTAssertEqual(Array(header.prefix(4)), [0x49, 0x49, 43, 0])
        XCTAssertThrowsError(try img.write(to: dir.appendingPathComponent("x.tif").path, as: .uint8,
                                           options: TIFFWriteOptions(tileSize: 20))) { e in
            XCTAssertTrue("\(e)".contains("tileSize 20"), "\(e)")
        }
    }

    /// Files written by libtiff directly: compressed, tiled, BigTIFF, big-endian, no ImageJ metadata.
    func testReadsFilesWrittenByLibtiff() throws {
        let dir = try temporaryFolder(self)
        let (H, W) = (23, 29)
        var rng = RandomGenerator(seed: 3)
        let pages = (0..<4).map { _ in (0..<(H * W)).map { _ in UInt16(rng.int(below: 65536)) } }
        let expected = pages.flatMap { $0.map(Float.init) }
        let variants: [(String, String, Int32, Bool, Int?)] = [
            ("plain", "w", COMPRESSION_NONE, false, nil),
            ("lzw", "w", COMPRESSION_LZW, true, nil),
            ("deflate", "w", COMPRESSION_ADOBE_DEFLATE, true, nil),
            ("packbits", "w", COMPRESSION_PACKBITS, false, nil),
            ("tiled", "w", COMPRESSION_NONE, false, 16),
            ("tiled-lzw", "w", COMPRESSION_LZW, false, 16),
            ("bigtiff", "w8", COMPRESSION_ADOBE_DEFLATE, false, nil),
            ("bigendian", "wb", COMPRESSION_NONE, false, nil),
            ("bigendian-tiled-bigtiff", "wb8", COMPRESSION_NONE, false, 16),
        ]
        for (name, mode, compression, predictor, tile) in variants {
            let path = dir.appendingPathComponent("\(name).tif").path
            try writeWithLibtiff(path, mode: mode, pages: pages, height: H, width: W,
                                 compression: compression, predictor: predictor, tile: tile)
            let img = try Image.read(path)
            XCTAssertEqual(img.axes, "ZYX", name)
            XCTAssertEqual(img.data.shape, [4, H, W], name)
            XCTAssertEqual(img.data.scalars, expected, name)
            XCTAssertEqual(img.sourceType, .uint16, name)
            XCTAssertNil(img.zSpacing, name)
        }
        // Reduced-resolution pages (thumbnails) are skipped.
        let withThumbs = dir.appendingPathComponent("thumbs.tif").path
        try writeWithLibtiff(withThumbs, pages: pages, height: H, width: W, thumbnailAfter: [0, 2])
        let thumbs = try Image.read(withThumbs)
        XCTAssertEqual(thumbs.data.shape, [4, H, W])
        XCTAssertEqual(thumbs.data.scalars, expected)

        let single = dir.appendingPathComponent("single.tif").path
        try writeWithLibtiff(single, pages: [pages[0]], height: H, width: W)
        let one = try Image.read(single)
        XCTAssertEqual(one.axes, "YX")
        XCTAssertEqual(one.data.shape, [H, W])
    }

    /// RGB pages (3 samples per pixel, interleaved or planar) read as a C axis.
    func testReadsMultiSamplePages() throws {
        let dir = try temporaryFolder(self)
        let (H, W) = (5, 6)
        for (name, planar) in [("contig", PLANARCONFIG_CONTIG), ("separate", PLANARCONFIG_SEPARATE)] {
            for pages in [1, 2] {
                let path = dir.appendingPathComponent("rgb-\(name)-\(pages).tif").path
                guard let tif = TIFFOpen(path, "w") else { return XCTFail("TIFFOpen") }
                func set(_ tag: Int32, _ args: CVarArg...) {
                    XCTAssertEqual(withVaList(args) { TIFFVSetField(tif, UInt32(tag), $0) }, 1)
                }
                for p in 0..<pages {
                    set(TIFFTAG_IMAGEWIDTH, UInt32(W)); set(TIFFTAG_IMAGELENGTH, UInt32(H))
                    set(TIFFTAG_BITSPERSAMPLE, Int32(8)); set(TIFFTAG_SAMPLESPERPIXEL, Int32(3))
                    set(TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB); set(TIFFTAG_PLANARCONFIG, planar)
                    set(TIFFTAG_ROWSPERSTRIP, UInt32(2))
                    // value(p, c, y, x) = 100 p + 30 c + 5 y + x (fits in 8 bits for p < 2)
                    for s in 0..<(planar == PLANARCONFIG_SEPARATE ? 3 : 1) {
                        for y0 in stride(from: 0, to: H, by: 2) {
                            var bytes: [UInt8] = []
                            for y in y0..<min(H, y0 + 2) {
                                for x in 0..<W {
                                    if planar == PLANARCONFIG_SEPARATE { bytes.append(UInt8(100 * p + 30 * s + 5 * y + x)) } else {
                                        for c in 0..<3 { bytes.append(UInt8(100 * p + 30 * c + 5 * y + x)) }
                                    }
                                }
                            }
                            let strip = UInt32(s * 3 + y0 / 2)
                            _ = bytes.withUnsafeMutableBytes { TIFFWriteEncodedStrip(tif, strip, $0.baseAddress, tmsize_t($0.count)) }
                        }
                    }
                    XCTAssertEqual(TIFFWriteDirectory(tif), 1)
                }
                TIFFClose(tif)
                let img = try Image.read(path)
                XCTAssertEqual(img.axes, pages == 1 ? "CYX" : "CZYX", path)
                XCTAssertEqual(img.data.shape, pages == 1 ? [3, H, W] : [3, 2, H, W], path)
                XCTAssertEqual(img.sourceType, .uint8)
                if pages == 2 { XCTAssertEqual(img.data[2, 1, 4, 5], Float(100 + 60 + 20 + 5), path) }
                else { XCTAssertEqual(img.data[1, 3, 2], Float(30 + 15 + 2), path) }
            }
        }
    }

    func testImageJDescriptionVariants() throws {
        let dir = try temporaryFolder(self)
        let pages = (0..<6).map { p in (0..<12).map { UInt16(p * 100 + $0) } }
        let cases: [(String, String, [Int])] = [
            ("ImageJ=1.53t\nimages=6\n", "ZYX", [6, 3, 4]),
            ("ImageJ=1.53t\nimages=6\nframes=6\n", "TYX", [6, 3, 4]),
            ("ImageJ=1.53t\nimages=6\nchannels=2\nslices=3\nhyperstack=true\n", "CZYX", [2, 3, 3, 4]),
            ("ImageJ=1.53t\nimages=6\nchannels=3\nframes=2\nhyperstack=true\n", "TCYX", [2, 3, 3, 4]),
            ("ImageJ=1.53t\nimages=5\nslices=5\n", "ZYX", [6, 3, 4]),  // inconsistent: plain stack
        ]
        for (i, (desc, axes, shape)) in cases.enumerated() {
            let path = dir.appendingPathComponent("ij\(i).tif").path
            try writeWithLibtiff(path, pages: pages, height: 3, width: 4, description: desc)
            let img = try Image.read(path)
            XCTAssertEqual(img.axes, axes, desc)
            XCTAssertEqual(img.data.shape, shape, desc)
        }
        // channels=2, slices=3: ImageJ page p = z * 2 + c.
        let img = try Image.read(dir.appendingPathComponent("ij2.tif").path)
        XCTAssertEqual(img.data[1, 2, 0, 1], Float((2 * 2 + 1) * 100 + 1))
    }

    func testOMEXMLGivesAxesAndCalibration() throws {
        let dir = try temporaryFolder(self)
        // 2 channels × 3 slices, channel fastest (XYCZT), plus one page of a second series.
        let pages = (0..<7).map { p in (0..<12).map { UInt16(p * 100 + $0) } }
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">\
            <Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint16" SizeX="4" SizeY="3" \
            SizeC="2" SizeZ="3" SizeT="1" PhysicalSizeX="120" PhysicalSizeXUnit="nm" PhysicalSizeZ="0.5">\
            <TiffData/></Pixels></Image></OME>
            """
        let path = dir.appendingPathComponent("ome.tif").path
        try writeWithLibtiff(path, pages: pages, height: 3, width: 4, description: xml)
        let img = try Image.read(path)
        XCTAssertEqual(img.axes, "CZYX")
        XCTAssertEqual(img.data.shape, [2, 3, 3, 4])
        XCTAssertEqual(img.data[1, 2, 0, 3], Float((2 * 2 + 1) * 100 + 3))  // page z·2 + c
        XCTAssertEqual(img.pixelSize ?? 0, 0.12, accuracy: 1e-12)
        XCTAssertEqual(img.zSpacing, 0.5)

        guard tifffileAvailable() else { return print("skipping tifffile OME check: python3 cannot import tifffile and numpy") }
        let other = dir.appendingPathComponent("tifffile-ome.tif").path
        try python("""
            import tifffile, numpy as np
            a = np.arange(2*3*2*4*5, dtype=np.uint16).reshape(2, 3, 2, 4, 5)
            tifffile.imwrite('\(other)', a, ome=True, metadata={'axes': 'TZCYX', 'PhysicalSizeX': 0.3,
                             'PhysicalSizeY': 0.3, 'PhysicalSizeZ': 1.2})
            """)
        let t = try Image.read(other)
        XCTAssertEqual(t.axes, "TCZYX")
        // tifffile's plain (shaped JSON) description with axes.
        let shaped = dir.appendingPathComponent("tifffile-shaped.tif").path
        try python("""
            import tifffile, numpy as np
            tifffile.imwrite('\(shaped)', np.arange(3*2*4*5, dtype=np.float32).reshape(3, 2, 4, 5), metadata={'axes': 'ZCYX'})
            """)
        let s = try Image.read(shaped)
        XCTAssertEqual(s.axes, "CZYX")
        XCTAssertEqual(s.data[1, 2, 3, 4], Float(((2 * 2 + 1) * 4 + 3) * 5 + 4))
        XCTAssertEqual(t.data.shape, [2, 2, 3, 4, 5])
        XCTAssertEqual(t.data[1, 1, 2, 3, 4], Float((((1 * 3 + 2) * 2 + 1) * 4 + 3) * 5 + 4))
        XCTAssertEqual(t.pixelSize, 0.3)
        XCTAssertEqual(t.zSpacing, 1.2)
    }

    /// ImageJ stores stacks over 4 GiB as one IFD followed by the raw planes back to back.
    func testImageJContiguousLayout() throws {
        let dir = try temporaryFolder(self)
        let (H, W, N) = (3, 4, 5)
        let desc = Array("ImageJ=1.53t\nimages=\(N)\nslices=\(N)\n\0".utf8)
        let descOffset = 8 + handBuiltIFDSize(9), dataOffset = descOffset + desc.count
        var pixels = Data()
        for i in 0..<(N * H * W) { pixels.append(contentsOf: [UInt8((i * 7) & 255), UInt8((i * 7) >> 8)]) }
        let d = handBuiltTIFF(entries: [(256, 3, 1, W), (257, 3, 1, H), (258, 3, 1, 16), (259, 3, 1, 1), (262, 3, 1, 1),
                                        (270, 2, desc.count, descOffset), (273, 4, 1, dataOffset), (278, 3, 1, H),
                                        (279, 4, 1, H * W * 2)], extra: desc, pixels: pixels)
        let path = dir.appendingPathComponent("contiguous.tif").path
        try d.write(to: URL(fileURLWithPath: path))
        let img = try Image.read(path)
        XCTAssertEqual(img.axes, "ZYX")
        XCTAssertEqual(img.data.shape, [N, H, W])
        XCTAssertEqual(try Image.info(path).shape, [N, H, W])
        XCTAssertEqual(img.data.scalars, (0..<(N * H * W)).map { Float($0 * 7) })
        // Cut the last plane short: the error names the file.
        try d.prefix(d.count - 5).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try Image.read(path)) { e in
            XCTAssertTrue("\(e)".contains(path) && "\(e)".contains("truncated"), "\(e)")
        }
    }

    func testCorruptTruncatedAndMissingFilesThrowNamingTheFile() throws {
        let dir = try temporaryFolder(self)
        var rng = RandomGenerator(seed: 5)
        let garbage = dir.appendingPathComponent("garbage.tif").path
        var bytes: [UInt8] = [0x49, 0x49, 42, 0, 8, 0, 0, 0]
        bytes += (0..<400).map { _ in UInt8(rng.int(below: 256)) }
        try Data(bytes).write(to: URL(fileURLWithPath: garbage))
        let text = dir.appendingPathComponent("text.tif").path
        try Data("hello, not a tiff".utf8).write(to: URL(fileURLWithPath: text))

        let data = randomData([4, 64, 64], .uint16, seed: 6)
        var truncated: [String] = []
        for c in [TIFFCompression.none, .deflate] {
            let full = dir.appendingPathComponent("full-\(c).tif").path
            try Image(data: data, axes: "ZYX").write(to: full, as: .uint16, options: TIFFWriteOptions(compression: c))
            let contents = try Data(contentsOf: URL(fileURLWithPath: full))
            // Keep the header, the first page and part of the second.
            let cut = dir.appendingPathComponent("cut-\(c).tif").path
            try contents.prefix(contents.count / 3).write(to: URL(fileURLWithPath: cut))
            truncated.append(cut)
        }
        let missing = dir.appendingPathComponent("missing.tif").path
        for path in [garbage, text, missing, dir.path] + truncated {
            XCTAssertThrowsError(try Image.read(path), path) { e in
                XCTAssertTrue(e is ImagingError, "\(e)")
                let message = "\(e)"
                XCTAssertTrue(message.contains("'\(path)'"), message)
                XCTAssertFalse(message.contains("\n"), message)
            }
        }
    }

    /// Size tags claiming more pixels than memory holds give an error, not a failed allocation.
    func testAbsurdSizeTagsThrow() throws {
        let dir = try temporaryFolder(self)
        let path = dir.appendingPathComponent("huge.tif").path
        let big = 4_000_000_000
        let d = handBuiltTIFF(entries: [(256, 4, 1, big), (257, 4, 1, big), (258, 3, 1, 32), (259, 3, 1, 1),
                                        (262, 3, 1, 1), (273, 4, 1, 8), (278, 4, 1, 1), (279, 4, 1, 100),
                                        (339, 3, 1, 3)], pixels: Data(count: 100))
        try d.write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try Image.read(path)) { e in
            XCTAssertTrue("\(e)".hasPrefix("cannot read '\(path)'"), "\(e)")
        }
    }

    func testAxesValidationNamesTheString() throws {
        let dir = try temporaryFolder(self)
        let path = dir.appendingPathComponent("bad.tif").path
        for (axes, shape, why) in [("ZZYX", [2, 2, 3, 3], "twice"), ("YXZ", [3, 3, 2], "end with"),
                                   ("QYX", [2, 3, 3], "unknown axis 'Q'"), ("ZYX", [3, 3], "rank 2")] {
            XCTAssertThrowsError(try Image(data: Tensor(zeros: shape), axes: axes).write(to: path)) { e in
                XCTAssertTrue("\(e)".contains("'\(axes)'") && "\(e)".contains(why), "\(e)")
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }

    func testWriteIsAtomicAndReportsBadFolders() throws {
        let dir = try temporaryFolder(self)
        let path = dir.appendingPathComponent("a.tif").path
        try Image(data: Tensor(zeros: [4, 4]), axes: "YX").write(to: path)
        try Image(data: Tensor(ones: [2, 4, 4]), axes: "ZYX").write(to: path)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["a.tif"])
        XCTAssertEqual(try Image.read(path).data.shape, [2, 4, 4])
        let bad = dir.appendingPathComponent("no/such/folder/b.tif").path
        XCTAssertThrowsError(try Image(data: Tensor(zeros: [4, 4]), axes: "YX").write(to: bad)) { e in
            XCTAssertTrue("\(e)".contains("cannot write '\(bad)'"), "\(e)")
            XCTAssertFalse("\(e)".contains(".tmp"), "\(e)")
        }
    }

    /// Interoperability with tifffile (the reader CSBDeep, CAREamics and napari use).
    func testTifffileReadsLucidAndLucidReadsTifffile() throws {
        guard tifffileAvailable() else {
            print("skipping tifffile interoperability: python3 cannot import tifffile and numpy")
            return
        }
        let dir = try temporaryFolder(self)
        let data = randomData([2, 3, 5, 7], .uint16, seed: 8)
        let path = dir.appendingPathComponent("lucid.tif").path
        try Image(data: data, axes: "CZYX", pixelSize: 0.25, zSpacing: 1.5).write(to: path, as: .uint16)
        let out = try python("""
            import tifffile, numpy as np
            with tifffile.TiffFile('\(path)') as f:
                s = f.series[0]
                a = s.asarray()
                ij = f.imagej_metadata
                x = f.pages[0].tags['XResolution'].value
                print(s.axes, a.shape, a.dtype, int(a.astype(np.int64).sum()), ij['spacing'], ij['unit'], x[1] / x[0])
                print(int(a[2, 1, 3, 4]))  # ZCYX
            """)
        let lines = out.split(separator: "\n").map(String.init)
        let sum = data.scalars.reduce(0) { $0 + Int($1) }
        XCTAssertEqual(lines.first, "ZCYX (3, 2, 5, 7) uint16 \(sum) 1.5 micron 0.25")
        XCTAssertEqual(lines.last, "\(Int(data[1, 2, 3, 4]))")

        // tifffile writes an ImageJ hyperstack (TZCYX order) that Lucid reads as TCZYX.
        let other = dir.appendingPathComponent("tifffile.tif").path
        try python("""
            import tifffile, numpy as np
            a = (np.arange(2*3*2*4*5, dtype=np.float32) * 0.5).reshape(2, 3, 2, 4, 5)
            tifffile.imwrite('\(other)', a, imagej=True, resolution=(1/0.2, 1/0.2),
                             metadata={'axes': 'TZCYX', 'spacing': 0.7, 'unit': 'um'})
            """)
        let img = try Image.read(other)
        XCTAssertEqual(img.axes, "TCZYX")
        XCTAssertEqual(img.data.shape, [2, 2, 3, 4, 5])
        XCTAssertEqual(img.zSpacing, 0.7)
        XCTAssertEqual(img.pixelSize ?? 0, 0.2, accuracy: 1e-9)
        // a[t, z, c, y, x] = flat index · 0.5
        XCTAssertEqual(img.data[1, 1, 2, 3, 4], Float(((((1 * 3 + 2) * 2 + 1) * 4 + 3) * 5 + 4)) * 0.5)
    }
}

final class TIFFLayoutTests: XCTestCase {
    /// ImageJ needs the planes of a hyperstack back to back; check the strip offsets with libtiff.
    func testPlanesAreStoredContiguously() throws {
        let dir = try temporaryFolder(self)
        let path = dir.appendingPathComponent("c.tif").path
        let data = randomData([2, 3, 300, 200], .float32, seed: 2)  // several strips per plane
        try Image(data: data, axes: "CZYX").write(to: path)
        guard let tif = TIFFOpen(path, "r") else { return XCTFail("TIFFOpen failed") }
        defer { TIFFClose(tif) }
        var next: UInt64?
        var pages = 0, strips = 0
        repeat {
            for s in 0..<TIFFNumberOfStrips(tif) {
                let offset = TIFFGetStrileOffset(tif, s), bytes = TIFFGetStrileByteCount(tif, s)
                if let next { XCTAssertEqual(offset, next, "page \(pages) strip \(s)") }
                next = offset + bytes
                strips += 1
            }
            pages += 1
        } while TIFFReadDirectory(tif) == 1
        XCTAssertEqual(pages, 6)
        XCTAssertGreaterThan(strips, 6)
    }
}
