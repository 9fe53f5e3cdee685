"""Pods: `printPod`'s Ready, Status (the reason kubectl shows), Restarts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from minik.api.meta import parse_time
from minik.api.printers.base import AGE, NAME, age_cell, col, name_cell, printer
from minik.api.printers.formatting import condition, condition_true, field, since


@dataclass
class _Tally:
    """Readiness and restarts of a pod's containers, as `printPod` accumulates them."""

    ready: int = 0
    restarts: int = 0
    last_restart: datetime | None = None
    sidecar_restarts: int = 0
    sidecar_last_restart: datetime | None = None

    def count(self, status: dict[str, Any], *, sidecar: bool = False) -> None:
        restarts = int(status.get("restartCount") or 0)
        finished = parse_time(field(status, "lastState.terminated.finishedAt"))
        self.restarts += restarts
        self.last_restart = _latest(self.last_restart, finished)
        if sidecar:
            self.sidecar_restarts += restarts
            self.sidecar_last_restart = _latest(self.sidecar_last_restart, finished)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((t for t in (a, b) if t is not None), default=None)


def _terminated_reason(terminated: dict[str, Any]) -> str:
    if terminated.get("reason"):
        return str(terminated["reason"])
    if terminated.get("signal"):
        return f"Signal:{terminated['signal']}"
    return f"ExitCode:{terminated.get('exitCode', 0)}"


def _init_reason(pod: dict[str, Any], sidecars: set[str], tally: _Tally) -> str | None:
    """The `Init:...` status while init containers run, else None."""
    count = len(field(pod, "spec.initContainers", []))
    for i, status in enumerate(field(pod, "status.initContainerStatuses", [])):
        sidecar = status.get("name") in sidecars
        tally.count(status, sidecar=sidecar)
        terminated = field(status, "state.terminated")
        waiting_reason = field(status, "state.waiting.reason", "")
        if terminated is not None and not terminated.get("exitCode"):
            continue
        if sidecar and status.get("started"):
            tally.ready += bool(status.get("ready"))
            continue
        if terminated is not None:
            return "Init:" + _terminated_reason(terminated)
        if waiting_reason and waiting_reason != "PodInitializing":
            return f"Init:{waiting_reason}"
        return f"Init:{i}/{count}"
    return None


def _containers_reason(pod: dict[str, Any], reason: str, tally: _Tally) -> str:
    """Waiting/terminated reasons of app containers; the first container's wins."""
    tally.restarts, tally.last_restart = tally.sidecar_restarts, tally.sidecar_last_restart
    has_running = False
    for status in reversed(field(pod, "status.containerStatuses", [])):
        tally.count(status)
        state = status.get("state") or {}
        if field(state, "waiting.reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated") is not None:
            reason = _terminated_reason(state["terminated"])
        elif status.get("ready") and state.get("running") is not None:
            has_running = True
            tally.ready += 1
    if reason == "Completed" and has_running:
        return "Running" if condition_true(pod.get("status"), "Ready") else "NotReady"
    return reason


def _pod_reason(pod: dict[str, Any], tally: _Tally) -> str:
    """The STATUS column of a pod: phase, or the reason that best explains it."""
    status = pod.get("status") or {}
    sidecars = {c.get("name") for c in field(pod, "spec.initContainers", [])
                if c.get("restartPolicy") == "Always"}
    reason = status.get("reason") or status.get("phase") or ""
    if condition(status, "PodScheduled").get("reason") == "SchedulingGated":
        reason = "SchedulingGated"
    init_reason = _init_reason(pod, sidecars, tally)
    if init_reason is None or condition_true(status, "Initialized"):
        reason = _containers_reason(pod, init_reason or reason, tally)
    else:
        reason = init_reason
    if field(pod, "metadata.deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            return "Unknown"
        if status.get("phase") not in ("Succeeded", "Failed"):
            return "Terminating"
    return reason


@printer(
    "Pod", NAME,
    col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    col("Status", "The aggregate status of the containers in this pod."),
    col("Restarts", "The number of times the containers in this pod have been restarted "
        "and when the last container in this pod has restarted."),
    AGE,
    col("IP", "IP address allocated to the pod.", wide=True),
    col("Node", "The node this pod is scheduled onto.", wide=True),
    col("Nominated Node", "The node the scheduler nominated for preemption.", wide=True),
    col("Readiness Gates", "Pod conditions evaluated for readiness.", wide=True),
)
def _pod(pod: dict[str, Any], now: datetime) -> list[Any]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    tally = _Tally()
    reason = _pod_reason(pod, tally)
    sidecars = sum(c.get("restartPolicy") == "Always" for c in spec.get("initContainers") or [])
    restarts = str(tally.restarts)
    if tally.restarts and tally.last_restart:
        restarts += f" ({since(tally.last_restart, now)} ago)"
    ips = status.get("podIPs") or []
    gates = spec.get("readinessGates") or []
    passed = sum(condition_true(status, g.get("conditionType", "")) for g in gates)
    return [
        name_cell(pod), f"{tally.ready}/{len(spec.get('containers') or []) + sidecars}", reason,
        restarts, age_cell(pod, now),
        (ips[0].get("ip") if ips else status.get("podIP")) or "<none>",
        spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>",
        f"{passed}/{len(gates)}" if gates else "<none>",
    ]
