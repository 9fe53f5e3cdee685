"""Benchmark: pod start-up latency through minik vs raw Docker, with a trace of one pod's path.

The pod spec is fixed (`POD_SPEC`: one busybox `sleep`, grace period 0).
Two measurements, each against a floor measured in the same run,
interleaved (floor, minik, floor, minik, ...) so that the machine's drift
hits both:

- N=1, `--samples` times (default 10): create one pod and time create ->
  Running as a watch sees it; the floor is the same pause + app containers
  started straight through the Docker API (the app container joined to the
  pause container's network and IPC namespaces), through the same
  `DockerRuntime` and its thread pools. The medians are compared.
- N=20, `--runs` times (default 3): N pods at once, p50 and p99 of each
  run; the ratio is the median of the runs' p50 ratios, with their spread.

Every pod is traced, and the tables print the medians of each stage for
the floor and for minik: the create's answer and the watch's view of the
pod (scheduled, Running) on the bench's clock; the agent's own marks from
the server's log (`agent.trace`, on with `MINIK_DEBUG=agent.trace`:
informer saw the pod, sync began, each container asked for, each start
returned, status written); and Docker's own create/start events of the
pod's two containers (`timeNano`, on the same clock). A 20-pod warm-up
each way opens the connections and fills the agent's image cache; the
bench keeps its connections, as a client would. Also reported: the
server's CPU and RSS growth per pod. Goals: <= 1.1x the floor at N=1
(median of 10) and at N=20 (median of 3 runs), RSS growth <= 1 MB/pod.

Where minik's own time went (issue 8, item 25), read off these traces on
a 2-core machine shared with other work (load 4-17):

- At N=20, thread pools. The agent's engine calls shared the process's
  default executor (6 threads). Sandbox starts take seconds there (the
  engine serialises network setup), so creates queued ~2 s behind the
  first pods' starts; the agent's stats collection (1 s per call, four at
  a time) held four of the six threads on a node with a hundred
  containers; and the container list every sync waits for inspected
  containers being started, whose lock the engine holds for the whole
  start, so single lists took up to 1.9 s. Pause start returned -> app
  asked for took 0.6-2.0 s, app started -> status write 0.08-0.6 s. Now
  the Docker runtime (`agent.docker_client`) has pools of its own, starts and stats apart, and
  lists never inspect a container being started: 3-50 ms and 4-12 ms.
- The scheduler bound one pod after another (a store write each): the
  median pod was bound 110-190 ms after its create, now 70-120 ms; it
  binds in tasks after deciding in memory (`minik.scheduler`). The agent
  sees the pods no sooner on this machine, though: see below.
- At N=1, three lists of every instance container on the pod's path
  (before the sandbox, after it, after the app; 5-30 ms each). A pod's
  first sync now plans on the last list and, after starting containers,
  inspects only what it made (`agent.runtime_state`).

What remains minik's own: ~10 ms before the engine's first create at N=1
(API create with its fsync, scheduling, the watch to the agent) and
~10 ms after the app starts (inspect, status write, watch); at N=20 the
median pod's informer event reaches the agent 135-225 ms after its create
(60-100 ms after an outside watch saw it bound), because the server's one
event loop handles the burst's requests, events and watch traffic first
(~35 ms CPU per pod, about half of it the API's request handling), and
that CPU is taken from the engine too.

    .venv/bin/python bench/pod_startup.py [--samples 10] [--size 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.docker_runtime import DockerRuntime
from agent.labels import INSTANCE, KIND, KIND_CONTAINER, KIND_SANDBOX, POD_NAME
from agent.runtime import ContainerSpec, RuntimeFailure
from agent.trace import parse as parse_agent_trace

MINIK = str(Path(sys.executable).with_name("minik"))
KEEPALIVE = 600.0
BUSYBOX = "minik/busybox:1.35"
PAUSE = "minik/pause:1.0"
POD_SPEC = {"terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"]}]}

STAGES = (
    ("created", "API create answered"),
    ("scheduled", "watch sees spec.nodeName"),
    ("agent:seen", "agent: informer sees the pod"),
    ("agent:sync", "agent: sync begins"),
    ("agent:sandbox", "agent: asks for the pause"),
    ("sandbox_create", "engine: pause created"),
    ("sandbox_start", "engine: pause started"),
    ("agent:sandbox_up", "agent: pause start returned"),
    ("agent:app", "agent: asks for the app"),
    ("app_create", "engine: app created"),
    ("app_start", "engine: app started"),
    ("agent:app_up", "agent: app start returned"),
    ("agent:status", "agent: status write sent"),
    ("agent:status_written", "agent: status written"),
    ("running", "watch sees Running (floor: done)"),
)


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


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class FloorNetwork:
    """A bridge network of the floor's own, made once, so no sample pays for its creation."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.name = f"bench-{label}"

    async def __aenter__(self) -> FloorNetwork:
        """On the first of a few /24s that no other network (a test's minik, say) uses."""
        runtime = DockerRuntime()
        try:
            for second in range(253, 199, -1):
                try:
                    await runtime.ensure_network(self.name, subnet=f"10.{second}.254.0/24",
                                                 gateway=None, labels={INSTANCE: self.label})
                    return self
                except RuntimeFailure as e:
                    if "overlap" not in str(e):
                        raise
            raise RuntimeFailure("no free 10.x.254.0/24 (x=200..253) for the floor's network")
        finally:
            await runtime.close()

    async def __aexit__(self, *_: object) -> None:
        runtime = DockerRuntime()
        try:
            await runtime.remove_network(self.name)
        finally:
            await runtime.close()


