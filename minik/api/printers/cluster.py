"""Cluster objects: Namespace, ServiceAccount, Lease, Node, Event, PodDisruptionBudget."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from minik.api.printers.base import AGE, NAME, age_cell, col, name_cell, printer
from minik.api.printers.formatting import condition, field, since


@printer("Namespace", NAME, col("Status", "The status of the namespace"), AGE)
def _namespace(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [name_cell(obj), field(obj, "status.phase", "Active"), age_cell(obj, now)]


@printer("ServiceAccount", NAME, col("Secrets", "Number of secrets of this account."), AGE)
def _service_account(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [name_cell(obj), len(obj.get("secrets") or []), age_cell(obj, now)]


@printer("Lease", NAME, col("Holder", "The identity of the holder of the lease."), AGE)
def _lease(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [name_cell(obj), field(obj, "spec.holderIdentity", ""), age_cell(obj, now)]


def _node_status(node: dict[str, Any]) -> str:
    ready = condition(node.get("status"), "Ready")
    states = [("Ready" if ready.get("status") == "True" else "NotReady") if ready else "Unknown"]
    if field(node, "spec.unschedulable"):
        states.append("SchedulingDisabled")
    return ",".join(states)


def _node_roles(node: dict[str, Any]) -> str:
    roles = set()
    for key, value in field(node, "metadata.labels", {}).items():
        if key.startswith("node-role.kubernetes.io/") and key != "node-role.kubernetes.io/":
            roles.add(key.removeprefix("node-role.kubernetes.io/"))
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) or "<none>"


def _node_address(node: dict[str, Any], kind: str) -> str:
    addresses = field(node, "status.addresses", [])
    return next((a.get("address", "") for a in addresses if a.get("type") == kind), "<none>")


@printer(
    "Node", NAME, col("Status", "The status of the node"),
    col("Roles", "The roles of the node"), AGE, col("Version", "Kubelet Version."),
    col("Internal-IP", "The node's internal IP address.", wide=True),
    col("External-IP", "The node's external IP address.", wide=True),
    col("OS-Image", "OS Image reported by the node.", wide=True),
    col("Kernel-Version", "Kernel Version reported by the node.", wide=True),
    col("Container-Runtime", "Container runtime version reported by the node.", wide=True),
)
def _node(node: dict[str, Any], now: datetime) -> list[Any]:
    info = field(node, "status.nodeInfo", {})
    return [name_cell(node), _node_status(node), _node_roles(node), age_cell(node, now),
            info.get("kubeletVersion", ""), _node_address(node, "InternalIP"),
            _node_address(node, "ExternalIP"),
            *(info.get(k) or "<unknown>"
              for k in ("osImage", "kernelVersion", "containerRuntimeVersion"))]


@printer(
    "Event", col("Last Seen", "When the event was last observed."),
    col("Type", "Type of this event (Normal, Warning)."),
    col("Reason", "Why the action was taken."), col("Object", "The object this event is about."),
    col("Subobject", "The part of the object this event is about.", wide=True),
    col("Source", "The component reporting this event.", wide=True),
    col("Message", "A human-readable description of the event."),
    col("First Seen", "When the event was first observed.", wide=True),
    col("Count", "The number of times this event has occurred.", wide=True),
    col("Name", "Name must be unique within a namespace.", wide=True),
)
def _event(event: dict[str, Any], now: datetime) -> list[Any]:
    first = event.get("firstTimestamp") or event.get("eventTime")
    last, count = event.get("lastTimestamp") or first, event.get("count") or 1
    if event.get("series"):
        last, count = field(event, "series.lastObservedTime"), field(event, "series.count", 1)
    involved = event.get("involvedObject") or {}
    target = involved.get("kind", "").lower()
    if involved.get("name"):
        target += f"/{involved['name']}"
    source = field(event, "source.component") or event.get("reportingController", "")
    host = field(event, "source.host") or event.get("reportingInstance", "")
    return [since(last, now), event.get("type", ""), event.get("reason", ""), target,
            involved.get("fieldPath", ""), f"{source}, {host}" if host else source,
            (event.get("message") or "").strip(), since(first, now), count, name_cell(event)]


def _budget_cell(value: int | str | None) -> str:
    return "N/A" if value is None else str(value)


@printer(
    "PodDisruptionBudget", NAME,
    col("Min Available", "The minimum number of pods that must be available."),
    col("Max Unavailable", "The maximum number of pods that may be unavailable."),
    col("Allowed Disruptions", "Calculated number of pods that may be disrupted at this time.",
        type="integer"),
    AGE,
)
def _pod_disruption_budget(pdb: dict[str, Any], now: datetime) -> list[Any]:
    spec = pdb.get("spec") or {}
    return [name_cell(pdb), _budget_cell(spec.get("minAvailable")),
            _budget_cell(spec.get("maxUnavailable")),
            field(pdb, "status.disruptionsAllowed", 0), age_cell(pdb, now)]
