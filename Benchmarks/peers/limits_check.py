"""The `limits` peer: the Python `limits` library's moving-window rate limiter on the same
Redis, one `hit` (check and count) per request, C concurrent asyncio tasks for a fixed time,
spread over 100 keys. Prints one JSON line. Used by Benchmarks/compare.

    python limits_check.py --socket /path/redis.sock --concurrency 64 --seconds 5
"""
import argparse
import asyncio
import json
import time

from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.aio.strategies import MovingWindowRateLimiter


def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, int(round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()

    storage = storage_from_string(f"async+redis+unix://{args.socket}")
    limiter = MovingWindowRateLimiter(storage)
    # High enough that nothing is refused during a run: every check does the full work.
    item = RateLimitItemPerMinute(10_000_000)
    await asyncio.gather(*(limiter.hit(item, "bench", str(i)) for i in range(args.concurrency)))

    deadline = time.perf_counter() + args.seconds
    latencies = []
    refused = 0

    async def worker(number):
        nonlocal refused
        sequence = 0
        while time.perf_counter() < deadline:
            sequence += 1
            start = time.perf_counter()
            allowed = await limiter.hit(item, "bench", str((number * 7919 + sequence) % 100))
            latencies.append(time.perf_counter() - start)
            if not allowed:
                refused += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(args.concurrency)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    print(json.dumps({
        "peer": "limits (moving window), asyncio",
        "concurrency": args.concurrency,
        "decisions": len(latencies),
        "denied": refused,
        "throughput": round(len(latencies) / elapsed),
        "p50_ms": round(percentile(latencies, 50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 99) * 1000, 3),
    }))


asyncio.run(main())