async def raw_floor(n: int, label: str, network: FloorNetwork | None = None) -> list[float]:
    """pause + app container per 'pod', all at once, straight through the Docker API."""
    return [trace.total for trace in await floor_pods(n, label, network)]


async def floor_pods(n: int, label: str, network: FloorNetwork | None = None) -> list[Trace]:
    """The floor's 'pods', each traced from its first call to its app's start returning.

    Its containers carry the pod-name and kind labels (not the instance's), so
    `EngineEvents` on the floor network's label sees their create and start.
    """
    if network is None:
        async with FloorNetwork(label) as own:
            return await floor_pods(n, label, own)
    runtime = DockerRuntime()
    labels = {INSTANCE: network.label}

    async def one(i: int) -> Trace:
        pod = {POD_NAME: f"{label}-{i}"}
        trace = Trace(time.perf_counter())
        pause = await runtime.create(ContainerSpec(
            name=f"{label}-p{i}", image=PAUSE, labels={**labels, **pod, KIND: KIND_SANDBOX},
            network_mode=network.name, ipc_mode="shareable"))
        await runtime.start(pause)
        app = await runtime.create(ContainerSpec(
            name=f"{label}-a{i}", image=BUSYBOX, labels={**labels, **pod, KIND: KIND_CONTAINER},
            command=["sleep", "3600"], args=[], network_mode=f"container:{pause}",
            ipc_mode=f"container:{pause}"))
        await runtime.start(app)
        trace.mark("running")
        trace.name = pod[POD_NAME]
        return trace

    try:
        return list(await asyncio.gather(*(one(i) for i in range(n))))
    finally:
        infos = await runtime.list(labels)
        for info in sorted(infos, key=lambda i: "-p" in i.name):
            await runtime.remove(info.id, force=True)
        await runtime.close()


