"""Pod status from what the runtime holds: phase, conditions, container statuses.

A pure function of the pod, its runtime state, the reasons containers are
waiting (backoff, image pull, config errors) and probe results, mirroring
the kubelet's status generation, so it is tested without Docker.
Transition times of conditions that did not change are kept from the pod's
current status, so an unchanged pod yields an identical status and nothing
is written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent import labels
from agent.containers import pod_ip
from agent.plan import phase_is_terminal, should_restart
from agent.podstate import PodRuntimeState, ended, start_failed
from agent.runtime import ContainerInfo
from minik.api.defaults import qos_class
from minik.api.meta import format_time

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


def _terminated_reason(info: ContainerInfo, spec: dict[str, Any]) -> str:
    if start_failed(info):
        return START_ERROR
    limited = bool(spec.get("resources", {}).get("limits", {}).get("memory"))
    if info.oom_killed or (info.exit_code == OOM_EXIT_CODE and limited):
        return "OOMKilled"
    return "Completed" if info.exit_code == 0 else "Error"


def terminated(info: ContainerInfo, spec: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = {
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
    info: ContainerInfo | None, spec: dict[str, Any], waiting: tuple[str, str] | None,
    default_waiting: str,
) -> dict[str, Any]:
    if info is not None and info.state in ("running", "restarting", "paused") and not waiting:
        return {"running": {"startedAt": _time(info.started_at)}}
    if info is not None and ended(info) and not waiting:
        return {"terminated": terminated(info, spec)}
    reason, message = waiting or (default_waiting, "")
    body = {"reason": reason}
    if message:
        body["message"] = message
    return {"waiting": body}


def container_status(
    spec: dict[str, Any], state: PodRuntimeState, waiting: Waiting, probes: ProbeView,
    *, default_waiting: str = "ContainerCreating",
) -> dict[str, Any]:
    name = spec["name"]
    latest = state.latest(name)
    why = waiting.get(name)
    status: dict[str, Any] = {
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


def _counts(statuses: list[dict[str, Any]], policy: str) -> dict[str, int]:
    counts = {"running": 0, "waiting": 0, "stopped": 0, "succeeded": 0, "failed": 0}
    for s in statuses:
        state = s["state"]
        if "running" in state:
            counts["running"] += 1
        elif "terminated" in state:
            counts["stopped"] += 1
            code = state["terminated"]["exitCode"]
            counts["succeeded" if code == 0 else "failed"] += 1
        elif s["lastState"].get("terminated") and should_restart(
            policy, s["lastState"]["terminated"]["exitCode"]
        ):
            counts["stopped"] += 1
        else:
            counts["waiting"] += 1
    return counts


def pod_phase(
    pod: dict[str, Any], init_done: bool, init_failed: bool, statuses: list[dict[str, Any]]
) -> str:
    policy = pod.get("spec", {}).get("restartPolicy", "Always")
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
    kind: str, ok: bool, previous: Mapping[str, dict[str, Any]], now: str, reason: str = ""
) -> dict[str, Any]:
    status = "True" if ok else "False"
    old = previous.get(kind)
    since = old["lastTransitionTime"] if old and old.get("status") == status else now
    condition: dict[str, Any] = {"type": kind, "status": status, "lastProbeTime": None,
                                 "lastTransitionTime": since}
    if reason and not ok:
        condition["reason"] = reason
    return condition


def _init_done(pod: dict[str, Any], statuses: list[dict[str, Any]]) -> tuple[bool, bool]:
    done = all(s["state"].get("terminated", {}).get("exitCode") == 0 for s in statuses)
    policy = pod.get("spec", {}).get("restartPolicy", "Always")
    failed = policy == "Never" and any(
        s["state"].get("terminated", {}).get("exitCode", 0) != 0 for s in statuses
    )
    return done, failed


def pod_status(
    pod: dict[str, Any], state: PodRuntimeState, *, waiting: Waiting, probes: ProbeView,
    host_ip: str, now: dt.datetime,
) -> dict[str, Any]:
    """The status the agent reports for a pod bound to its node.

    A terminal phase is final: a status that would change it (its containers
    are gone, say) is not reported, and the pod keeps the status it has.
    """
    spec = pod.get("spec", {})
    current = pod.get("status") or {}
    stamp = format_time(now)
    inits = [container_status(c, state, waiting, probes, default_waiting="PodInitializing")
             for c in spec.get("initContainers", []) or []]
    for s in inits:
        s["ready"] = s["state"].get("terminated", {}).get("exitCode") == 0
    init_done, init_failed = _init_done(pod, inits)
    default = "ContainerCreating" if init_done else "PodInitializing"
    apps = [container_status(c, state, waiting, probes, default_waiting=default)
            for c in spec.get("containers", [])]
    ready = bool(apps) and all(s["ready"] for s in apps)
    previous = {c["type"]: c for c in current.get("conditions", []) or []}
    sandbox = state.sandbox
    ip = pod_ip(pod, sandbox, host_ip)
    status: dict[str, Any] = {
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
        "qosClass": qos_class(spec),
    }
    if inits:
        status["initContainerStatuses"] = inits
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    if phase_is_terminal(pod) and status["phase"] != current["phase"]:
        return current
    return status
