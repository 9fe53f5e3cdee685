"""Benchmark: pod start-up latency through minik vs raw `docker run`.

For N = 1, 20 and 50 pods (busybox `sleep`), measures the time from the
create request to the pod being Running as seen by a watch, and compares it
with the floor measured in the same run: the same pause + app containers
started straight through the Docker API with the same concurrency (the app
container sharing the pause container's network namespace). Also reports
the agent's RSS growth per pod. Goals: p50 <= 1.2x raw, p99 <= 1.5x raw,
RSS growth <= 1 MB per pod.

    .venv/bin/python bench/pod_startup.py [--sizes 1,20,50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.docker_runtime import DockerRuntime
from agent.runtime import ContainerSpec

MINIK = str(Path(sys.executable).with_name("minik"))
BUSYBOX = "minik/busybox:1.35"
PAUSE = "minik/pause:1.0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def raw_floor(n: int, label: str) -> list[float]:
    """pause + app container per 'pod', all at once, straight through the Docker API."""
    runtime = DockerRuntime()
    network = f"bench-{label}"
    await runtime.ensure_network(network, subnet="10.253.0.0/16", gateway=None,
                                 labels={"minik.dev/instance": label})

    async def one(i: int) -> float:
        started = time.perf_counter()
        labels = {"minik.dev/instance": label}
        pause = await runtime.create(ContainerSpec(name=f"{label}-p{i}", image=PAUSE,
                                                   labels=labels, network_mode=network,
                                                   ipc_mode="shareable"))
        await runtime.start(pause)
        app = await runtime.create(ContainerSpec(
            name=f"{label}-a{i}", image=BUSYBOX, labels=labels, command=["sleep", "3600"],
            args=[], network_mode=f"container:{pause}", ipc_mode=f"container:{pause}"))
        await runtime.start(app)
        return time.perf_counter() - started

    try:
        return list(await asyncio.gather(*(one(i) for i in range(n))))
    finally:
        infos = await runtime.list({"minik.dev/instance": label})
        for info in sorted(infos, key=lambda i: "-p" in i.name):
            await runtime.remove(info.id, force=True)
        await runtime.remove_network(network)
        await runtime.close()


class Api:
    def __init__(self, home: Path, port: int) -> None:
        self.base = f"https://127.0.0.1:{port}"
        token = (home / "token").read_text().strip()
        self.session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {token}"},
            connector=aiohttp.TCPConnector(
                ssl=ssl.create_default_context(cafile=str(home / "ca.crt")), limit=0))

    async def close(self) -> None:
        await self.session.close()


async def minik_pods(api: Api, n: int, namespace: str) -> list[float]:
    pods = f"{api.base}/api/v1/namespaces/{namespace}/pods"
    async with api.session.post(f"{api.base}/api/v1/namespaces",
                                json={"metadata": {"name": namespace}}) as r:
        assert r.status == 201, await r.text()
    async with api.session.get(pods) as r:
        rv = (await r.json())["metadata"]["resourceVersion"]
    created: dict[str, float] = {}
    running: dict[str, float] = {}

    async def watch() -> None:
        params = {"watch": "true", "resourceVersion": rv}
        async with api.session.get(pods, params=params, timeout=None) as r:
            async for line in r.content:
                event = json.loads(line)
                obj = event["object"]
                name = obj["metadata"]["name"]
                if obj.get("status", {}).get("phase") == "Running" and name not in running:
                    running[name] = time.perf_counter()
                    if len(running) == n:
                        return

    async def create(i: int) -> None:
        body = {"metadata": {"name": f"p{i}"}, "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"]}]}}
        created[f"p{i}"] = time.perf_counter()
        async with api.session.post(pods, json=body) as r:
            assert r.status == 201, await r.text()

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.2)
    await asyncio.gather(*(create(i) for i in range(n)))
    await asyncio.wait_for(watcher, timeout=300)
    return [running[name] - created[name] for name in created]


def minik(home: Path, *args: str) -> None:
    subprocess.run([MINIK, "--home", str(home), *args], check=True, capture_output=True)


async def run(sizes: list[int]) -> None:
    rows = []
    with tempfile.TemporaryDirectory(prefix="minik-bench-") as tmp:
        home, port = Path(tmp) / "home", free_port()
        name = f"bench-{uuid.uuid4().hex[:6]}"
        minik(home, "up", "-d", "--name", name, "--port", str(port))
        pid = int((home / "server.pid").read_text())
        api = Api(home, port)
        try:
            await asyncio.sleep(2)
            rss_before = rss_mb(pid)
            total = 0
            for n in sizes:
                raw = await raw_floor(n, f"{name}-raw{n}")
                ours = await minik_pods(api, n, f"bench-{n}")
                total += n
                rows.append((n, pct(raw, 50), pct(raw, 99), pct(ours, 50), pct(ours, 99)))
            rss_growth = (rss_mb(pid) - rss_before) / total
        finally:
            await api.close()
            minik(home, "down", "--purge")
    print("pod start-up: create -> Running (watch) vs raw docker pause+app, same concurrency")
    print(f"{'pods':>5} {'raw p50':>9} {'raw p99':>9} {'minik p50':>10} {'minik p99':>10} "
          f"{'p50 ratio':>10} {'p99 ratio':>10}   goal p50<=1.2x p99<=1.5x")
    for n, r50, r99, m50, m99 in rows:
        print(f"{n:>5} {r50:>8.2f}s {r99:>8.2f}s {m50:>9.2f}s {m99:>9.2f}s "
              f"{m50 / r50:>9.2f}x {m99 / r99:>9.2f}x")
    print(f"server+agent RSS growth per pod: {rss_growth:.2f} MB (goal <= 1 MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,20,50")
    args = parser.parse_args()
    asyncio.run(run([int(s) for s in args.sizes.split(",")]))


if __name__ == "__main__":
    main()
