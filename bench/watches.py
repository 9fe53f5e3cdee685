"""Benchmark: what idle watches cost the API server.

Starts a real minik API server alone (as `bench/api.py` does), creates 10
pods, then opens N idle watches of them (default 1,000) from a few separate
processes - HTTP/1.1 keep-alive connections over TLS with the token, one
connection per watch, each from the list's resourceVersion with bookmarks, as
informers hold them. Measures the server's RSS and the latency of a list of
the 10 pods without the watches (the baseline, measured in the same run) and
while they are open, the time one write takes to reach every watcher, and the
RSS once the watches have closed - twice, so a leak shows as growth between
rounds. Before the baseline, one watch per process is opened, fed one event
and closed, so that the baseline includes what any first watch loads once
(the resource's watch cache, the code of the watch path) and the rounds
measure what the watches themselves cost. Every RSS is read SETTLE seconds
after the change, once the server has had time to hand freed heap memory
back. Goals: 1,000 idle watches add <= 50 MB; a list answers in <= 50 ms at
p99 while they are open; RSS after they close is within 10% of the baseline.

    .venv/bin/python bench/watches.py [--watches 1000] [--processes 4] [--lists 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import Api, free_port, minik, percentile, rss_mb, start

PODS = 10
NAMESPACE = "default"
SETTLE = 12.0
"""Seconds to wait before reading RSS: longer than the server's heap-trim interval (10 s)."""


def pod(name: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"containers": [
        {"name": "c", "image": "minik/busybox:1.35", "command": ["sleep", "3600"]}]}}


async def create_pods(api: Api, names: list[str]) -> str:
    """Create pods; return the collection's resourceVersion afterwards."""
    url = f"{api.base}/api/v1/namespaces/{NAMESPACE}/pods"
    async with api.session() as session:
        for name in names:
            async with session.post(url, json=pod(name)) as response:
                if response.status != 201:
                    raise RuntimeError(f"create pod {name}: HTTP {response.status}")
        async with session.get(url) as response:
            return (await response.json())["metadata"]["resourceVersion"]


async def list_latencies(api: Api, count: int) -> list[float]:
    url = f"{api.base}/api/v1/namespaces/{NAMESPACE}/pods"
    latencies: list[float] = []
    async with api.session() as session:
        for _ in range(count):
            started = time.perf_counter()
            async with session.get(url) as response:
                body = await response.read()
                if response.status != 200 or len(json.loads(body)["items"]) < PODS:
                    raise RuntimeError(f"list pods: HTTP {response.status}")
            latencies.append(time.perf_counter() - started)
    return latencies


async def open_watches(home: Path, port: int, count: int, rv: str, fanout: str) -> None:
    """The watcher process: `count` watches, each on its own connection.

    Prints `open` once every watch has its response headers, and `seen T` (the
    monotonic clock, which is system-wide) when every watch has seen the pod
    named `fanout`; ends when stdin closes.
    """
    api = Api(home, port)
    url = f"{api.base}/api/v1/namespaces/{NAMESPACE}/pods"
    params = {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true",
              "timeoutSeconds": "3600"}
    opened, seen = asyncio.Event(), asyncio.Event()
    counts = {"open": 0, "seen": 0}

    async def one(session: aiohttp.ClientSession) -> None:
        async with session.get(url, params=params, timeout=aiohttp.ClientTimeout()) as r:
            if r.status != 200:
                raise RuntimeError(f"watch: HTTP {r.status}: {await r.text()}")
            counts["open"] += 1
            if counts["open"] == count:
                opened.set()
            async for line in r.content:
                event = json.loads(line)
                if event["object"]["metadata"].get("name") == fanout:
                    counts["seen"] += 1
                    if counts["seen"] == count:
                        seen.set()

    async with api.session() as session:
        tasks = [asyncio.create_task(one(session)) for _ in range(count)]
        await asyncio.wait([asyncio.ensure_future(opened.wait()), *tasks],
                           return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done() and task.exception():
                raise task.exception()  # type: ignore[misc]
        print("open", flush=True)
        await seen.wait()
        print(f"seen {time.monotonic()}", flush=True)
        await asyncio.to_thread(sys.stdin.read)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Watchers:
    """The watcher processes of one round."""

    def __init__(self, home: Path, port: int, watches: int, processes: int, rv: str,
                 fanout: str) -> None:
        share = [watches // processes + (i < watches % processes) for i in range(processes)]
        self.procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--watcher", str(n), "--home", str(home),
                 "--port", str(port), "--rv", rv, "--fanout", fanout],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for n in share if n
        ]

    def expect(self, word: str) -> list[str]:
        lines = []
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if not line.startswith(word):
                raise RuntimeError(f"watcher process {proc.pid} said {line!r}, not {word!r}")
            lines.append(line)
        return lines

    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(BrokenPipeError):
                assert proc.stdin is not None
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def open_watch_count(api: Api) -> float:
    async with api.session() as session, session.get(f"{api.base}/metrics") as response:
        text = await response.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("minik_apiserver_open_watches{"))


