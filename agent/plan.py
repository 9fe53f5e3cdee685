"""Plan what must change for a pod: a pure function, like the kubelet's computePodActions.

Given the pod, what the runtime holds for it, the backoff book and the
containers whose liveness probe failed, `compute_pod_actions` says whether
the sandbox must be (re)created, which init container runs next, which app
containers start or are killed, which wait in backoff, and which old
attempts can go (one created but never started, as an agent killed between
its create and its start leaves it, is replaced by the next attempt and
removed, as by the kubelet's container GC), and which ephemeral containers
(`kubectl debug`) start: once each, never restarted. A pod whose phase is
already Succeeded or Failed is done for good: whatever still runs is stopped
and nothing starts, even when its containers are gone (after `minik down`/`up`
or a `docker rm`). The sync has the plan carried out (`agent.execute`) and
plans again; the plan itself never touches the runtime, so it is tested
without one.

A container that could not be started counts as a crash: one the engine
created but could not start has ended (`agent.podstate.ended`), and one
the engine would not even create is remembered by the worker (its
`failed_creates`, when it failed). Either way the first retry is at once
and later ones wait out the same back-off as a crash.

The back-off is the kubelet's (`container_backoff`): 10 s doubling to
300 s per container, counted from when the last attempt ended; a container
that ran `RESET_AFTER` (10 min) before exiting starts over, and one not
retried for 2 * 300 s + 10 min is forgotten. Image pulls back off the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from agent import labels
from agent.podspec import (
    app_containers,
    ephemeral_containers,
    init_containers,
    pod_ref,
    restart_policy,
)
from agent.podstate import PodRuntimeState, ended
from agent.runtime import ContainerInfo
from minik.api.meta import is_pod_terminal, uid_of
from minik.api.objects import Container, Pod
from minik.machinery.backoff import Backoff
from minik.machinery.clock import Clock

KEEP_ATTEMPTS = 2
BACKOFF_BASE = 10.0
BACKOFF_CAP = 300.0
RESET_AFTER = 600.0
NEVER = dt.datetime.fromtimestamp(0, dt.UTC)


def container_backoff(clock: Clock, *, base: float = BACKOFF_BASE,
                      cap: float = BACKOFF_CAP) -> Backoff:
    """The kubelet's per-container (and per-image) back-off."""
    return Backoff(base=base, cap=cap, expire_after=2 * cap + RESET_AFTER, clock=clock)


@dataclass(frozen=True, slots=True)
class Start:
    """Start container `name`; `retry` when an earlier attempt failed (it counts for back-off)."""

    name: str
    restart_count: int
    init: bool = False
    retry: bool = False
    ephemeral: bool = False
    pid_target: str | None = None
    """An ephemeral container's: the id of the running container whose processes it sees."""


@dataclass(frozen=True, slots=True)
class Kill:
    container_id: str
    name: str
    reason: str
    message: str


@dataclass(slots=True)
class PodActions:
    create_sandbox: bool = False
    sandbox_attempt: int = 0
    kill_all: bool = False
    start: list[Start] = field(default_factory=list)
    kill: list[Kill] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)
    failed: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.create_sandbox or self.kill_all or self.start or self.kill or self.remove)


def backoff_key(uid: str, name: str) -> str:
    return f"{uid}/{name}"


def should_restart(policy: str, exit_code: int | None) -> bool:
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False


def _finished(info: ContainerInfo) -> bool:
    return info.state in ("exited", "dead", "created")


def _never_ran(info: ContainerInfo) -> bool:
    """Created but neither started nor refused a start: what an agent killed between its
    create and its start leaves. The next attempt replaces it, as the kubelet starts a
    Created container anew, and it is no history worth keeping."""
    return info.state == "created" and not ended(info)


def failed_since(latest: ContainerInfo | None,
                 failed_create: dt.datetime | None = None) -> dt.datetime:
    """When the last attempt of a container ended: the back-off counts from there."""
    moment = (latest.finished_at or latest.created_at) if latest is not None else None
    return max(moment or NEVER, failed_create or NEVER)


def _next_count(latest: ContainerInfo | None) -> int:
    return 0 if latest is None else labels.restart_count(latest.labels) + 1


def _after(info: ContainerInfo, sandbox: ContainerInfo | None) -> bool:
    if sandbox is None or sandbox.created_at is None or info.created_at is None:
        return True
    return info.created_at >= sandbox.created_at


def pod_is_done(pod: Pod, state: PodRuntimeState) -> bool:
    """Every app container ran and will not run again: the pod needs no sandbox."""
    containers = app_containers(pod)
    policy = restart_policy(pod)
    for c in containers:
        latest = state.latest(c["name"])
        if latest is None or not ended(latest):
            return False
        if should_restart(policy, latest.exit_code):
            return False
    return bool(containers)


def _retry(
    actions: PodActions, pod: Pod, name: str, latest: ContainerInfo | None,
    backoff: Backoff, *, init: bool, failed_create: dt.datetime | None,
) -> None:
    if not _backing_off(actions, pod, name, failed_since(latest, failed_create), backoff):
        actions.start.append(Start(name, _next_count(latest), init=init, retry=True))


