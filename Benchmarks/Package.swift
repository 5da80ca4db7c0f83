// swift-tools-version: 6.1
import PackageDescription

// Tollgate's benchmarks: their own package, so the root package never depends on
// ordo-one/benchmark (formerly package-benchmark). Run them with `swift package benchmark`
// in this folder; compare the engine with redis-benchmark running the same Lua with
// `./compare-debit`.
let package = Package(
    name: "TollgateBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Named, so the targets below find it whatever the clone's folder is called.
        .package(name: "tollgate", path: ".."),
        .package(
            url: "https://github.com/ordo-one/benchmark",
            from: "1.38.1",
            traits: ["MallocInterposer"]
        ),
    ],
    targets: [
        // The debit workload shared by the benchmark suite and `DebitLoad`.
        .target(
            name: "DebitWorkload",
            dependencies: [
                .product(name: "TollgateCore", package: "tollgate"),
                .product(name: "TollgateRedis", package: "tollgate"),
            ]
        ),
        // In-process debit throughput for a fixed time, printed as JSON (used by compare-debit).
        .executableTarget(
            name: "DebitLoad",
            dependencies: ["DebitWorkload"]
        ),
        // Debits over many accounts on one Redis or a Redis Cluster, then a check of the books
        // (used by `cluster-demo`: throughput on 1 vs 3 primaries, reshard and failover under load).
        .executableTarget(
            name: "ClusterLoad",
            dependencies: [
                .product(name: "TollgateCore", package: "tollgate"),
                .product(name: "TollgateRedis", package: "tollgate"),
            ]
        ),
        // `swift package benchmark`: debits at 1, 16 and 64 concurrent callers.
        .executableTarget(
            name: "EngineBenchmarks",
            dependencies: [
                "DebitWorkload",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "TollgateTestSupport", package: "tollgate"),
            ],
            path: "Benchmarks/EngineBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
        // `swift package benchmark --target CoreBenchmarks`: money, prices, usage, RESP; no Redis.
        .executableTarget(
            name: "CoreBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "TollgateCore", package: "tollgate"),
                .product(name: "TollgateRedis", package: "tollgate"),
            ],
            path: "Benchmarks/CoreBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
        // `swift package benchmark --target LuaBenchmarks`: each Lua entry point through the
        // engine, and Redis round trips, one caller and pipelined.
        .executableTarget(
            name: "LuaBenchmarks",
            dependencies: [
                "DebitWorkload",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "TollgateTestSupport", package: "tollgate"),
            ],
            path: "Benchmarks/LuaBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
