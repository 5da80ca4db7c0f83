// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "tollgate",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tollgate", targets: ["tollgate"]),
        .library(name: "TollgateRedis", targets: ["TollgateRedis"]),
        .library(name: "TollgateCore", targets: ["TollgateCore"]),
        .library(name: "TollgateTestSupport", targets: ["TollgateTestSupport"]),
        .library(name: "TollgateLoadTest", targets: ["TollgateLoadTest"]),
        .library(name: "TollgatePayments", targets: ["TollgatePayments"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // hiredis from the system (Debian: libhiredis-dev).
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        // A Redis client on hiredis for Swift concurrency.
        .target(
            name: "TollgateRedis",
            dependencies: ["CHiredis"]
        ),
        // Turns lua/*.lua into one Redis Functions library embedded in TollgateCore.
        .executableTarget(name: "LuaEmbedder"),
        .plugin(
            name: "EmbedLua",
            capability: .buildTool(),
            dependencies: ["LuaEmbedder"]
        ),
        // Money, accounts, holds, the ledger: the Engine API.
        .target(
            name: "TollgateCore",
            dependencies: [
                "TollgateRedis",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            plugins: ["EmbedLua"]
        ),
        // Payment providers (MoonPay, AlchemyPay): checkout URLs, webhook verification, token
        // rates and deposit addresses. Pure Swift: no Redis, no HTTP.
        .target(
            name: "TollgatePayments",
            dependencies: [
                "TollgateCore",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The HTTP service: gateway and admin JSON API, nginx/Envoy check, auth, metrics,
        // the embedded redis-server, the OpenAI-compatible metering proxy (its upstream calls
        // through AsyncHTTPClient).
        .target(
            name: "TollgateServer",
            dependencies: [
                "TollgateCore",
                "TollgatePayments",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            resources: [.copy("Resources/openapi.json"), .copy("Resources/dashboard")]
        ),
        // `tollgate loadtest`: workloads, the HTTP and in-process drivers, the open/closed loop
        // scheduler, the latency recorder, the books check and the report.
        .target(
            name: "TollgateLoadTest",
            dependencies: [
                "TollgateCore",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The command-line tool.
        .executableTarget(
            name: "tollgate",
            dependencies: [
                "TollgateCore",
                "TollgateServer",
                "TollgateLoadTest",
                "TollgatePayments",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Helpers shared by every test target (and the benchmarks): real redis-server processes.
        .target(
            name: "TollgateTestSupport",
            dependencies: ["TollgateRedis"]
        ),
        .testTarget(
            name: "TollgateRedisTests",
            dependencies: ["TollgateRedis", "TollgateTestSupport"]
        ),
        .testTarget(
            name: "TollgateCoreTests",
            dependencies: ["TollgateCore", "TollgateTestSupport"]
        ),
        .testTarget(
            name: "TollgateServerTests",
            dependencies: [
                "TollgateCore", "TollgatePayments", "TollgateRedis", "TollgateServer", "TollgateTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
            ]
        ),
        .testTarget(
            name: "TollgatePaymentsTests",
            dependencies: ["TollgatePayments", "TollgateCore", "TollgateTestSupport"]
        ),
        .testTarget(
            name: "TollgateLoadTestTests",
            dependencies: ["TollgateLoadTest", "TollgateCore", "TollgateTestSupport"]
        ),
        .testTarget(
            name: "TollgateCLITests",
            dependencies: ["TollgateCore", "TollgateTestSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
