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
            XCTAssertTrue("\(e)".hasPrefix("UNetConfig: invalid argument: the weights of its widest convolution (kernel 3, 2-D, 8388608 channels) alone needs 2.36e+06 GiB, more than the "), "\(e)")
        }
        config.firstFilters = Int.max / 2
        XCTAssertThrowsError(try UNet(config, rng: &rng)) { e in
            XCTAssertTrue("\(e)".contains("alone needs more bytes than a 64-bit size can count"), "\(e)")
        }
        config.firstFilters = 8
        XCTAssertNoThrow(try UNet(config, rng: &rng))
    }
}
