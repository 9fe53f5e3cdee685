"""Benchmark: API write latency and throughput, start-up time and idle memory.

Starts a real minik API server alone (`minik up -d` with the agent, the
scheduler and the controllers switched off) in a temporary home and measures
mutating calls over HTTPS: a fixed 20 writes/s (latency) and full speed with
concurrent clients (throughput). The baseline, measured in the same run, is
a raw SQLite insert+commit loop with the same settings (WAL, synchronous=FULL)
on the same disk. Also prints `minik up -d` to ready and the server's idle
RSS. Goals: p99 <= 25 ms at 20 writes/s, >= 500 writes/s sustained,
up <= 1.5 s, idle RSS <= 80 MB.

    .venv/bin/python bench/api.py [--seconds 10] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

MINIK = str(Path(sys.executable).with_name("minik"))
FIXED_RATE = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def raw_sqlite(path: Path, seconds: float) -> tuple[float, list[float]]:
    """Insert+commit loop with the store's durability settings: (writes/s, latencies)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE kv (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, value TEXT)")
    value = json.dumps({"metadata": {"name": "x"}, "data": {"k": "v" * 64}})
    latencies: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        started = time.perf_counter()
        db.execute("BEGIN")
        db.execute("INSERT INTO kv (name, value) VALUES (?, ?)", (f"k{len(latencies)}", value))
        db.execute("COMMIT")
        latencies.append(time.perf_counter() - started)
    db.close()
    return len(latencies) / seconds, latencies


class Api:
    def __init__(self, home: Path, port: int) -> None:
        self.base = f"https://127.0.0.1:{port}"
        self.token = (home / "token").read_text().strip()
        self.ssl = ssl.create_default_context(cafile=str(home / "ca.crt"))

    def session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self.token}"},
            connector=aiohttp.TCPConnector(ssl=self.ssl, limit=0),
        )

    async def write(self, session: aiohttp.ClientSession, name: str, n: int) -> float:
        started = time.perf_counter()
        url = f"{self.base}/api/v1/namespaces/default/configmaps"
        body = {"metadata": {"name": name}, "data": {"n": str(n), "k": "v" * 64}}
        async with session.post(url, json=body) as response:
            await response.read()
            if response.status != 201:
                raise RuntimeError(f"create {name}: HTTP {response.status}")
        return time.perf_counter() - started


async def fixed_rate(api: Api, seconds: float, prefix: str = "fixed") -> list[float]:
    async with api.session() as session:
        start = time.perf_counter()
        tasks = []
        for i in range(int(seconds * FIXED_RATE)):
            delay = start + i / FIXED_RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(api.write(session, f"{prefix}-{i}", i)))
        return list(await asyncio.gather(*tasks))


async def full_speed(api: Api, seconds: float, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    end = time.perf_counter() + seconds

    async def worker(w: int, session: aiohttp.ClientSession) -> None:
        n = 0
        while time.perf_counter() < end:
            latencies.append(await api.write(session, f"fast-{w}-{n}", n))
            n += 1

    async with api.session() as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(w, session) for w in range(concurrency)))
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def minik(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MINIK, "--home", str(home), *args], capture_output=True, text=True,
                          check=True)


SERVER_ALONE = ("agent,scheduler,replicaset,replicationcontroller,deployment,garbagecollector,"
                "namespace,eventttl,serviceaccount")


def start(home: Path, port: int) -> float:
    """`minik up -d` of the API server alone: no agent, scheduler or controllers."""
    started = time.perf_counter()
    minik(home, "up", "-d", "--name", f"bench-{port}", "--port", str(port),
          "--disable-controllers", SERVER_ALONE)
    return time.perf_counter() - started


def row(name: str, value: str, baseline: str = "", ratio: str = "", goal: str = "") -> str:
    return f"{name:<34} {value:>12} {baseline:>12} {ratio:>8}   {goal}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="minik-bench-") as tmp:
        home, port = Path(tmp) / "home", free_port()
        startups = [start(home, port)]
        for _ in range(2):
            minik(home, "down")
            startups.append(start(home, port))
        pid = int((home / "server.pid").read_text())
        time.sleep(2)
        idle_rss = rss_mb(pid)
        api = Api(home, port)
        try:
            fixed = asyncio.run(fixed_rate(api, args.seconds))
            rate, fast = asyncio.run(full_speed(api, args.seconds, args.concurrency))
            loaded_rss = rss_mb(pid)
        finally:
            minik(home, "down", "--purge")
        raw_rate, raw = raw_sqlite(Path(tmp) / "raw.db", min(args.seconds, 5.0))

    ms = 1000.0
    print(f"minik API benchmark ({args.seconds:.0f} s per phase, "
          f"{args.concurrency} concurrent clients at full speed, {os.cpu_count()} cores)")
    print(row("measure", "minik", "raw sqlite", "ratio", "goal"))
    print(row("p50 write @20/s (ms)", f"{percentile(fixed, 50) * ms:.2f}",
              f"{percentile(raw, 50) * ms:.2f}",
              f"{percentile(fixed, 50) / percentile(raw, 50):.1f}x"))
    print(row("p99 write @20/s (ms)", f"{percentile(fixed, 99) * ms:.2f}",
              f"{percentile(raw, 99) * ms:.2f}",
              f"{percentile(fixed, 99) / percentile(raw, 99):.1f}x", "<= 25 ms"))
    print(row("writes/s full speed", f"{rate:.0f}", f"{raw_rate:.0f}",
              f"{rate / raw_rate:.2f}x", ">= 500/s"))
    print(row("p50 write full speed (ms)", f"{percentile(fast, 50) * ms:.2f}"))
    print(row("p99 write full speed (ms)", f"{percentile(fast, 99) * ms:.2f}"))
    print(row("minik up -d to ready (s)", f"{statistics.median(startups):.2f}", "", "",
              "<= 1.5 s (median of 3)"))
    print(row("idle server RSS (MB)", f"{idle_rss:.1f}", "", "", "<= 80 MB"))
    print(row("server RSS after load (MB)", f"{loaded_rss:.1f}"))


if __name__ == "__main__":
    main()
