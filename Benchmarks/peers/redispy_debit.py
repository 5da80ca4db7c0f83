"""The redis-py asyncio peer: C concurrent tasks, each running a check-and-debit Lua script
(idempotency key, balance check, HINCRBY, a ledger entry in a stream) back to back for a
fixed time, on one account. Prints one JSON line: decisions per second and latency
percentiles. Used by Benchmarks/compare.

    python redispy_debit.py --socket /path/redis.sock --concurrency 64 --seconds 5
"""
import argparse
import asyncio
import json
import os
import time

import redis.asyncio as aioredis

# What a hand-rolled credit check does in one atomic step: the same shape as Tollgate's
# debit (idempotent by request id, no overdraft, a ledger entry per change), without limits.
CHECK_AND_DEBIT = """
local done = redis.call('GET', KEYS[3])
if done then return {1, tonumber(done), 1} end
local amount = tonumber(ARGV[1])
local balance = tonumber(redis.call('HGET', KEYS[1], 'balance') or '0')
if balance < amount then return {0, balance, 0} end
balance = redis.call('HINCRBY', KEYS[1], 'balance', -amount)
redis.call('XADD', KEYS[2], '*', 'kind', 'debit', 'amount', -amount, 'balance', balance,
           'request_id', ARGV[2], 'time', ARGV[3])
redis.call('SET', KEYS[3], balance, 'EX', 86400)
return {1, balance, 0}
"""


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

    client = aioredis.Redis(unix_socket_path=args.socket, max_connections=args.concurrency)
    account = "peer:{a:bench}"
    await client.hset(account + ":acct", "balance", 9_000_000_000_000)
    script = client.register_script(CHECK_AND_DEBIT)
    prefix = f"py{os.getpid()}"
    # Warm-up: every connection made, the script loaded.
    await asyncio.gather(*(script(keys=[account + ":acct", account + ":ledger", f"{account}:idem:w{i}"],
                                  args=[1, f"w{i}", 0]) for i in range(args.concurrency)))

    deadline = time.perf_counter() + args.seconds
    latencies = []
    denied = 0

    async def worker(number):
        nonlocal denied
        sequence = 0
        while time.perf_counter() < deadline:
            sequence += 1
            request = f"{prefix}-{number}-{sequence}"
            start = time.perf_counter()
            result = await script(keys=[account + ":acct", account + ":ledger", f"{account}:idem:{request}"],
                                  args=[1, request, int(time.time() * 1000)])
            latencies.append(time.perf_counter() - start)
            if result[0] != 1:
                denied += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(args.concurrency)))
    elapsed = time.perf_counter() - start
    await client.aclose()
    latencies.sort()
    print(json.dumps({
        "peer": "redis-py asyncio, check-and-debit Lua",
        "concurrency": args.concurrency,
        "decisions": len(latencies),
        "denied": denied,
        "throughput": round(len(latencies) / elapsed),
        "p50_ms": round(percentile(latencies, 50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 99) * 1000, 3),
    }))


asyncio.run(main())
