"""What the runtime holds for one pod: its sandbox and each container's attempts.

Built from a label-filtered container list alone, so a restarted agent sees
exactly what the previous one left: the newest sandbox, and per container
name its attempts newest first (the restart count is a label).

An attempt has ended when its process exited, or when it never ran: the
engine created the container but could not start it (a missing binary,
say). Docker leaves such a container "created" with its error and exit
code; like containerd's `StartError`, it counts as a terminated attempt.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from agent import labels
from agent.runtime import ContainerInfo


def start_failed(info: ContainerInfo) -> bool:
    """The engine created the container but could not start its process."""
    return info.state == "created" and bool(info.error)


def ended(info: ContainerInfo) -> bool:
    """The attempt is over: its process exited, or it could never start."""
    return info.state in ("exited", "dead") or start_failed(info)


StateFingerprint = tuple[tuple[str, str, int], ...]
"""(id, state, exit code) of each container of a pod, sorted: equal while nothing the agent
acts on changed."""


@dataclass(slots=True)
class PodRuntimeState:
    """Sandboxes (newest first) and containers by name (newest attempt first)."""

    uid: str
    sandboxes: list[ContainerInfo] = field(default_factory=list)
    containers: dict[str, list[ContainerInfo]] = field(default_factory=dict)

    @property
    def sandbox(self) -> ContainerInfo | None:
        return self.sandboxes[0] if self.sandboxes else None

    def latest(self, name: str) -> ContainerInfo | None:
        attempts = self.containers.get(name)
        return attempts[0] if attempts else None

    def previous(self, name: str) -> ContainerInfo | None:
        """The newest terminated attempt before the current one, for `lastState` and logs."""
        for info in self.containers.get(name, [])[1:]:
            if ended(info):
                return info
        return None

    def all(self) -> list[ContainerInfo]:
        return [*self.sandboxes, *(c for attempts in self.containers.values() for c in attempts)]

    def running(self) -> list[ContainerInfo]:
        return [c for c in self.all() if c.state in ("running", "restarting", "paused")]

    def fingerprint(self) -> StateFingerprint:
        """Changes whenever anything the agent acts on changes."""
        return tuple(sorted((c.id, c.state, c.exit_code or 0) for c in self.all()))


def _attempt_key(info: ContainerInfo) -> tuple[int, float]:
    created = info.created_at.timestamp() if info.created_at else 0.0
    return labels.attempt(info.labels), created


def group_by_pod(infos: Iterable[ContainerInfo]) -> dict[str, PodRuntimeState]:
    pods: dict[str, PodRuntimeState] = {}
    for info in infos:
        uid = info.labels.get(labels.POD_UID)
        if not uid:
            continue
        state = pods.setdefault(uid, PodRuntimeState(uid))
        if labels.is_sandbox(info.labels):
            state.sandboxes.append(info)
        else:
            name = info.labels.get(labels.CONTAINER_NAME, "")
            state.containers.setdefault(name, []).append(info)
    for state in pods.values():
        state.sandboxes.sort(key=_attempt_key, reverse=True)
        for attempts in state.containers.values():
            attempts.sort(key=_attempt_key, reverse=True)
    return pods
