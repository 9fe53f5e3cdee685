"""Benchmark: a StatefulSet with a claim per replica to Ready vs the same pods and volumes
through Docker, one ordinal after another (OrderedReady) and all at once (Parallel).

The set (`set_manifest`): `--replicas` (default 10) busybox `sleep` pods,
grace period 0, each with a claim from the template `data` (1Mi of the
default class `standard`, so a Docker volume that minik's node agent
provisions) mounted at /data and an exec readiness probe `test -d /data`
(period 1 s). minik's time runs from the set's create to a watch seeing
`status.readyReplicas` reach the replica count, as `kubectl rollout status`
waits for.

The floor does the same work straight through the Docker API, through the
same `DockerRuntime` and its thread pools: per ordinal, `volume create`,
the pause container on a network of the floor's own, the app container
joined to it with the volume at /data, and then the readiness probe's own
check (`agent.probe_checks.run_probe_check`, the agent's code) run as the
prober runs it, right away and again every period until it passes. For
OrderedReady an ordinal starts when the previous one is ready; for Parallel
every ordinal starts at once. A floor run comes right before each minik
run, so the machine's drift hits both; the ratio of each case is the
median of its runs' ratios, with their spread. Goal: <= 1.3x the floor each.

Every ordinal is traced, and the tables print the medians of each stage,
in ms since the ordinal could begin (OrderedReady: the previous ordinal
Ready, or the set's create for ordinal 0; Parallel: the set's create):
watches on the run's claims, PVs, pods and the set; the agent's marks from
the server's log (`MINIK_DEBUG=agent.trace`, as in bench/pod_startup.py);
Docker's create/start events of the pods' containers. A two-replica
warm-up each way is not counted. Each minik run has a namespace of its
own, deleted (claims, PVs and Docker volumes with it) before the next
run. Everything the bench makes carries its instance's label and goes at
the end; the load average is printed, as the machine may be shared.

Where minik's time went (issue 11), read off these traces on a 2-core
machine shared with other work (load 1-10; the runs' ratios spread
0.9-1.8x, so a median of 3 says little there):

- OrderedReady, per ordinal: 660-750 ms against the floor's 440-670.
  ~80-100 ms of it come before the pause container is created (the floor:
  15-30 ms, its volume create and the pause create): the set's controller
  creates the claim 5-10 ms after the previous pod is Ready and the pod
  5-10 ms later; the PV controller asks for a provisioner 13-20 ms on; the
  node's provisioner has the PV 18-30 ms on (its Docker calls take ~2 ms:
  the rest is the PV's create and the watches, on the server's one event
  loop); the PV controller's four binding writes (PV claimRef, PV phase,
  claim, claim phase, in Kubernetes' order) 15-25 ms; the scheduler and
  the agent then follow within ~25 ms. The pause start itself took 20-70 ms
  longer than the floor's, and Ready comes 70-100 ms after the app started
  (the Running status, the probe's exec, a second status write) against
  the floor's exec of ~55 ms.
- Parallel: the claims are made in slow-start batches (1, 2, 4, 3), as in
  Kubernetes, by 80-180 ms; then the PV controller's one claim worker (one,
  as in Kubernetes) annotates them one after another, and once each PV
  appears makes the four binding writes, one claim after another: the
  median claim is Bound 550-720 ms after the set's create, the last ~850
  ms, while the floor has all volumes in ~25 ms. The pods are scheduled
  only then (the class binds Immediately), so their containers start
  ~550 ms after the floor's. The provisioner takes 40-55 ms per claim and
  does not queue: its two workers get the claims as the PV controller
  annotates them.

    .venv/bin/python bench/statefulset.py [--replicas 10] [--runs 3] [--policies Parallel]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pod_startup
from pod_startup import (
    BUSYBOX,
    PAUSE,
    Api,
    EngineEvents,
    FloorNetwork,
    Trace,
    agent_marks,
    free_port,
    minik,
    progress,
    spread,
)

from agent.docker_runtime import DockerRuntime
from agent.labels import INSTANCE, KIND, KIND_CONTAINER, KIND_SANDBOX, POD_NAME
from agent.probe_checks import run_probe_check
from agent.runtime import ContainerSpec, VolumeMount
from minik.api.objects import Container, JsonObject

GOAL = 1.3
PROVISIONER_ANNOTATION = "volume.kubernetes.io/storage-provisioner"
TIMEOUT = 300.0
POLICIES = ("OrderedReady", "Parallel")
PERIOD = 1
COMMAND = ["sleep", "3600"]
PROBE: JsonObject = {"exec": {"command": ["test", "-d", "/data"]}, "periodSeconds": PERIOD}
APP: Container = {"name": "c", "image": BUSYBOX, "command": COMMAND,
                  "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                  "readinessProbe": PROBE}

STAGES = (
    ("claim", "claim created (watch)"),
    ("pod", "pod created (watch)"),
    ("provisioner", "claim annotated for a provisioner"),
    ("volume", "volume made (floor) / PV seen"),
    ("pv_bound", "PV Bound"),
    ("bound", "claim Bound"),
    ("scheduled", "pod scheduled"),
    *pod_startup.STAGES[2:-1],  # the agent's and the engine's marks
    ("running", "Running (floor: app start returned)"),
    ("ready", "Ready (floor: probe passed)"),
)


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def set_manifest(name: str, replicas: int, policy: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
        "spec": {
            "replicas": replicas, "serviceName": name, "podManagementPolicy": policy,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "terminationGracePeriodSeconds": 0, "containers": [APP]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Mi"}}}}]}}


@dataclass
class Run:
    """One run of a case: the time to Ready and each ordinal's trace (ordinal order)."""

    seconds: float
    traces: list[Trace] = field(default_factory=list)


