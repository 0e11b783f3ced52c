// swift-tools-version:6.0
import PackageDescription

/// Lucid is built on the user's own machine, so kernels are compiled for the host CPU
/// (`-target-cpu native` turns `SIMD16<Float>` FMAs into AVX-512 / AVX2 instructions).
let fast: [SwiftSetting] = [
    .unsafeFlags(["-target-cpu", "native", "-enforce-exclusivity=unchecked"]),
]

let package = Package(
    name: "Lucid",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "LucidCore", targets: ["LucidCore"]),
        .library(name: "LucidAutograd", targets: ["LucidAutograd"]),
        .library(name: "LucidNN", targets: ["LucidNN"]),
        .library(name: "LucidOptics", targets: ["LucidOptics"]),
        .library(name: "LucidImaging", targets: ["LucidImaging"]),
        .library(name: "LucidRestore", targets: ["LucidRestore"]),
        .library(name: "LucidInterop", targets: ["LucidInterop"]),
        .library(name: "LucidDistributed", targets: ["LucidDistributed"]),
        .executable(name: "lucid", targets: ["lucid"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CFFTW", pkgConfig: "fftw3f",
                       providers: [.apt(["libfftw3-dev"])]),
        .systemLibrary(name: "CTIFF", pkgConfig: "libtiff-4",
                       providers: [.apt(["libtiff-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CBlosc", pkgConfig: "blosc",
                       providers: [.apt(["libblosc-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CMPI", pkgConfig: "ompi",
                       providers: [.apt(["libopenmpi-dev"])]),

        .target(name: "LucidCore", dependencies: ["COpenBLAS"], swiftSettings: fast),
        .target(name: "LucidAutograd", dependencies: ["LucidCore"], swiftSettings: fast),
        .target(name: "LucidNN", dependencies: ["LucidAutograd"], swiftSettings: fast),
        .target(name: "LucidOptics", dependencies: ["LucidCore", "CFFTW"], swiftSettings: fast),
        .target(name: "LucidImaging", dependencies: ["LucidCore", "CTIFF", "CPNG", "CZlib", "CBlosc", "CZstd"],
                swiftSettings: fast),
        .target(name: "LucidRestore",
                dependencies: ["LucidNN", "LucidImaging", "LucidOptics",
                               .product(name: "Yams", package: "Yams")],
                swiftSettings: fast),
        /// Exchange with the imaging ecosystem: ONNX graphs and bioimage.io model packages.
        .target(name: "LucidInterop",
                dependencies: ["LucidNN", "LucidRestore", "LucidImaging", "CZlib",
                               .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                swiftSettings: fast),
        // Data-parallel training and split prediction over MPI (Open MPI).
        .target(name: "LucidDistributed", dependencies: ["LucidRestore", "CMPI"], swiftSettings: fast),
        .executableTarget(
            name: "lucid",
            dependencies: [
                "LucidCore", "LucidAutograd", "LucidNN", "LucidOptics", "LucidImaging", "LucidRestore", "LucidInterop",
                "LucidDistributed",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: fast),

        // Helpers the test targets share (temporary folders, Python and `lucid` subprocesses).
        .target(name: "LucidTestSupport", path: "Sources/LucidTestSupport"),

        .testTarget(name: "LucidCoreTests", dependencies: ["LucidCore", "LucidTestSupport"], swiftSettings: fast),
        .testTarget(name: "LucidAutogradTests", dependencies: ["LucidAutograd", "LucidTestSupport"],
                    swiftSettings: fast),
        .testTarget(name: "LucidNNTests", dependencies: ["LucidNN", "LucidTestSupport"], swiftSettings: fast),
        .testTarget(name: "LucidOpticsTests", dependencies: ["LucidOptics", "LucidTestSupport"], swiftSettings: fast),
        .testTarget(name: "LucidImagingTests", dependencies: ["LucidImaging", "LucidTestSupport"],
                    swiftSettings: fast),
        .testTarget(name: "LucidRestoreTests", dependencies: ["LucidRestore", "LucidTestSupport"],
                    swiftSettings: fast),
        .testTarget(name: "LucidInteropTests", dependencies: ["LucidInterop", "LucidRestore", "LucidTestSupport"],
                    swiftSettings: fast),
        .testTarget(name: "LucidDistributedTests", dependencies: ["LucidDistributed", "LucidTestSupport"],
                    swiftSettings: fast),
    ],
    swiftLanguageModes: [.v5]
)
