// swift-tools-version:6.0
import PackageDescription

/// libFuzzer harnesses for Lucid's parsers of untrusted input, built outside the normal build
/// (`make fuzz`: `swift build -c release --sanitize=fuzzer --sanitize=address` here). Each
/// executable defines `LLVMFuzzerTestOneInput`; libFuzzer provides `main`.
let harness: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]

let package = Package(
    name: "LucidFuzz",
    dependencies: [.package(name: "Lucid", path: "..")],
    targets: [
        .target(name: "FuzzSupport", dependencies: [.product(name: "LucidCore", package: "Lucid")]),
        .executableTarget(name: "fuzz-tiff", dependencies: ["FuzzSupport", .product(name: "LucidImaging", package: "Lucid")],
                          swiftSettings: harness),
        .executableTarget(name: "fuzz-safetensors", dependencies: ["FuzzSupport", .product(name: "LucidNN", package: "Lucid")],
                          swiftSettings: harness),
        .executableTarget(name: "fuzz-recipe", dependencies: ["FuzzSupport", .product(name: "LucidRestore", package: "Lucid")],
                          swiftSettings: harness),
        .executableTarget(name: "fuzz-manifest", dependencies: ["FuzzSupport", .product(name: "LucidRestore", package: "Lucid")],
                          swiftSettings: harness),
        .executableTarget(name: "fuzz-checkpoint",
                          dependencies: ["FuzzSupport", .product(name: "LucidRestore", package: "Lucid"),
                                         .product(name: "LucidNN", package: "Lucid")],
                          swiftSettings: harness),
    ],
    swiftLanguageModes: [.v5]
)