# ------------------------------------------------------------------ the floor


class Floor:
    """The same pods and volumes straight through Docker, on the floor's own network."""

    def __init__(self, network: FloorNetwork) -> None:
        self.network = network
        self.events = EngineEvents(network.label)

    def close(self) -> None:
        self.events.close()

    async def run(self, label: str, replicas: int, *, parallel: bool) -> Run:
        runtime = DockerRuntime()
        labels = {INSTANCE: self.network.label}
        try:
            started = time.perf_counter()
            if parallel:
                traces = list(await asyncio.gather(*(
                    self._pod(runtime, labels, label, i, started) for i in range(replicas))))
            else:
                traces = []
                for i in range(replicas):
                    traces.append(await self._pod(runtime, labels, label, i,
                                                  time.perf_counter()))
            seconds = time.perf_counter() - started
        finally:
            infos = await runtime.list(labels)
            for info in sorted(infos, key=lambda i: i.labels.get(KIND) == KIND_SANDBOX):
                await runtime.remove(info.id, force=True)
            for volume in await runtime.list_volumes(labels):
                await runtime.remove_volume(volume.name)
            await runtime.close()
        for trace in traces:
            trace.add(self.events.of(trace.name))
        return Run(seconds, traces)

    async def _pod(self, runtime: DockerRuntime, labels: dict[str, str], label: str, i: int,
                   began: float) -> Trace:
        name = f"{label}-{i}"
        trace = Trace(began, name=name)
        pod = {**labels, POD_NAME: name}
        volume = await runtime.create_volume(f"{self.network.label}-{name}", labels=labels)
        trace.mark("volume")
        pause = await runtime.create(ContainerSpec(
            name=f"{self.network.label}-{name}-p", image=PAUSE,
            labels={**pod, KIND: KIND_SANDBOX}, network_mode=self.network.name,
            ipc_mode="shareable"))
        await runtime.start(pause)
        app = await runtime.create(ContainerSpec(
            name=f"{self.network.label}-{name}-a", image=BUSYBOX,
            labels={**pod, KIND: KIND_CONTAINER}, command=COMMAND, args=[],
            network_mode=f"container:{pause}", ipc_mode=f"container:{pause}",
            mounts=[VolumeMount(volume.name, "/data")]))
        await runtime.start(app)
        trace.mark("running")
        while (await run_probe_check(runtime, PROBE, container=APP, container_id=app,
                                     pod_ip=None, timeout=1.0)).outcome != "success":
            await asyncio.sleep(PERIOD)
        trace.mark("ready")
        return trace


# ------------------------------------------------------------------ minik


