"""Benchmark: a Job of 50 completions, parallelism 10, of a container that exits at once,
from create to Complete, vs the same 50 pods straight through Docker, 10 at a time.

The Job (`job_manifest`): `--completions` (50) pods of minik/busybox:1.35
running `true`, `--parallelism` (10) at once, restartPolicy Never, grace
period 0. minik's time runs from the Job's POST to a watch seeing its
`Complete` condition, as `kubectl wait --for=condition=complete` waits.

The floor does the pods' Docker work through the same `DockerRuntime`, on
a network of its own: per pod the pause container created and started,
the app container joined to it created and started, and its exit awaited
(the engine's `wait`); ten slots, each taking the next pod as soon as its
last one exited. A floor run comes right before each minik run, so the
machine's drift hits both; the ratio is the median of the runs' ratios,
with their spread. Goal: <= 1.3x the floor.

Where minik's time goes is read off a pod watch: for each pod its create,
its bind (scheduled), its Running or terminal phase as the agent reports
it, and `Succeeded`; and for each new pod (after the first ten) how long
after the success that freed its slot the Job controller created it. Each
minik run has a namespace of its own, deleted before the next. Everything
the bench makes carries its instance's label and goes at the end.

Figures (issue 12, a 2-core machine shared with other work, load 10-24):
ratio medians 1.28x (1.06-1.45), 1.28x (1.15-1.31), 1.11x (0.96-1.36) in
three sessions of 3 runs; floor 20-35 s. Per pod (medians): bound 20-33 ms
after its create; the Job controller's next pod created 80-100 ms after a
success frees a slot; the pod's Docker work as in the floor; and 1.1-1.6 s
from the app's exit to `Succeeded` seen, most of it the agent stopping the
pause container (Docker's network teardown) before it writes the status.
Writing the status first cut that to 0.2-0.3 s, but a Job deleted right
after completing then has its pods' deletion interrupt a sync in the middle
of that stop (a `docker stop` and a forced remove of one container at
once), which once left a Docker network endpoint behind; left undone.

    .venv/bin/python bench/jobs.py [--completions 50] [--parallelism 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pod_startup import (
    BUSYBOX,
    PAUSE,
    Api,
    EngineEvents,
    FloorNetwork,
    bench_instance,
    progress,
    spread,
)
from statefulset import load, sweep

from agent.docker_runtime import DockerRuntime
from agent.labels import INSTANCE, KIND, KIND_CONTAINER, KIND_SANDBOX, POD_NAME
from agent.runtime import ContainerSpec

GOAL = 1.3
TIMEOUT = 600.0
COMMAND = ["true"]


def job_manifest(name: str, completions: int, parallelism: int) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"completions": completions, "parallelism": parallelism,
                     "template": {"spec": {
                         "restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                         "containers": [{"name": "c", "image": BUSYBOX,
                                         "command": COMMAND}]}}}}


@dataclass
class PodTimes:
    """When a watch saw each stage of one pod, in seconds since the Job's create."""

    created: float
    at: dict[str, float] = field(default_factory=dict)

    def mark(self, stage: str, when: float) -> None:
        self.at.setdefault(stage, when)


@dataclass
class Run:
    seconds: float
    pods: list[PodTimes] = field(default_factory=list)


async def floor(network: FloorNetwork, label: str, completions: int, parallelism: int) -> Run:
    """The same pods through Docker, `parallelism` at a time, each to its app's exit."""
    runtime = DockerRuntime()
    engine = docker.APIClient()
    labels = {INSTANCE: network.label}
    queue = iter(range(completions))

    async def slot() -> None:
        for i in queue:
            pod = {**labels, POD_NAME: f"{label}-{i}"}
            pause = await runtime.create(ContainerSpec(
                name=f"{network.label}-{label}-p{i}", image=PAUSE,
                labels={**pod, KIND: KIND_SANDBOX}, network_mode=network.name,
                ipc_mode="shareable"))
            await runtime.start(pause)
            app = await runtime.create(ContainerSpec(
                name=f"{network.label}-{label}-a{i}", image=BUSYBOX,
                labels={**pod, KIND: KIND_CONTAINER}, command=COMMAND, args=[],
                network_mode=f"container:{pause}", ipc_mode=f"container:{pause}"))
            await runtime.start(app)
            await asyncio.to_thread(engine.wait, app)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(slot() for _ in range(parallelism)))
        return Run(time.perf_counter() - started)
    finally:
        infos = await runtime.list(labels)
        for info in sorted(infos, key=lambda i: i.labels.get(KIND) == KIND_SANDBOX):
            await runtime.remove(info.id, force=True)
        await runtime.close()
        engine.close()


async def watch(api: Api, url: str, handler: Any, opened: asyncio.Event) -> None:
    async with api.session.get(url) as r:
        rv = (await r.json())["metadata"]["resourceVersion"]
    async with api.session.get(url, params={"watch": "true", "resourceVersion": rv},
                               timeout=None) as r:
        opened.set()
        async for line in r.content:
            handler(json.loads(line)["object"])


