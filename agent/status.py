"""Pod status from what the runtime holds: phase, conditions, container statuses.

A pure function of the pod, its runtime state, the reasons containers are
waiting (backoff, image pull, config errors) and probe results, mirroring
the kubelet's status generation, so it is tested without Docker.
Transition times of conditions that did not change are kept from the pod's
current status, so an unchanged pod yields an identical status and nothing
is written. Kept as they are, as the kubelet's `updateLastTransitionTime`
keeps them: a condition whose time is null keeps a null time until its
status changes (`minik.api.meta.transition_time` would stamp it now).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from agent import labels
from agent.containers import pod_ip
from agent.plan import should_restart
from agent.podspec import app_containers, ephemeral_containers, init_containers, restart_policy
from agent.podstate import PodRuntimeState, ended, start_failed
from agent.runtime import ContainerInfo
from minik.api.defaults import qos_class
from minik.api.meta import find_condition, format_time, is_pod_terminal
from minik.api.objects import (
    ConditionStatus,
    Container,
    ContainerState,
    ContainerStateTerminated,
    ContainerStateWaiting,
    ContainerStatus,
    Pod,
    PodCondition,
    PodStatus,
)

Waiting = Mapping[str, tuple[str, str]]
OOM_EXIT_CODE = 137
START_ERROR = "StartError"
"""containerd's reason for an attempt whose process could not be started."""


@dataclass(slots=True)
class ProbeView:
    """Probe results the status needs: readiness and startup per container name."""

    ready: dict[str, bool] = field(default_factory=dict)
    started: dict[str, bool] = field(default_factory=dict)


def _time(moment: dt.datetime | None) -> str | None:
    return format_time(moment) if moment else None


def _terminated_reason(info: ContainerInfo, spec: Container) -> str:
    if start_failed(info):
        return START_ERROR
    limited = bool(spec.get("resources", {}).get("limits", {}).get("memory"))
    if info.oom_killed or (info.exit_code == OOM_EXIT_CODE and limited):
        return "OOMKilled"
    return "Completed" if info.exit_code == 0 else "Error"


def terminated(info: ContainerInfo, spec: Container) -> ContainerStateTerminated:
    state: ContainerStateTerminated = {
        "exitCode": info.exit_code if info.exit_code is not None else 0,
        "reason": _terminated_reason(info, spec),
        "startedAt": _time(info.started_at),
        "finishedAt": _time(info.finished_at or info.created_at),
        "containerID": f"docker://{info.id}",
    }
    if info.error:
        state["message"] = info.error
    return state


def _state(
    info: ContainerInfo | None, spec: Container, waiting: tuple[str, str] | None,
    default_waiting: str,
) -> ContainerState:
    if info is not None and info.state in ("running", "restarting", "paused") and not waiting:
        return {"running": {"startedAt": _time(info.started_at)}}
    if info is not None and ended(info) and not waiting:
        return {"terminated": terminated(info, spec)}
    reason, message = waiting or (default_waiting, "")
    body: ContainerStateWaiting = {"reason": reason}
    if message:
        body["message"] = message
    return {"waiting": body}


def container_status(
    spec: Container, state: PodRuntimeState, waiting: Waiting, probes: ProbeView,
    *, default_waiting: str = "ContainerCreating",
) -> ContainerStatus:
    name = spec["name"]
    latest = state.latest(name)
    why = waiting.get(name)
    status: ContainerStatus = {
        "name": name,
        "state": _state(latest, spec, why, default_waiting),
        "lastState": {},
        "ready": False,
        "restartCount": labels.restart_count(latest.labels) if latest else 0,
        "image": spec.get("image", ""),
        "imageID": "",
        "started": False,
    }
    if latest is not None:
        status["imageID"] = latest.image_id
        status["containerID"] = f"docker://{latest.id}"
    previous = latest if latest is not None and why else state.previous(name)
    if previous is not None and ended(previous):
        status["lastState"] = {"terminated": terminated(previous, spec)}
    if "running" in status["state"]:
        status["started"] = probes.started.get(name, True)
        status["ready"] = status["started"] and probes.ready.get(name, True)
    return status


def _counts(statuses: list[ContainerStatus], policy: str) -> dict[str, int]:
    counts = {"running": 0, "waiting": 0, "stopped": 0, "succeeded": 0, "failed": 0}
    for s in statuses:
        state = s["state"]
        last = s["lastState"].get("terminated")
        if "running" in state:
            counts["running"] += 1
        elif "terminated" in state:
            counts["stopped"] += 1
            code = state["terminated"]["exitCode"]
            counts["succeeded" if code == 0 else "failed"] += 1
        elif last and should_restart(policy, last["exitCode"]):
            counts["stopped"] += 1
        else:
            counts["waiting"] += 1
    return counts