class Watches:
    """Watches on one namespace's claims, pods and sets and on PVs, marking traces by pod."""

    def __init__(self, api: Api, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.traces: dict[str, Trace] = {}
        self.ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, set_name: str, replicas: int) -> None:
        ns = f"{self.api.base}/api/v1/namespaces/{self.namespace}"
        sets = f"{self.api.base}/apis/apps/v1/namespaces/{self.namespace}/statefulsets"
        prefix = f"data-{set_name}-"

        def claim(obj: dict[str, Any]) -> Trace | None:
            return self.traces.get(obj["metadata"]["name"].removeprefix("data-"))

        def on_claim(obj: dict[str, Any]) -> None:
            if (trace := claim(obj)) is not None:
                trace.mark("claim")
                if PROVISIONER_ANNOTATION in obj["metadata"].get("annotations", {}):
                    trace.mark("provisioner")
                if obj.get("status", {}).get("phase") == "Bound":
                    trace.mark("bound")

        def on_pv(obj: dict[str, Any]) -> None:
            ref = obj.get("spec", {}).get("claimRef") or {}
            if ref.get("namespace") != self.namespace or not ref.get("name", "").startswith(prefix):
                return
            if (trace := self.traces.get(ref["name"].removeprefix("data-"))) is not None:
                trace.mark("volume")
                if obj.get("status", {}).get("phase") == "Bound":
                    trace.mark("pv_bound")

        def on_pod(obj: dict[str, Any]) -> None:
            if (trace := self.traces.get(obj["metadata"]["name"])) is None:
                return
            trace.mark("pod")
            if obj.get("spec", {}).get("nodeName"):
                trace.mark("scheduled")
            status = obj.get("status", {})
            if status.get("phase") == "Running":
                trace.mark("running")
            if any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in status.get("conditions") or []):
                trace.mark("ready")

        def on_set(obj: dict[str, Any]) -> None:
            if (obj["metadata"]["name"] == set_name
                    and obj.get("status", {}).get("readyReplicas") == replicas):
                self.ready.set()

        for url, handler in ((f"{ns}/persistentvolumeclaims", on_claim),
                             (f"{self.api.base}/api/v1/persistentvolumes", on_pv),
                             (f"{ns}/pods", on_pod), (sets, on_set)):
            opened = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._watch(url, handler, opened)))
            await opened.wait()

    async def _watch(self, url: str, handler: Callable[[dict[str, Any]], None],
                     opened: asyncio.Event) -> None:
        async with self.api.session.get(url) as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        params = {"watch": "true", "resourceVersion": rv}
        async with self.api.session.get(url, params=params, timeout=None) as r:
            opened.set()
            async for line in r.content:
                handler(json.loads(line)["object"])

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class Minik:
    def __init__(self, api: Api, instance: str) -> None:
        self.api = api
        self.events = EngineEvents(instance)

    def close(self) -> None:
        self.events.close()

    async def run(self, set_name: str, replicas: int, policy: str) -> Run:
        namespace = f"bench-{set_name}"
        await self.api.namespace(namespace)
        watches = Watches(self.api, namespace)
        try:
            await watches.start(set_name, replicas)
            sets = f"{self.api.base}/apis/apps/v1/namespaces/{namespace}/statefulsets"
            started = time.perf_counter()
            for i in range(replicas):
                watches.traces[f"{set_name}-{i}"] = Trace(started, name=f"{set_name}-{i}")
            async with self.api.session.post(
                    sets, json=set_manifest(set_name, replicas, policy)) as r:
                assert r.status == 201, await r.text()
            await asyncio.wait_for(watches.ready.wait(), TIMEOUT)
            seconds = time.perf_counter() - started
        finally:
            await watches.close()
        traces = [watches.traces[f"{set_name}-{i}"] for i in range(replicas)]
        for trace in traces:
            trace.add(self.events.of(trace.name))
        await self.remove(namespace)
        return Run(seconds, traces)

    async def remove(self, namespace: str) -> None:
        """Delete the run's namespace; wait until it, its claims' PVs and volumes are gone."""
        base = self.api.base
        async with self.api.session.delete(f"{base}/api/v1/namespaces/{namespace}") as r:
            assert r.status in (200, 202), await r.text()
        deadline = time.perf_counter() + TIMEOUT
        while time.perf_counter() < deadline:
            async with self.api.session.get(f"{base}/api/v1/namespaces/{namespace}") as r:
                ns_gone = r.status == 404
            async with self.api.session.get(f"{base}/api/v1/persistentvolumes") as r:
                pvs = [pv for pv in (await r.json())["items"]
                       if (pv["spec"].get("claimRef") or {}).get("namespace") == namespace]
            if ns_gone and not pvs:
                return
            await asyncio.sleep(0.5)
        raise TimeoutError(f"namespace {namespace} and its PVs not gone within {TIMEOUT}s")


# ------------------------------------------------------------------ the runs


async def run(replicas: int, runs: int, policies: list[str]) -> None:
    loads = [load()]
    with tempfile.TemporaryDirectory(prefix="minik-bench-") as tmp:
        home, port = Path(tmp) / "home", free_port()
        instance = f"bench-{uuid.uuid4().hex[:6]}"
        progress(f"starting minik {instance} (load average {loads[0]})")
        minik(home, "up", "-d", "--name", instance, "--port", str(port))
        api = Api(home, port)
        results: dict[str, list[tuple[Run, Run]]] = {policy: [] for policy in policies}
        try:
            async with FloorNetwork(f"{instance}-raw") as network:
                floor, ours = Floor(network), Minik(api, instance)
                try:
                    progress("warming up: 2 replicas each way, not counted")
                    await floor.run("warm", 2, parallel=True)
                    await ours.run("warm", 2, "Parallel")
                    for index in range(1, runs + 1):
                        for policy in policies:
                            tag = f"{policy[0].lower()}{index}"
                            floor_run = await floor.run(tag, replicas,
                                                        parallel=policy == "Parallel")
                            minik_run = await ours.run(tag, replicas, policy)
                            results[policy].append((floor_run, minik_run))
                            loads.append(load())
                            progress(f"  {policy} run {index}/{runs}: floor "
                                     f"{floor_run.seconds:.2f}s minik {minik_run.seconds:.2f}s "
                                     f"({minik_run.seconds / floor_run.seconds:.2f}x; "
                                     f"load {loads[-1]})")
                finally:
                    floor.close()
                    ours.close()
            marks = agent_marks(home / "server.log")
        finally:
            await api.close()
            minik(home, "down", "--purge")
            sweep(instance)
    for pairs in results.values():
        for _, minik_run in pairs:
            for trace in minik_run.traces:
                trace.add(marks.get(trace.name, {}))
    report(replicas, runs, results, loads)


