import LucidCore
@testable import LucidNN
import XCTest

/// A network description (from a checkpoint's lucid.json) too large to allocate is refused in
/// one line before any weight is allocated.
final class UNetLimitTests: XCTestCase {
    func testNetworkTooLargeForMemoryIsRefused() {
        var config = UNetConfig()
        config.firstFilters = 1 << 20
        config.depth = 4
        var rng = RandomGenerator(seed: 0)
        XCTAssertThrowsError(try UNet(config, rng: &rng)) { e in
            XCTAssertTrue("\(e)".hasPrefix("UNetConfig: invalid argument: its convolution weights (kernel 3, 2-D, 1048576 filters doubling over 4 levels, 2 convolutions per level) needs 7.85e+06 GiB, more than the "), "\(e)")
        }
        config.firstFilters = Int.max / 2
        XCTAssertThrowsError(try UNet(config, rng: &rng)) { e in
            XCTAssertTrue("\(e)".hasSuffix("convolutions per level) needs more bytes than a 64-bit size can count"), "\(e)")
        }
        // Many convolutions per level add up, though each one alone (22 MB) would fit in 256 MB.
        config = UNetConfig()
        config.dims = 3
        config.kernel = 7
        config.firstFilters = 64
        config.convsPerLevel = 9
        setenv("LUCID_MEMORY_LIMIT_MB", "256", 1)
        defer { unsetenv("LUCID_MEMORY_LIMIT_MB") }
        XCTAssertThrowsError(try UNet(config, rng: &rng)) { e in XCTAssertTrue("\(e)".hasSuffix(" needs 0.398 GiB, more than the 0.25 GiB of memory available"), "\(e)") }
        config.firstFilters = 8
        XCTAssertNoThrow(try UNet(config, rng: &rng))
    }
}
