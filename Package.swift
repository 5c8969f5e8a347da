// swift-tools-version:6.2
// The house, one direction of dependency:
//   NicrouteCore (pure)  <-  Netlink (codec + socket)  <-  NicrouteDaemon (wiring)  ->  CSystemd
//   nicrouted, nicroutectl: thin executables over the libraries.
import PackageDescription

let package = Package(
    name: "nicroute",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "nicrouted", targets: ["nicrouted"]),
        .executable(name: "nicroutectl", targets: ["nicroutectl"]),
        .executable(name: "nicroute-fuzz", targets: ["NetlinkFuzz"]),
        .library(name: "NicrouteCore", targets: ["NicrouteCore"]),
        .library(name: "Netlink", targets: ["Netlink"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // Pure model, configuration and planner: values in, values out. No Glibc, no clock, no I/O.
        .target(name: "NicrouteCore"),

        // Kernel constants and structs from <linux/rtnetlink.h> and friends.
        .target(name: "CNetlink"),
        // rtnetlink codec (one attribute writer, one reader) and the socket transport.
        .target(
            name: "Netlink",
            dependencies: [
                "NicrouteCore", "CNetlink", "CPosix",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),

        // An in-memory rtnetlink peer behind Netlink's transport seam, for tests (like nltest).
        .target(name: "NetlinkTesting", dependencies: ["Netlink", "NicrouteCore", "CNetlink"]),

        // libsystemd (sd_notify, sd_journal_sendv) through pkg-config.
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),

        // libnftables through dlopen (no link-time dependency: see its header).
        .target(name: "CNftables", linkerSettings: [.linkedLibrary("dl")]),
        // Linux calls that need _GNU_SOURCE (accept4, pipe2, SO_PEERCRED, pthread_setname_np).
        .target(name: "CPosix"),
        // Swift concurrency's global executor without libdispatch's 1 s timer (nicrouted installs it).
        .target(name: "CGlobalExecutor"),

        // The daemon's wiring: kernel picture, reconcile loop, gateway sources, state directory.
        .target(
            name: "NicrouteDaemon",
            dependencies: [
                "NicrouteCore", "Netlink", "CNetlink", "CSystemd", "CPosix", "CGlobalExecutor", "CNftables",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .executableTarget(
            name: "nicrouted",
            dependencies: [
                "NicrouteDaemon", "CGlobalExecutor",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "nicroutectl",
            dependencies: [
                "NicrouteDaemon",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // libFuzzer entry point (LLVMFuzzerRunDriver, weak so that a normal build links too).
        .target(name: "CFuzzer"),
        .executableTarget(name: "NetlinkFuzz", dependencies: ["Netlink", "NicrouteCore", "CFuzzer"]),

        .testTarget(name: "NicrouteCoreTests", dependencies: ["NicrouteCore"]),
        .testTarget(name: "NetlinkTests", dependencies: ["Netlink", "NetlinkTesting", "NicrouteCore", "CNetlink"]),
        .testTarget(
            name: "NicrouteDaemonTests",
            dependencies: ["NicrouteDaemon", "NicrouteCore", "Netlink", "NetlinkTesting", "CSystemd"]),
    ]
)
