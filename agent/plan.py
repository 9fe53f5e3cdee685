"""Plan what must change for a pod: a pure function, like the kubelet's computePodActions.

Given the pod, what the runtime holds for it, the backoff book and the
containers whose liveness probe failed, `compute_pod_actions` says whether
the sandbox must be (re)created, which init container runs next, which app
containers start or are killed, which wait in backoff, and which old
attempts can go. A pod whose phase is already Succeeded or Failed is done
for good: whatever still runs is stopped and nothing starts, even when its
containers are gone (after `minik down`/`up` or a `docker rm`). The worker
carries the plan out and plans again; the plan itself never touches the
runtime, so it is tested without one.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from agent import labels
from agent.backoff import Backoff
from agent.podstate import PodRuntimeState
from agent.runtime import ContainerInfo

KEEP_ATTEMPTS = 2
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True, slots=True)
class Start:
    name: str
    restart_count: int
    init: bool = False


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


def _since(info: ContainerInfo) -> float:
    moment = info.finished_at or info.created_at
    return moment.timestamp() if moment else 0.0


def _next_count(latest: ContainerInfo | None) -> int:
    return 0 if latest is None else labels.restart_count(latest.labels) + 1


def _policy(pod: dict[str, Any]) -> str:
    return pod.get("spec", {}).get("restartPolicy", "Always")


def _after(info: ContainerInfo, sandbox: ContainerInfo | None) -> bool:
    if sandbox is None or sandbox.created_at is None or info.created_at is None:
        return True
    return info.created_at >= sandbox.created_at


def phase_is_terminal(pod: dict[str, Any]) -> bool:
    """The pod's recorded phase is Succeeded or Failed: it never runs again."""
    return (pod.get("status") or {}).get("phase") in TERMINAL_PHASES


def pod_is_done(pod: dict[str, Any], state: PodRuntimeState) -> bool:
    """Every app container ran and will not run again: the pod needs no sandbox."""
    containers = pod.get("spec", {}).get("containers", [])
    policy = _policy(pod)
    for c in containers:
        latest = state.latest(c["name"])
        if latest is None or not _finished(latest) or latest.state == "created":
            return False
        if should_restart(policy, latest.exit_code):
            return False
    return bool(containers)


def _retry(
    actions: PodActions, pod: dict[str, Any], name: str, latest: ContainerInfo,
    backoff: Backoff, *, init: bool,
) -> None:
    wait = backoff.remaining(backoff_key(pod["metadata"]["uid"], name), _since(latest))
    if wait > 0:
        actions.waiting[name] = (
            "CrashLoopBackOff",
            f"back-off {backoff_delay(backoff, pod, name)} restarting failed container={name} "
            f"pod={pod['metadata']['name']}_{pod['metadata'].get('namespace', 'default')}"
            f"({pod['metadata']['uid']})",
        )
        return
    actions.start.append(Start(name, _next_count(latest), init=init))


def backoff_delay(backoff: Backoff, pod: dict[str, Any], name: str) -> str:
    return f"{int(backoff.delay(backoff_key(pod['metadata']['uid'], name)))}s"


def _plan_init(
    actions: PodActions, pod: dict[str, Any], state: PodRuntimeState, backoff: Backoff
) -> bool:
    """Plan the next init container; True when all have succeeded."""
    for c in pod.get("spec", {}).get("initContainers", []) or []:
        latest = state.latest(c["name"])
        if latest is not None and not _after(latest, state.sandbox):
            latest = None
        if latest is None:
            actions.start.append(Start(c["name"], 0, init=True))
            return False
        if latest.state in ("running", "restarting", "paused"):
            return False
        if latest.state != "created" and latest.exit_code == 0:
            continue
        if _policy(pod) == "Never":
            actions.failed = f"init container {c['name']} failed"
            return False
        _retry(actions, pod, c["name"], latest, backoff, init=True)
        return False
    return True


def _plan_container(
    actions: PodActions, pod: dict[str, Any], c: dict[str, Any], state: PodRuntimeState,
    backoff: Backoff, liveness_failed: Collection[str],
) -> None:
    name = c["name"]
    latest = state.latest(name)
    if latest is None:
        actions.start.append(Start(name, 0))
        return
    if latest.state in ("running", "restarting", "paused"):
        if latest.labels.get(labels.CONTAINER_HASH) != labels.hash_container(c):
            actions.kill.append(Kill(latest.id, name, "Killing",
                                     f"Container {name} definition changed, will be restarted"))
        elif name in liveness_failed:
            actions.kill.append(Kill(latest.id, name, "Killing",
                                     f"Container {name} failed liveness probe, will be restarted"))
        return
    if should_restart(_policy(pod), latest.exit_code) or latest.state == "created":
        _retry(actions, pod, name, latest, backoff, init=False)


def _old_attempts(state: PodRuntimeState) -> list[str]:
    old = [s.id for s in state.sandboxes[1:] if _finished(s)]
    for attempts in state.containers.values():
        finished = [a for a in attempts if _finished(a)]
        keep = {a.id for a in attempts[:1]} | {a.id for a in finished[:KEEP_ATTEMPTS]}
        old += [a.id for a in attempts if a.id not in keep and _finished(a)]
    return old


def compute_pod_actions(
    pod: dict[str, Any], state: PodRuntimeState, *, backoff: Backoff,
    liveness_failed: Collection[str] = (),
) -> PodActions:
    actions = PodActions(remove=_old_attempts(state))
    if phase_is_terminal(pod):
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
    if not _plan_init(actions, pod, state, backoff):
        return actions
    for c in pod.get("spec", {}).get("containers", []):
        _plan_container(actions, pod, c, state, backoff, liveness_failed)
    return actions