async def until_closed(api: Api, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while await open_watch_count(api) > 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the server still counts open watches")
        await asyncio.sleep(0.2)


def one_round(api: Api, home: Path, port: int, pid: int, args: argparse.Namespace,
              round_no: int) -> dict[str, float | list[float]]:
    fanout = f"fanout-{round_no}"
    rv = asyncio.run(create_pods(api, []))
    watchers = Watchers(home, port, args.watches, args.processes, rv, fanout)
    try:
        opened_in = time.perf_counter()
        watchers.expect("open")
        opened_in = time.perf_counter() - opened_in
        time.sleep(SETTLE)
        with_rss = rss_mb(pid)
        lists = asyncio.run(list_latencies(api, args.lists))
        written = time.monotonic()
        asyncio.run(create_pods(api, [fanout]))
        fanout_s = max(float(line.split()[1]) for line in watchers.expect("seen")) - written
    finally:
        watchers.close()
    asyncio.run(until_closed(api))
    time.sleep(SETTLE)
    return {"open_s": opened_in, "rss": with_rss, "lists": lists, "fanout_s": fanout_s,
            "after": rss_mb(pid)}


def row(name: str, base: str = "", value: str = "", ratio: str = "", goal: str = "") -> str:
    return f"{name:<40} {base:>10} {value:>12} {ratio:>8}   {goal}"


def report(args: argparse.Namespace, base_rss: float, base_lists: list[float],
           rounds: list[dict]) -> None:
    ms = 1000.0
    n = args.watches
    first = rounds[0]
    print(f"minik idle-watch benchmark ({n} watches from {args.processes} processes, "
          f"TLS keep-alive; {args.lists} lists of {PODS} pods; {os.cpu_count()} cores)")
    print(row("measure", "no watches", f"{n} watches", "ratio", "goal"))
    print(row("server RSS (MB)", f"{base_rss:.1f}", f"{first['rss']:.1f}",
              f"{first['rss'] / base_rss:.2f}x"))
    print(row("RSS added by the watches (MB)", "", f"{first['rss'] - base_rss:.1f}", "",
              "<= 50 MB"))
    print(row("RSS per watch (KB)", "", f"{(first['rss'] - base_rss) * 1024 / n:.0f}"))
    for p in (50, 99):
        b, w = percentile(base_lists, p), percentile(first["lists"], p)
        print(row(f"list of {PODS} pods p{p} (ms)", f"{b * ms:.2f}", f"{w * ms:.2f}",
                  f"{w / b:.1f}x", "<= 50 ms" if p == 99 else ""))
    print(row(f"open {n} watches (s)", "", f"{first['open_s']:.2f}"))
    print(row("one write reaches every watcher (ms)", "", f"{first['fanout_s'] * ms:.0f}"))
    for i, r in enumerate(rounds, 1):
        print(row(f"RSS after round {i} closed (MB)", f"{base_rss:.1f}", f"{r['after']:.1f}",
                  f"{r['after'] / base_rss:.2f}x", "<= 1.10x"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--watches", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--lists", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--watcher", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rv", help=argparse.SUPPRESS)
    parser.add_argument("--fanout", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.watcher is not None:
        asyncio.run(open_watches(Path(args.home), args.port, args.watcher, args.rv, args.fanout))
        return
    with tempfile.TemporaryDirectory(prefix="minik-bench-") as tmp:
        home, port = Path(tmp) / "home", free_port()
        start(home, port)
        pid = int((home / "server.pid").read_text())
        api = Api(home, port)
        try:
            asyncio.run(create_pods(api, [f"p{i}" for i in range(PODS)]))
            asyncio.run(list_latencies(api, 50))
            warm = argparse.Namespace(**{**vars(args), "watches": args.processes})
            one_round(api, home, port, pid, warm, -1)
            time.sleep(SETTLE)
            base_rss = rss_mb(pid)
            base_lists = asyncio.run(list_latencies(api, args.lists))
            rounds = [one_round(api, home, port, pid, args, i) for i in range(args.rounds)]
        finally:
            minik(home, "down", "--purge")
    report(args, base_rss, base_lists, rounds)


if __name__ == "__main__":
    main()
