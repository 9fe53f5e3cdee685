"""Describing nodes: conditions, addresses, system info, pods and their requests.

kubectl's `describeNode` and `describeNodeResource`, including the table of
non-terminated pods on the node and the sums of their CPU and memory
requests and limits as shares of what the node can allocate. Quantities are
parsed and printed just enough for those sums.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from minik.api.errors import ApiError
from minik.api.resources import REGISTRY
from minik.cli.describe import (
    Described,
    PrefixWriter,
    annotations_multiline,
    describe_events,
    labels_multiline,
    rfc1123z,
    since,
)
from minik.client.paths import object_path

_SUFFIXES = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("0.001"), "": Decimal(1),
             "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9),
             "T": Decimal(10**12), "P": Decimal(10**15), "E": Decimal(10**18),
             "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30),
             "Ti": Decimal(2**40), "Pi": Decimal(2**50), "Ei": Decimal(2**60)}


def parse_quantity(text: Any) -> Decimal:
    match = re.fullmatch(r"([+-]?[0-9.]+(?:[eE][+-]?\d+)?)([a-zA-Z]*)", str(text or "0").strip())
    if not match or match.group(2) not in _SUFFIXES:
        return Decimal(0)
    return Decimal(match.group(1)) * _SUFFIXES[match.group(2)]


def format_cpu(cores: Decimal) -> str:
    millis = int((cores * 1000).to_integral_value())
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def format_bytes(value: Decimal) -> str:
    number = int(value)
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = int(_SUFFIXES[suffix])
        if number and number % unit == 0:
            return f"{number // unit}{suffix}"
    return str(number)


def _pod_totals(pod: dict[str, Any], kind: str) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for c in (pod.get("spec") or {}).get("containers") or []:
        for name, value in ((c.get("resources") or {}).get(kind) or {}).items():
            totals[name] = totals.get(name, Decimal(0)) + parse_quantity(value)
    return totals


def _share(used: Decimal, total: Decimal) -> int:
    return int(used / total * 100) if total else 0


def _resource_cell(name: str, used: Decimal, total: Decimal) -> str:
    shown = format_cpu(used) if name == "cpu" else format_bytes(used)
    return f"{shown} ({_share(used, total)}%)"


def describe_node_resources(d: Described, w: PrefixWriter, pods: list[dict[str, Any]]) -> None:
    status = d.get("status", default={})
    allocatable = status.get("allocatable") or status.get("capacity") or {}
    total = {k: parse_quantity(allocatable.get(k)) for k in ("cpu", "memory",
                                                            "ephemeral-storage")}
    w.write(0, f"Non-terminated Pods:\t({len(pods)} in total)\n")
    w.write(1, "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\t"
               "Age\n")
    w.write(1, "---------\t----\t\t------------\t----------\t---------------\t-------------\t"
               "---\n")
    sums: dict[str, dict[str, Decimal]] = {"requests": {}, "limits": {}}
    for pod in pods:
        meta = pod.get("metadata") or {}
        cells = []
        for kind in ("requests", "limits"):
            values = _pod_totals(pod, kind)
            for name, value in values.items():
                sums[kind][name] = sums[kind].get(name, Decimal(0)) + value
        for name in ("cpu", "memory"):
            for kind in ("requests", "limits"):
                cells.append(_resource_cell(name, _pod_totals(pod, kind).get(name, Decimal(0)),
                                            total[name]))
        w.write(1, f"{meta.get('namespace', '')}\t{meta.get('name', '')}\t\t{cells[0]}\t"
                   f"{cells[1]}\t{cells[2]}\t{cells[3]}\t"
                   f"{since(meta.get('creationTimestamp'), d.now)}\n")
    w.write(0, "Allocated resources:\n  (Total limits may be over 100 percent, i.e., "
               "overcommitted.)\n")
    w.write(1, "Resource\tRequests\tLimits\n")
    w.write(1, "--------\t--------\t------\n")
    for name in ("cpu", "memory", "ephemeral-storage"):
        used = [_resource_cell(name, sums[kind].get(name, Decimal(0)), total[name])
                for kind in ("requests", "limits")]
        w.write(1, f"{name}\t{used[0]}\t{used[1]}\n")


def describe_node(d: Described, w: PrefixWriter) -> None:
    spec, status, meta = d.get("spec", default={}), d.get("status", default={}), d.meta
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    roles = sorted({k.split("/", 1)[1] for k in meta.get("labels") or {}
                    if k.startswith("node-role.kubernetes.io/") and k.split("/", 1)[1]})
    w.write(0, f"Roles:\t{','.join(roles) or '<none>'}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    w.write(0, f"CreationTimestamp:\t{rfc1123z(meta.get('creationTimestamp'))}\n")
    taints = sorted(spec.get("taints") or [], key=lambda t: f"{t.get('effect')},{t.get('key')}")
    w.write(0, "Taints:\t" + ("\n\t".join(
        f"{t.get('key', '')}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect', '')}"
        for t in taints) or "<none>") + "\n")
    w.write(0, f"Unschedulable:\t{'true' if spec.get('unschedulable') else 'false'}\n")
    _node_lease(d, w)
    conditions = status.get("conditions") or []
    if conditions:
        w.write(0, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\t"
                   "Message\n")
        w.write(1, "----\t------\t-----------------\t------------------\t------\t-------\n")
        for c in conditions:
            w.write(1, f"{c.get('type', '')} \t{c.get('status', '')} \t"
                       f"{rfc1123z(c.get('lastHeartbeatTime'))} \t"
                       f"{rfc1123z(c.get('lastTransitionTime'))} \t{c.get('reason', '')} \t"
                       f"{c.get('message', '')}\n")
    w.write(0, "Addresses:\n")
    for address in status.get("addresses") or []:
        w.write(1, f"{address.get('type', '')}:\t{address.get('address', '')}\n")
    for key, title in (("capacity", "Capacity"), ("allocatable", "Allocatable")):
        if status.get(key):
            w.write(0, f"{title}:\n")
            for name in sorted(status[key]):
                w.write(0, f"  {name}:\t{status[key][name]}\n")
    _node_info(w, status.get("nodeInfo") or {})
    if spec.get("podCIDR"):
        w.write(0, f"PodCIDR:\t{spec['podCIDR']}\n")
    if spec.get("podCIDRs"):
        w.write(0, f"PodCIDRs:\t{','.join(spec['podCIDRs'])}\n")
    if spec.get("providerID"):
        w.write(0, f"ProviderID:\t{spec['providerID']}\n")
    pods_rt = REGISTRY.get("pods")
    assert pods_rt is not None
    pods = d.list(pods_rt, None, fieldSelector=f"spec.nodeName={meta.get('name', '')},"
                  "status.phase!=Succeeded,status.phase!=Failed")
    describe_node_resources(d, w, pods)
    describe_events(w, d.events or [], d.now)


def _node_info(w: PrefixWriter, info: dict[str, Any]) -> None:
    w.write(0, "System Info:\n")
    for key, title in (("machineID", "Machine ID"), ("systemUUID", "System UUID"),
                       ("bootID", "Boot ID"), ("kernelVersion", "Kernel Version"),
                       ("osImage", "OS Image"), ("operatingSystem", "Operating System"),
                       ("architecture", "Architecture"),
                       ("containerRuntimeVersion", "Container Runtime Version"),
                       ("kubeletVersion", "Kubelet Version"),
                       ("kubeProxyVersion", "Kube-Proxy Version")):
        w.write(0, f"  {title}:\t{info.get(key, '')}\n")


def _node_lease(d: Described, w: PrefixWriter) -> None:
    rt = REGISTRY.get("leases")
    if rt is None:
        return
    try:
        lease = d.client.request("GET", object_path(rt, "kube-node-lease",
                                                    d.meta.get("name", "")))
    except ApiError as e:
        w.write(0, f"Lease:\tFailed to get lease: {e.message}\n")
        return
    spec = lease.get("spec") or {}
    w.write(0, "Lease:\n")
    w.write(1, f"HolderIdentity:\t{spec.get('holderIdentity') or '<unset>'}\n")
    for key, title in (("acquireTime", "AcquireTime"), ("renewTime", "RenewTime")):
        w.write(1, f"{title}:\t{rfc1123z(spec[key]) if spec.get(key) else '<unset>'}\n")