class EngineEvents:
    """Docker's create/start (or other) events of one instance's containers, on the bench's
    clock."""

    def __init__(self, instance: str, actions: tuple[str, ...] = ("create", "start")) -> None:
        self._client = docker.from_env()
        self._stream = self._client.events(decode=True, filters={
            "type": "container", "event": list(actions), "label": f"{INSTANCE}={instance}"})
        self.seen: dict[tuple[str, str, str], float] = {}
        self._thread = threading.Thread(target=self._follow, name="engine-events", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        try:
            for event in self._stream:
                labels = (event.get("Actor") or {}).get("Attributes") or {}
                what = "sandbox" if labels.get(KIND) == KIND_SANDBOX else "app"
                key = (labels.get(POD_NAME, ""), what, event.get("Action", ""))
                self.seen.setdefault(key, bench_clock(event["timeNano"] / 1e9))
        except (docker.errors.APIError, OSError, ValueError):
            return  # close() ended the stream

    def of(self, pod: str) -> dict[str, float]:
        return {f"{what}_{action}": at for (name, what, action), at in self.seen.items()
                if name == pod}

    def close(self) -> None:
        self._stream.close()
        self._client.close()


_CLOCK_OFFSET = time.time() - time.perf_counter()


def bench_clock(unix_time: float) -> float:
    """A wall-clock time (the engine's events, the agent's log) on `time.perf_counter`'s clock."""
    return unix_time - _CLOCK_OFFSET


def agent_marks(log: Path) -> dict[str, dict[str, float]]:
    """The agent's trace lines (`agent.trace`) from the server's log: pod name -> stage -> time."""
    marks: dict[str, dict[str, float]] = {}
    for line in log.read_text(errors="replace").splitlines():
        if seen := parse_agent_trace(line):
            marks.setdefault(seen.name, {}).setdefault(f"agent:{seen.stage}",
                                                       bench_clock(seen.at))
    return marks


@dataclass
class Trace:
    sent: float
    at: dict[str, float] = field(default_factory=dict)
    name: str = ""

    def mark(self, stage: str, when: float | None = None) -> None:
        self.at.setdefault(stage, time.perf_counter() if when is None else when)

    def add(self, marks: dict[str, float]) -> None:
        for stage, at in marks.items():
            self.mark(stage, at)

    @property
    def total(self) -> float:
        return self.at["running"] - self.sent


class Api:
    def __init__(self, home: Path, port: int) -> None:
        self.base = f"https://127.0.0.1:{port}"
        token = (home / "token").read_text().strip()
        # Connections are kept between runs, as a real client would: the bench's own
        # 20 TLS handshakes are no part of a pod's start.
        self.session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {token}"},
            connector=aiohttp.TCPConnector(
                ssl=ssl.create_default_context(cafile=str(home / "ca.crt")), limit=0,
                keepalive_timeout=KEEPALIVE))

    async def close(self) -> None:
        await self.session.close()

    async def namespace(self, name: str) -> str:
        async with self.session.post(f"{self.base}/api/v1/namespaces",
                                     json={"metadata": {"name": name}}) as r:
            assert r.status == 201, await r.text()
        return f"{self.base}/api/v1/namespaces/{name}/pods"


async def minik_pods(api: Api, pods: str, names: list[str]) -> dict[str, Trace]:
    """Create the named pods at once; their traces once a watch has seen each Running."""
    async with api.session.get(pods) as r:
        rv = (await r.json())["metadata"]["resourceVersion"]
    traces: dict[str, Trace] = {}
    watching = asyncio.Event()

    async def watch() -> None:
        params = {"watch": "true", "resourceVersion": rv}
        async with api.session.get(pods, params=params, timeout=None) as r:
            watching.set()
            async for line in r.content:
                obj = json.loads(line)["object"]
                trace = traces.get(obj["metadata"]["name"])
                if trace is None:
                    continue
                if obj.get("spec", {}).get("nodeName"):
                    trace.mark("scheduled")
                if obj.get("status", {}).get("phase") == "Running":
                    trace.mark("running")
                    if all("running" in t.at for t in traces.values()):
                        return

    async def create(name: str) -> None:
        body = {"metadata": {"name": name}, "spec": POD_SPEC}
        traces[name] = trace = Trace(time.perf_counter(), name=name)
        async with api.session.post(pods, json=body) as r:
            assert r.status == 201, await r.text()
        trace.mark("created")

    watcher = asyncio.create_task(watch())
    await watching.wait()
    await asyncio.gather(*(create(name) for name in names))
    await asyncio.wait_for(watcher, timeout=300)
    return traces