def sweep(instance: str) -> None:
    """Remove whatever of the bench's instance (minik's and the floor's) outlived
    `minik down --purge`; say what could not go."""
    client = docker.from_env()
    try:
        for label in (instance, f"{instance}-raw"):
            wanted: dict[str, str | list[str] | bool] = {"label": f"{INSTANCE}={label}"}
            removals: list[tuple[str, Callable[[], None]]] = []
            for container in client.containers.list(all=True, filters=wanted):
                removals.append((str(container.name),
                                 functools.partial(container.remove, force=True)))
            for network in client.networks.list(filters=wanted):
                removals.append((str(network.name), network.remove))
            for volume in client.volumes.list(filters=wanted):
                removals.append((str(volume.name), functools.partial(volume.remove, force=True)))
            for name, remove in removals:
                try:
                    remove()
                except docker.errors.APIError as e:
                    progress(f"left behind: {name} ({e.explanation})")
    finally:
        client.close()


# ------------------------------------------------------------------ the report


def since_begin(run: Run, *, ordered: bool) -> list[Trace]:
    """Each ordinal's trace, measured from when it could begin: the previous ordinal's
    Ready when `ordered`, else the create."""
    traces = []
    began = run.traces[0].sent if run.traces else 0.0
    for trace in run.traces:
        traces.append(Trace(began if ordered else trace.sent, dict(trace.at), trace.name))
        if ordered and "ready" in trace.at:
            began = trace.at["ready"]
    return traces


def print_trace(pairs: list[tuple[Run, Run]], *, ordered: bool, title: str) -> None:
    pod_startup.print_trace([t for f, _ in pairs for t in since_begin(f, ordered=ordered)],
                            [t for _, m in pairs for t in since_begin(m, ordered=ordered)],
                            title, STAGES)


def report(replicas: int, runs: int, results: dict[str, list[tuple[Run, Run]]],
           loads: list[str]) -> None:
    print(f"statefulset: {replicas} replicas with a claim each (class standard, Docker volumes)"
          f" to Ready vs the same pods and volumes through Docker; {os.cpu_count()} cores, "
          f"load average {loads[0]} at the start, {loads[-1]} at the end")
    print(f"{'case':<26} {'floor':>8} {'minik':>8} {'ratio':>7} {'spread':>12}   goal")
    for policy, pairs in results.items():
        ratios = [m.seconds / f.seconds for f, m in pairs]
        for index, (f, m) in enumerate(pairs, start=1):
            print(f"{f'{policy} run {index}':<26} {f.seconds:>7.2f}s {m.seconds:>7.2f}s "
                  f"{m.seconds / f.seconds:>6.2f}x")
        floor = statistics.median(f.seconds for f, _ in pairs)
        ours = statistics.median(m.seconds for _, m in pairs)
        print(f"{f'{policy} median of {runs}':<26} {floor:>7.2f}s {ours:>7.2f}s "
              f"{statistics.median(ratios):>6.2f}x {spread(ratios):>12}   <= {GOAL}x")
    if "OrderedReady" in results:
        print_trace(results["OrderedReady"], ordered=True,
                    title="an ordinal's path, OrderedReady (the create: the previous ordinal "
                          "Ready, for ordinal 0 the set's)")
    if "Parallel" in results:
        print_trace(results["Parallel"], ordered=False, title="an ordinal's path, Parallel")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--policies", default=",".join(POLICIES),
                        help="podManagementPolicy values to measure, comma-separated")
    args = parser.parse_args()
    policies = args.policies.split(",")
    if unknown := set(policies) - set(POLICIES):
        parser.error(f"unknown --policies {', '.join(sorted(unknown))}: "
                     f"choose from {', '.join(POLICIES)}")
    asyncio.run(run(args.replicas, args.runs, policies))


if __name__ == "__main__":
    main()
