"""Micro-benchmark of SQLiteStore alone: sustained write throughput and paced write latency.

    .venv/bin/python bench/store_raw.py [--writers 50] [--seconds 5] [--rate 20]

Throughput: `--writers` tasks each update their own key as fast as acknowledgements
come back. Latency: one write every 1/`--rate` seconds, timed from call to
acknowledgement. A watcher follows every write in both phases, as the API server's
watch cache would.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from minik.store import SQLiteStore

PAYLOAD = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"image": "x" * 800}]}}


async def follow(store: SQLiteStore) -> None:
    async for _ in store.watch("/registry/", await store.current_revision()):
        pass


async def throughput(store: SQLiteStore, writers: int, seconds: float) -> float:
    deadline = time.perf_counter() + seconds
    counts = [0] * writers

    async def write(worker: int) -> None:
        record = await store.create(f"/registry/bench/ns/w{worker}", PAYLOAD)
        while time.perf_counter() < deadline:
            record = await store.update(record.key, PAYLOAD, expected_revision=record.revision)
            counts[worker] += 1

    started = time.perf_counter()
    await asyncio.gather(*(write(w) for w in range(writers)))
    return sum(counts) / (time.perf_counter() - started)


async def latency(store: SQLiteStore, rate: float, seconds: float) -> list[float]:
    record = await store.create("/registry/bench/ns/paced", PAYLOAD)
    samples: list[float] = []
    next_at = time.perf_counter()
    for _ in range(int(rate * seconds)):
        next_at += 1 / rate
        begun = time.perf_counter()
        record = await store.update(record.key, PAYLOAD, expected_revision=record.revision)
        samples.append(time.perf_counter() - begun)
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        store = await SQLiteStore.open(Path(directory) / "bench.db")
        watcher = asyncio.create_task(follow(store))
        rate = await throughput(store, args.writers, args.seconds)
        print(f"{args.writers} concurrent writers: {rate:.0f} writes/s")
        samples = sorted(await latency(store, args.rate, args.seconds * 2))
        p50 = statistics.median(samples) * 1000
        p99 = samples[int(len(samples) * 0.99) - 1] * 1000
        print(
            f"{args.rate:g} writes/s for {args.seconds * 2:g}s: p50 {p50:.2f} ms,"
            f" p99 {p99:.2f} ms, max {samples[-1] * 1000:.2f} ms"
        )
        watcher.cancel()
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
