"""Liveness, readiness and startup probes: one named asyncio task per container and kind.

Like the kubelet's prober workers, each loop waits `initialDelaySeconds`
from the container's start, then runs its check every `periodSeconds` and
counts consecutive results; only a run that reaches a threshold becomes
the result. Readiness starts at not-ready, becomes ready after
`successThreshold` successes in a row and unready after `failureThreshold`
failures, and keeps probing. Liveness and startup report a failure after
`failureThreshold` failures and then stop probing that container until it
is replaced; a startup success ends the startup loop and releases the
liveness and readiness loops, which wait for it. A check that could not be
carried out (result `unknown`) counts neither way. Periods and delays are
the agent's `Clock`'s (a container's start is the engine's wall time, so
it is compared with the clock's wall time); a check's own timeout bounds
real I/O and runs on the event loop's time.

State lives here, in memory, per pod UID and container *id*: the pod
worker says which containers run now (`sync`), reads results (`view`,
`liveness_failed`) and is told to look again through `on_change`. A
restarted container has a new id, so it gets new loops and fresh results;
nothing needs resetting by hand.

Every failed probe records an `Unhealthy` Warning on the pod, worded as the
kubelet words it; successes record nothing. `minik_prober_probe_total`
counts results when a `ProbeMetrics` (or a `CollectorRegistry` to create one
on) is given; a pod's series go with `remove`. The node agent creates its
`ProbeMetrics` once and hands it to each `ProbeManager` it builds, since a
registry takes a metric's name only once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from prometheus_client import CollectorRegistry, Counter

from agent.events import EventSink
from agent.probe_checks import CheckResult, Outcome, run_probe_check
from agent.runtime import Runtime
from agent.status import ProbeView
from minik.api.meta import name_of, namespace_of, uid_of
from minik.api.objects import Container, JsonObject, Pod
from minik.machinery.clock import Clock, LoopClock, sleep

log = logging.getLogger(__name__)

Kind = Literal["Startup", "Liveness", "Readiness"]
ProbeField = Literal["startupProbe", "livenessProbe", "readinessProbe"]
FIELDS: dict[Kind, ProbeField] = {
    "Startup": "startupProbe", "Liveness": "livenessProbe", "Readiness": "readinessProbe",
}
METRIC_RESULTS: dict[Outcome, str] = {
    "success": "successful", "failure": "failed", "unknown": "unknown",
}


@dataclass(frozen=True)
class RunningContainer:
    """A container the pod worker knows to be running now."""

    name: str
    container_id: str
    started_at: float
    """When it started, in seconds since the epoch (by the engine's clock)."""


@dataclass(frozen=True)
class ProbeSpec:
    """A probe's handler and timing, with Kubernetes' defaults for absent or zero fields."""

    handler: JsonObject
    initial_delay: float
    period: float
    timeout: float
    success_threshold: int
    failure_threshold: int

    @classmethod
    def parse(cls, probe: JsonObject, kind: Kind) -> ProbeSpec:
        success = int(probe.get("successThreshold") or 1) if kind == "Readiness" else 1
        return cls(
            handler=probe,
            initial_delay=float(probe.get("initialDelaySeconds") or 0),
            period=float(probe.get("periodSeconds") or 10),
            timeout=float(probe.get("timeoutSeconds") or 1),
            success_threshold=max(1, success),
            failure_threshold=max(1, int(probe.get("failureThreshold") or 3)),
        )


@dataclass
class Streak:
    """Consecutive equal results; says when one reaches its threshold."""

    spec: ProbeSpec
    last: Outcome | None = None
    count: int = 0

    def add(self, outcome: Outcome) -> Outcome | None:
        if outcome == "unknown":
            return None
        self.count = self.count + 1 if outcome == self.last else 1
        self.last = outcome
        threshold = (self.spec.success_threshold if outcome == "success"
                     else self.spec.failure_threshold)
        return outcome if self.count >= threshold else None


@dataclass(eq=False)
class ContainerProbes:
    """Probe results of one container instance (one container id)."""

    name: str
    container_id: str
    started_at: float
    spec: Container
    ready: bool | None = None
    started: bool | None = None
    failed: bool = False
    startup_done: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


@dataclass(eq=False)
class PodProbes:
    pod: Pod
    pod_ip: str | None
    containers: dict[str, ContainerProbes] = field(default_factory=dict)

    @property
    def uid(self) -> str:
        return uid_of(self.pod)


class ProbeMetrics:
    """`minik_prober_probe_total`, forgotten per pod when the pod goes."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.total = Counter(
            "minik_prober_probe", "Probe results by probe type and result.",
            ["probe_type", "result", "namespace", "pod", "container"], registry=registry,
        )
        self._series: dict[str, set[tuple[str, ...]]] = {}

    def count(self, pod: Pod, container: str, kind: Kind, outcome: Outcome) -> None:
        labels = (kind, METRIC_RESULTS[outcome], namespace_of(pod) or "", name_of(pod),
                  container)
        self._series.setdefault(uid_of(pod), set()).add(labels)
        self.total.labels(*labels).inc()

    def forget(self, pod_uid: str) -> None:
        for labels in self._series.pop(pod_uid, set()):
            self.total.remove(*labels)


def probed_containers(pod: Pod) -> dict[str, Container]:
    """Containers (and restartable init containers) that declare at least one probe."""
    spec = pod.get("spec") or {}
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    return {c["name"]: c for c in [*sidecars, *(spec.get("containers") or [])]
            if any(c.get(f) for f in FIELDS.values())}


def task_name(pod: Pod, container: ContainerProbes, kind: Kind) -> str:
    return (f"probe:{kind.lower()}:{namespace_of(pod)}/{name_of(pod)}:"
            f"{container.name}:{container.container_id[:12]}")


class ProbeManager:
    """Runs the probes of running containers and keeps their results."""

    def __init__(self, runtime: Runtime, *, on_change: Callable[[str], None],
                 events: EventSink, clock: Clock | None = None,
                 registry: CollectorRegistry | None = None,
                 metrics: ProbeMetrics | None = None) -> None:
        self._runtime = runtime
        self._on_change = on_change
        self._events = events
        self._clock: Clock = clock or LoopClock()
        if metrics is None and registry is not None:
            metrics = ProbeMetrics(registry)
        self._metrics = metrics
        self._pods: dict[str, PodProbes] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def sync(self, pod: Pod, running: list[RunningContainer],
             pod_ip: str | None) -> None:
        """Probe exactly the running containers that declare probes."""
        uid = uid_of(pod)
        entry = self._pods.setdefault(uid, PodProbes(pod, pod_ip))
        entry.pod, entry.pod_ip = pod, pod_ip
        specs = probed_containers(pod)
        now = {r.name: r for r in running if r.name in specs}
        for name, probes in list(entry.containers.items()):
            if name not in now or now[name].container_id != probes.container_id:
                self._stop(entry.containers.pop(name))
        for name, container in now.items():
            if name not in entry.containers:
                entry.containers[name] = self._start(entry, container, specs[name])
        if not entry.containers:
            del self._pods[uid]

    def view(self, pod_uid: str) -> ProbeView:
        entry = self._pods.get(pod_uid)
        containers = entry.containers.values() if entry else ()
        return ProbeView(
            ready={c.name: c.ready for c in containers if c.ready is not None},
            started={c.name: c.started for c in containers if c.started is not None},
        )

    def liveness_failed(self, pod_uid: str) -> set[str]:
        entry = self._pods.get(pod_uid)
        return {c.name for c in entry.containers.values() if c.failed} if entry else set()

    def remove(self, pod_uid: str) -> None:
        entry = self._pods.pop(pod_uid, None)
        for probes in entry.containers.values() if entry else ():
            self._stop(probes)
        if self._metrics is not None:
            self._metrics.forget(pod_uid)

    async def close(self) -> None:
        for uid in list(self._pods):
            self.remove(uid)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _start(self, entry: PodProbes, running: RunningContainer,
               spec: Container) -> ContainerProbes:
        probes = ContainerProbes(running.name, running.container_id, running.started_at, spec)
        if spec.get("readinessProbe"):
            probes.ready = False
        if spec.get("startupProbe"):
            probes.started = False
        else:
            probes.startup_done.set()
        for kind, key in FIELDS.items():
            if spec.get(key):
                self._spawn(entry, probes, kind, ProbeSpec.parse(spec[key], kind))
        return probes

    def _spawn(self, entry: PodProbes, probes: ContainerProbes, kind: Kind,
               spec: ProbeSpec) -> None:
        task = asyncio.get_running_loop().create_task(
            self._loop(entry, probes, kind, spec), name=task_name(entry.pod, probes, kind))
        probes.tasks.append(task)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _stop(self, probes: ContainerProbes) -> None:
        for task in probes.tasks:
            task.cancel()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("probe loop %s crashed", task.get_name(), exc_info=task.exception())

    async def _loop(self, entry: PodProbes, probes: ContainerProbes, kind: Kind,
                    spec: ProbeSpec) -> None:
        if kind != "Startup":
            await probes.startup_done.wait()
        streak = Streak(spec)
        while True:
            delay = probes.started_at + spec.initial_delay - self._clock.wall().timestamp()
            if delay > 0:
                await sleep(self._clock, min(delay, spec.period))
                continue
            result = streak.add(await self._probe(entry, probes, kind, spec))
            if result is not None and not self._apply(entry, probes, kind, result):
                return
            await sleep(self._clock, spec.period)

    async def _probe(self, entry: PodProbes, probes: ContainerProbes, kind: Kind,
                     spec: ProbeSpec) -> Outcome:
        try:
            result = await run_probe_check(
                self._runtime, spec.handler, container=probes.spec,
                container_id=probes.container_id, pod_ip=entry.pod_ip, timeout=spec.timeout)
        except Exception as e:
            log.exception("%s probe of %s crashed", kind, probes.name)
            result = CheckResult("unknown", f"probe crashed: {e}")
        if self._metrics is not None:
            self._metrics.count(entry.pod, probes.name, kind, result.outcome)
        if result.outcome == "failure":
            self._events.record(entry.pod, "Warning", "Unhealthy",
                                f"{kind} probe failed: {result.detail}")
        elif result.outcome == "unknown":
            self._events.record(entry.pod, "Warning", "Unhealthy",
                                f"{kind} probe errored and resulted in unknown state: "
                                f"{result.detail}")
        return result.outcome

    def _apply(self, entry: PodProbes, probes: ContainerProbes, kind: Kind,
               result: Outcome) -> bool:
        """Record a result that reached its threshold; False when the loop is done."""
        if kind == "Readiness":
            ready = result == "success"
            if probes.ready != ready:
                probes.ready = ready
                self._changed(entry.uid)
            return True
        if kind == "Startup" and result == "success":
            probes.started = True
            probes.startup_done.set()
            self._changed(entry.uid)
            return False
        if result == "failure":
            probes.failed = True
            self._changed(entry.uid)
            return False
        return True

    def _changed(self, pod_uid: str) -> None:
        try:
            self._on_change(pod_uid)
        except Exception:
            log.exception("on_change for pod %s failed", pod_uid)