def pod_phase(
    pod: Pod, init_done: bool, init_failed: bool, statuses: list[ContainerStatus]
) -> str:
    policy = restart_policy(pod)
    if init_failed:
        return "Failed"
    if not init_done:
        return "Pending"
    c = _counts(statuses, policy)
    if c["waiting"]:
        return "Pending"
    if c["running"]:
        return "Running"
    if c["stopped"]:
        if policy == "Always":
            return "Running"
        if c["stopped"] == c["succeeded"]:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _condition(
    kind: str, ok: bool, previous: list[PodCondition] | None, now: str, reason: str = ""
) -> PodCondition:
    status: ConditionStatus = "True" if ok else "False"
    old = find_condition(previous, kind)
    since = old.get("lastTransitionTime") if old and old.get("status") == status else now
    condition: PodCondition = {"type": kind, "status": status, "lastProbeTime": None,
                               "lastTransitionTime": since}
    if reason and not ok:
        condition["reason"] = reason
    return condition


def _exit_code(status: ContainerStatus) -> int | None:
    """The exit code of a container that terminated; None while it has not."""
    terminated = status["state"].get("terminated")
    return None if terminated is None else terminated["exitCode"]


def _init_done(pod: Pod, statuses: list[ContainerStatus]) -> tuple[bool, bool]:
    done = all(_exit_code(s) == 0 for s in statuses)
    failed = restart_policy(pod) == "Never" and any(_exit_code(s) not in (None, 0)
                                                    for s in statuses)
    return done, failed


def pod_status(
    pod: Pod, state: PodRuntimeState, *, waiting: Waiting, probes: ProbeView,
    host_ip: str, now: dt.datetime,
) -> PodStatus:
    """The status the agent reports for a pod bound to its node.

    A terminal phase is final: a status that would change it (its containers
    are gone, say) is not reported, and the pod keeps the status it has.
    Conditions the agent does not own (`DisruptionTarget`, set by an
    eviction or a taint) are kept, as the kubelet's status manager keeps them.
    """
    current = pod.get("status") or {}
    stamp = format_time(now)
    inits = [container_status(c, state, waiting, probes, default_waiting="PodInitializing")
             for c in init_containers(pod)]
    for s in inits:
        s["ready"] = _exit_code(s) == 0
    init_done, init_failed = _init_done(pod, inits)
    default = "ContainerCreating" if init_done else "PodInitializing"
    apps = [container_status(c, state, waiting, probes, default_waiting=default)
            for c in app_containers(pod)]
    ready = bool(apps) and all(s["ready"] for s in apps)
    previous = current.get("conditions")
    sandbox = state.sandbox
    ip = pod_ip(pod, sandbox, host_ip)
    status: PodStatus = {
        "phase": pod_phase(pod, init_done, init_failed, apps),
        "conditions": [
            _condition("PodReadyToStartContainers", ip is not None,
                       previous, stamp),
            _condition("Initialized", init_done, previous, stamp, "ContainersNotInitialized"),
            _condition("Ready", ready, previous, stamp, "ContainersNotReady"),
            _condition("ContainersReady", ready, previous, stamp, "ContainersNotReady"),
            _condition("PodScheduled", True, previous, stamp),
        ],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": current.get("startTime") or stamp,
        "containerStatuses": apps,
        "qosClass": qos_class(pod.get("spec", {})),
    }
    owned = {c["type"] for c in status["conditions"]}
    status["conditions"] += [c for c in previous or [] if c["type"] not in owned]
    if inits:
        status["initContainerStatuses"] = inits
    if ephemeral := [container_status(c, state, waiting, probes)
                     for c in ephemeral_containers(pod)]:
        for s in ephemeral:
            s["ready"] = False
        status["ephemeralContainerStatuses"] = ephemeral
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    if is_pod_terminal(pod) and status["phase"] != current["phase"]:
        return current
    return status


def final_phase(status: PodStatus) -> str:
    """The phase of a deleted pod whose containers have stopped: Succeeded when every
    container exited 0, else Failed (the kubelet's terminal phase for deleted pods)."""
    if status.get("phase") in ("Succeeded", "Failed"):
        return status["phase"]
    codes: list[int | None] = []
    for container in status.get("containerStatuses") or []:
        terminated = container.get("state", {}).get("terminated")
        codes.append(None if terminated is None else terminated.get("exitCode"))
    return "Succeeded" if codes and all(c == 0 for c in codes) else "Failed"
