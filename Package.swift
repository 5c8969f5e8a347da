// swift-tools-version:6.2
// The house, one direction of dependency:
//   NicrouteCore (pure: model, planner, the daemon's state machine)  <-  Netlink (codec + socket)
//     <-  NicrouteDaemon (wiring: one sd-event loop drives the machine)  ->  CSystemd
//   NicrouteCommands: the two tools' command lines (swift-argument-parser) over the libraries;
//   nicrouted, nicroutectl: one tool each (development, tests, docs); nicroute-multicall: both in
//   one binary, by the name it is run under (the release build and the packages).
// nicrouted is single-threaded: one sd-event loop owns every descriptor (rtnetlink events,
// nftables changes, the control socket and its clients), the signals, the watchdog and the one
// timer; no Swift concurrency on the daemon's path.
import PackageDescription

let package = Package(
    name: "nicroute",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "nicrouted", targets: ["nicrouted"]),
        .executable(name: "nicroutectl", targets: ["nicroutectl"]),
        .executable(name: "nicroute-multicall", targets: ["nicroute-multicall"]),
        .executable(name: "nicroute-fuzz", targets: ["NetlinkFuzz"]),
        .library(name: "NicrouteCore", targets: ["NicrouteCore"]),
        .library(name: "Netlink", targets: ["Netlink"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
    ],
    targets: [
        // Pure model, configuration, planner and the daemon's decisions (DaemonMachine): values in,
        // values out. No Glibc, no clock, no I/O.
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

        // An in-memory rtnetlink peer behind Netlink's transport seams (requests, notifications),
        // for tests (like nltest).
        .target(name: "NetlinkTesting", dependencies: ["Netlink", "NicrouteCore", "CNetlink"]),

        // libsystemd (sd_notify, sd_journal_sendv, sd-event) through pkg-config.
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),

        // libnftables through dlopen (no link-time dependency: see its header).
        .target(name: "CNftables", linkerSettings: [.linkedLibrary("dl")]),
        // Linux calls that need _GNU_SOURCE (accept4, pipe2, SO_PEERCRED, mallopt).
        .target(name: "CPosix"),

        // The daemon's wiring: the event loop, kernel picture, reconciler, gateway sources, state directory.
        .target(
            name: "NicrouteDaemon",
            dependencies: [
                "NicrouteCore", "Netlink", "CNetlink", "CSystemd", "CPosix", "CNftables",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // The command lines of nicrouted and nicroutectl; the executables below only call in.
        .target(
            name: "NicrouteCommands",
            dependencies: [
                "NicrouteDaemon", "NicrouteCore", "Netlink",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "nicrouted", dependencies: ["NicrouteCommands"]),
        .executableTarget(name: "nicroutectl", dependencies: ["NicrouteCommands"]),
        // Both tools in one binary, chosen by basename(argv[0]): what the packages install, once
        // (the Swift runtime and Foundation, linked in statically, are most of its bytes).
        .executableTarget(name: "nicroute-multicall", dependencies: ["NicrouteCommands"]),

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