async def minik_job(api: Api, engine: EngineEvents, name: str, completions: int,
                    parallelism: int) -> Run:
    namespace = f"bench-{name}"
    await api.namespace(namespace)
    base = f"{api.base}/apis/batch/v1/namespaces/{namespace}/jobs"
    pods: dict[str, PodTimes] = {}
    complete = asyncio.Event()
    started = 0.0

    def on_job(obj: dict[str, Any]) -> None:
        if any(c.get("type") == "Complete" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or []):
            complete.set()

    def on_pod(obj: dict[str, Any]) -> None:
        now = time.perf_counter() - started
        times = pods.setdefault(obj["metadata"]["name"], PodTimes(now))
        if (obj.get("spec") or {}).get("nodeName"):
            times.mark("scheduled", now)
        phase = (obj.get("status") or {}).get("phase")
        if phase in ("Running", "Succeeded", "Failed"):
            times.mark("started", now)
        if phase == "Succeeded":
            times.mark("succeeded", now)

    tasks = []
    for url, handler in ((base, on_job), (f"{api.base}/api/v1/namespaces/{namespace}/pods",
                                          on_pod)):
        opened = asyncio.Event()
        tasks.append(asyncio.create_task(watch(api, url, handler, opened)))
        await opened.wait()
    try:
        started = time.perf_counter()
        async with api.session.post(base, json=job_manifest(name, completions,
                                                            parallelism)) as r:
            assert r.status == 201, await r.text()
        await asyncio.wait_for(complete.wait(), TIMEOUT)
        seconds = time.perf_counter() - started
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    async with api.session.delete(f"{api.base}/api/v1/namespaces/{namespace}") as r:
        assert r.status in (200, 202), await r.text()
    origin = started
    for pod_name, times in pods.items():
        for stage, at in engine.of(pod_name).items():
            times.mark(stage, at - origin)
    return Run(seconds, sorted(pods.values(), key=lambda p: p.created))


def refill_delays(run: Run, parallelism: int) -> list[float]:
    """For each pod after the first `parallelism`: its create after the success freeing its slot."""
    successes = sorted(p.at["succeeded"] for p in run.pods if "succeeded" in p.at)
    return [pod.created - freed for pod, freed in zip(run.pods[parallelism:], successes,
                                                      strict=False)]


def between(pods: list[PodTimes], start: str | None, end: str) -> list[float]:
    """Each pod's time from stage `start` (None: its create) to stage `end`, where seen."""
    return [p.at[end] - (p.created if start is None else p.at[start]) for p in pods
            if end in p.at and (start is None or start in p.at)]


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.0f}" if values else "      -"


def report(completions: int, parallelism: int, pairs: list[tuple[Run, Run]],
           loads: list[str]) -> None:
    print(f"jobs: a Job of {completions} completions, parallelism {parallelism}, of "
          f"busybox `true` to Complete vs the same pods through Docker {parallelism} at a "
          f"time; load average {loads[0]} at the start, {loads[-1]} at the end")
    print(f"{'case':<20} {'floor':>8} {'minik':>8} {'ratio':>7} {'spread':>12}   goal")
    ratios = [m.seconds / f.seconds for f, m in pairs]
    for index, (f, m) in enumerate(pairs, start=1):
        print(f"{f'run {index}':<20} {f.seconds:>7.2f}s {m.seconds:>7.2f}s "
              f"{m.seconds / f.seconds:>6.2f}x")
    print(f"{f'median of {len(pairs)}':<20} {statistics.median(f.seconds for f, _ in pairs):>7.2f}s"
          f" {statistics.median(m.seconds for _, m in pairs):>7.2f}s "
          f"{statistics.median(ratios):>6.2f}x {spread(ratios):>12}   <= {GOAL}x")
    pods = [p for _, m in pairs for p in m.pods]
    print("a minik pod's path, median ms (all runs):")
    for title, values in (
            ("create -> scheduled", between(pods, None, "scheduled")),
            ("scheduled -> pause created (engine)", between(pods, "scheduled",
                                                            "sandbox_create")),
            ("pause created -> app started (engine)", between(pods, "sandbox_create",
                                                              "app_start")),
            ("app started -> app exited (engine)", between(pods, "app_start", "app_die")),
            ("app exited -> Succeeded seen", between(pods, "app_die", "succeeded")),
            ("create -> Succeeded seen", between(pods, None, "succeeded")),
            ("a success -> the next pod created",
             [d for _, m in pairs for d in refill_delays(m, parallelism)])):
        print(f"  {title:<38} {ms(values)}")


async def run(completions: int, parallelism: int, runs: int) -> None:
    loads = [load()]
    pairs: list[tuple[Run, Run]] = []
    progress(f"starting minik (load average {loads[0]})")
    name = ""
    try:
        async with bench_instance() as instance, \
                FloorNetwork(f"{instance.name}-raw") as network:
            name = instance.name
            engine = EngineEvents(name, ("create", "start", "die"))
            progress("warming up: 10 completions each way, not counted")
            await floor(network, "warm", 10, parallelism)
            await minik_job(instance.api, engine, "warm", 10, parallelism)
            for index in range(1, runs + 1):
                floor_run = await floor(network, f"r{index}", completions, parallelism)
                minik_run = await minik_job(instance.api, engine, f"r{index}", completions,
                                            parallelism)
                pairs.append((floor_run, minik_run))
                loads.append(load())
                progress(f"  run {index}/{runs}: floor {floor_run.seconds:.2f}s minik "
                         f"{minik_run.seconds:.2f}s "
                         f"({minik_run.seconds / floor_run.seconds:.2f}x; load {loads[-1]})")
            engine.close()
    finally:
        if name:
            sweep(name)
    report(completions, parallelism, pairs, loads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--completions", type=int, default=50)
    parser.add_argument("--parallelism", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.completions, args.parallelism, args.runs))


if __name__ == "__main__":
    main()