def minik(home: Path, *args: str) -> None:
    subprocess.run([MINIK, "--home", str(home), *args], check=True, capture_output=True,
                   env={**os.environ, "MINIK_DEBUG": "agent.trace"})


@dataclass
class Instance:
    """A running minik of the bench's own."""

    home: Path
    name: str
    api: Api


@contextlib.asynccontextmanager
async def bench_instance() -> AsyncIterator[Instance]:
    """A minik in a temporary home on a free port, the agent's trace on; purged at the end."""
    with tempfile.TemporaryDirectory(prefix="minik-bench-") as tmp:
        home, port = Path(tmp) / "home", free_port()
        name = f"bench-{uuid.uuid4().hex[:6]}"
        minik(home, "up", "-d", "--name", name, "--port", str(port))
        api = Api(home, port)
        try:
            yield Instance(home, name, api)
        finally:
            await api.close()
            minik(home, "down", "--purge")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


def print_trace(floor: list[Trace], ours: list[Trace], title: str,
                stages: tuple[tuple[str, str], ...] = STAGES) -> None:
    print(f"\n{title} (medians; ms since the create was sent)")
    print(f"{'stage':<36} {'floor':>7} {'minik':>7} {'step':>7}")
    previous = 0.0
    for stage, label in stages:
        floor_times = [(t.at[stage] - t.sent) * 1000 for t in floor if stage in t.at]
        times = [(t.at[stage] - t.sent) * 1000 for t in ours if stage in t.at]
        floor_at = f"{statistics.median(floor_times):.0f}" if floor_times else "-"
        if not times:
            print(f"{label:<36} {floor_at:>7} {'-':>7}")
            continue
        at = statistics.median(times)
        print(f"{label:<36} {floor_at:>7} {at:>7.0f} {at - previous:>7.0f}")
        previous = at


@dataclass
class Sampled:
    """One case's samples: the floor's and minik's traces, and the server's CPU seconds."""

    floor: list[Trace] = field(default_factory=list)
    ours: list[Trace] = field(default_factory=list)
    server_cpu: float = 0.0


class Bench:
    def __init__(self, api: Api, pid: int, network: FloorNetwork, instance: str) -> None:
        self.api, self.pid, self.network = api, pid, network
        self.events = EngineEvents(instance)
        self.floor_events = EngineEvents(network.label)

    def close(self) -> None:
        self.events.close()
        self.floor_events.close()

    async def floor(self, n: int, label: str) -> list[Trace]:
        traces = await floor_pods(n, f"{self.network.label}-{label}", self.network)
        for trace in traces:
            trace.add(self.floor_events.of(trace.name))
        return traces

    async def minik(self, pods: str, names: list[str], into: Sampled) -> list[Trace]:
        """Pods created at once in the namespace whose pods URL is `pods` (made beforehand:
        a new namespace keeps the server's controllers busy for a moment)."""
        cpu = cpu_seconds(self.pid)
        traces = list((await minik_pods(self.api, pods, names)).values())
        into.server_cpu += cpu_seconds(self.pid) - cpu
        for trace in traces:
            trace.add(self.events.of(trace.name))
        return traces

    async def single_pods(self, samples: int) -> Sampled:
        sampled = Sampled()
        pods = await self.api.namespace("bench-single")
        for i in range(samples):
            sampled.floor += await self.floor(1, f"1-{i}")
            sampled.ours += await self.minik(pods, [f"single-{i}"], sampled)
            progress(f"  N=1 sample {i + 1}/{samples}: floor {sampled.floor[-1].total:.3f}s "
                     f"minik {sampled.ours[-1].total:.3f}s")
        return sampled

    async def many_pods(self, n: int, runs: int) -> tuple[list[tuple[float, ...]], Sampled]:
        rows: list[tuple[float, ...]] = []
        sampled = Sampled()
        for run_index in range(runs):
            pods = await self.api.namespace(f"bench-{n}-{run_index}")
            floor_traces = await self.floor(n, f"{n}-{run_index}")
            sampled.floor += floor_traces
            floor = [t.total for t in floor_traces]
            ours_traces = await self.minik(pods, [f"r{run_index}-p{i}" for i in range(n)],
                                           sampled)
            sampled.ours += ours_traces
            ours = [t.total for t in ours_traces]
            rows.append((pct(floor, 50), pct(floor, 99), pct(ours, 50), pct(ours, 99)))
            progress(f"  N={n} run {run_index + 1}/{runs}: floor p50 {rows[-1][0]:.2f}s "
                     f"minik p50 {rows[-1][2]:.2f}s")
        return rows, sampled