def _backing_off(actions: PodActions, pod: Pod, name: str, since: dt.datetime,
                 backoff: Backoff) -> bool:
    """True (and the container waiting in CrashLoopBackOff) while its back-off lasts."""
    if backoff.remaining(backoff_key(uid_of(pod), name), since) <= 0:
        return False
    actions.waiting[name] = (
        "CrashLoopBackOff",
        f"back-off {backoff_delay(backoff, pod, name)} restarting failed container={name} "
        f"pod={pod_ref(pod)}",
    )
    return True


def backoff_delay(backoff: Backoff, pod: Pod, name: str) -> str:
    return f"{int(backoff.delay(backoff_key(uid_of(pod), name)))}s"


def _plan_init(
    actions: PodActions, pod: Pod, state: PodRuntimeState, backoff: Backoff,
    failed_creates: Mapping[str, dt.datetime],
) -> bool:
    """Plan the next init container; True when all have succeeded."""
    for c in init_containers(pod):
        latest = state.latest(c["name"])
        failed_create = failed_creates.get(c["name"])
        if latest is not None and not _after(latest, state.sandbox):
            latest = None
        if latest is None:
            if failed_create is None:
                actions.start.append(Start(c["name"], 0, init=True))
            else:
                _retry(actions, pod, c["name"], None, backoff, init=True,
                       failed_create=failed_create)
            return False
        if latest.state in ("running", "restarting", "paused"):
            return False
        if latest.state != "created" and latest.exit_code == 0:
            continue
        if restart_policy(pod) == "Never" and ended(latest):
            actions.failed = f"init container {c['name']} failed"
            return False
        _retry(actions, pod, c["name"], latest, backoff, init=True,
               failed_create=failed_create)
        return False
    return True


def _plan_container(
    actions: PodActions, pod: Pod, c: Container, state: PodRuntimeState,
    backoff: Backoff, liveness_failed: Collection[str], failed_create: dt.datetime | None,
) -> None:
    name = c["name"]
    latest = state.latest(name)
    if latest is None:
        if failed_create is None:
            actions.start.append(Start(name, 0))
        else:
            _retry(actions, pod, name, None, backoff, init=False, failed_create=failed_create)
        return
    if latest.state in ("running", "restarting", "paused"):
        if latest.labels.get(labels.CONTAINER_HASH) != labels.hash_container(c):
            actions.kill.append(Kill(latest.id, name, "Killing",
                                     f"Container {name} definition changed, will be restarted"))
        elif name in liveness_failed:
            actions.kill.append(Kill(latest.id, name, "Killing",
                                     f"Container {name} failed liveness probe, will be restarted"))
        return
    if _never_ran(latest) or should_restart(restart_policy(pod), latest.exit_code):
        _retry(actions, pod, name, latest, backoff, init=False, failed_create=failed_create)


def _plan_ephemeral(actions: PodActions, pod: Pod, state: PodRuntimeState, backoff: Backoff,
                    failed_creates: Mapping[str, dt.datetime]) -> None:
    """Each ephemeral container starts once, even before the init containers are done, and
    is never restarted (one the engine would not create is tried again after a back-off);
    one with a `targetContainerName` waits for its target to run."""
    for c in ephemeral_containers(pod):
        name = c["name"]
        if state.latest(name) is not None:
            continue
        pid_target = None
        if target := str(c.get("targetContainerName") or ""):
            running = state.latest(target)
            if running is None or running.state != "running":
                actions.waiting[name] = ("ContainerCreating",
                                         f"waiting for target container {target} to run")
                continue
            pid_target = running.id
        failed = failed_creates.get(name)
        if failed is None or not _backing_off(actions, pod, name, failed, backoff):
            actions.start.append(Start(name, 0, retry=failed is not None, ephemeral=True,
                                       pid_target=pid_target))


def _old_attempts(state: PodRuntimeState) -> list[str]:
    old = [s.id for s in state.sandboxes[1:] if _finished(s)]
    for attempts in state.containers.values():
        finished = [a for a in attempts if _finished(a) and not _never_ran(a)]
        keep = {a.id for a in attempts[:1]} | {a.id for a in finished[:KEEP_ATTEMPTS]}
        old += [a.id for a in attempts if a.id not in keep and _finished(a)]
    return old


def compute_pod_actions(
    pod: Pod, state: PodRuntimeState, *, backoff: Backoff,
    liveness_failed: Collection[str] = (),
    failed_creates: Mapping[str, dt.datetime] | None = None,
) -> PodActions:
    """What must change for the pod; `failed_creates`: when the engine last refused to
    create each container (by name)."""
    failed_creates = failed_creates or {}
    actions = PodActions(remove=_old_attempts(state))
    if is_pod_terminal(pod):
        actions.kill_all = bool(state.running())
        return actions
    sandbox = state.sandbox
    if sandbox is None or sandbox.state != "running":
        if pod_is_done(pod, state):
            return actions
        actions.create_sandbox = True
        actions.kill_all = bool(state.running())
        actions.sandbox_attempt = 0 if sandbox is None else labels.attempt(sandbox.labels) + 1
        return actions
    _plan_ephemeral(actions, pod, state, backoff, failed_creates)
    if not _plan_init(actions, pod, state, backoff, failed_creates):
        return actions
    for c in app_containers(pod):
        _plan_container(actions, pod, c, state, backoff, liveness_failed,
                        failed_creates.get(c["name"]))
    return actions