async def run(samples: int, size: int, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="minik-bench-") as tmp:
        home, port = Path(tmp) / "home", free_port()
        instance = f"bench-{uuid.uuid4().hex[:6]}"
        minik(home, "up", "-d", "--name", instance, "--port", str(port))
        pid = int((home / "server.pid").read_text())
        api = Api(home, port)
        try:
            async with FloorNetwork(f"{instance}-raw") as network:
                bench = Bench(api, pid, network, instance)
                try:
                    progress(f"warming up: {size} pods each way, not counted")
                    await bench.floor(size, "warm")
                    await bench.minik(await api.namespace("bench-warm"),
                                      [f"warm-{i}" for i in range(size)], Sampled())
                    rss_before = rss_mb(pid)
                    progress(f"N=1 x {samples}")
                    single = await bench.single_pods(samples)
                    progress(f"N={size} x {runs}")
                    rows, many = await bench.many_pods(size, runs)
                    rss_growth = (rss_mb(pid) - rss_before) / (samples + size * runs)
                finally:
                    bench.close()
            marks = agent_marks(home / "server.log")
        finally:
            await api.close()
            minik(home, "down", "--purge")
    for trace in [*single.ours, *many.ours]:
        trace.add(marks.get(trace.name, {}))
    report(samples, size, runs, single, rows, many, rss_growth)


def report(samples: int, size: int, runs: int, single: Sampled, rows: list[tuple[float, ...]],
           many: Sampled, rss_growth: float) -> None:
    floor1 = [t.total for t in single.floor]
    ours1 = [t.total for t in single.ours]
    f50, m50 = statistics.median(floor1), statistics.median(ours1)
    print("pod start-up: create -> Running (watch) vs raw docker pause+app, same concurrency;"
          " pod spec fixed: busybox sleep, grace 0")
    print(f"{'case':<22} {'floor':>8} {'minik':>8} {'ratio':>7} {'spread':>12}   goal <= 1.1x")
    ratios1 = [m / f for f, m in zip(floor1, ours1, strict=True)]
    print(f"{f'N=1 median of {samples}':<22} {f50:>7.3f}s {m50:>7.3f}s {m50 / f50:>6.2f}x "
          f"{spread(ratios1):>12}")
    run_ratios = [m / f for f, _, m, _ in rows]
    for index, (r50, r99, o50, o99) in enumerate(rows, start=1):
        print(f"{f'N={size} run {index} p50':<22} {r50:>7.2f}s {o50:>7.2f}s "
              f"{o50 / r50:>6.2f}x {'':>12}   (p99 {o99 / r99:.2f}x)")
    print(f"{f'N={size} median of {runs}':<22} {'':>8} {'':>8} "
          f"{statistics.median(run_ratios):>6.2f}x {spread(run_ratios):>12}")
    print_trace(single.floor, single.ours, "one pod's path at N=1")
    print_trace(many.floor, many.ours, f"a pod's path at N={size}")
    print(f"\nserver CPU per pod: {single.server_cpu / samples * 1000:.0f} ms at N=1, "
          f"{many.server_cpu / (size * runs) * 1000:.0f} ms at N={size}")
    print(f"server RSS growth per pod: {rss_growth:.2f} MB (goal <= 1 MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=10, help="N=1 samples")
    parser.add_argument("--size", type=int, default=20, help="pods created at once")
    parser.add_argument("--runs", type=int, default=3, help="runs of --size pods")
    args = parser.parse_args()
    asyncio.run(run(args.samples, args.size, args.runs))


if __name__ == "__main__":
    main()
