"""Prometheus HTTP service discovery: target groups for what minik can be scraped at.

A role's answer is the JSON list of target groups that `http_sd_configs`
reads (`[{"targets": ["host:port"], "labels": {...}}]`), computed at each
request from the informer caches, so it follows watches:

- `apiserver` and `kube-state-metrics`: the API server itself, at the
  address the request came to (its Host header), paths `/metrics` and
  `/metrics/kube-state`;
- `nodes` and `cadvisor`: each Node through the API server's node proxy
  (`/api/v1/nodes/<node>/proxy/metrics[/cadvisor]`), as Kubernetes users
  scrape kubelets, with `__meta_kubernetes_node_*` labels;
- `pods`: each pod annotated `prometheus.io/scrape: "true"` that has an IP
  and has not finished, at `<podIP>:<prometheus.io/port>` or its first
  declared container port (port 80, or 443 for https, when it declares
  none), with `prometheus.io/path` and `prometheus.io/scheme` as
  `__metrics_path__` and `__scheme__`, and the `__meta_kubernetes_pod_*`
  labels of Prometheus' Kubernetes discovery (pod role), label and
  annotation keys sanitized as it does.

The annotation convention is the one Prometheus' example configuration for
Kubernetes applies with relabelling; here the filtering is done before the
targets are handed out, since `http_sd_configs` has no selectors.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypedDict

from minik.api.meta import (
    annotations_of,
    controller_of,
    is_pod_terminal,
    labels_of,
    name_of,
    namespace_of,
    pod_condition,
    uid_of,
)
from minik.api.objects import Container, ContainerPort, Node, Pod
from minik.monitoring.labels import sanitize_label_name

SCRAPE = "prometheus.io/scrape"
PORT = "prometheus.io/port"
PATH = "prometheus.io/path"
SCHEME = "prometheus.io/scheme"
ROLES = ("apiserver", "kube-state-metrics", "nodes", "cadvisor", "pods")
NODE_PATHS = {"nodes": "/metrics", "cadvisor": "/metrics/cadvisor"}
KUBE_STATE_PATH = "/metrics/kube-state"
META = "__meta_kubernetes_"


class TargetGroup(TypedDict):
    targets: list[str]
    labels: dict[str, str]


def server_groups(role: str, host: str) -> list[TargetGroup]:
    """The API server's own endpoints, at `host` (host:port as its client reached it)."""
    path = "/metrics" if role == "apiserver" else KUBE_STATE_PATH
    return [{"targets": [host], "labels": {"__metrics_path__": path}}]


def _object_labels(prefix: str, labels: dict[str, str], annotations: dict[str, str]
                   ) -> dict[str, str]:
    out: dict[str, str] = {}
    for kind, values in (("label", labels), ("annotation", annotations)):
        for key, value in values.items():
            name = sanitize_label_name(key)
            out[f"{prefix}{kind}_{name}"] = value
            out[f"{prefix}{kind}present_{name}"] = "true"
    return out


def node_groups(role: str, host: str, nodes: Iterable[Node]) -> list[TargetGroup]:
    """One group per node: the node's kubelet endpoint through the API server's proxy."""
    groups: list[TargetGroup] = []
    for node in sorted(nodes, key=name_of):
        name = name_of(node)
        labels = {"__metrics_path__": f"/api/v1/nodes/{name}/proxy{NODE_PATHS[role]}",
                  f"{META}node_name": name,
                  **_object_labels(f"{META}node_", labels_of(node), annotations_of(node))}
        for address in node.get("status", {}).get("addresses", []):
            labels.setdefault(f"{META}node_address_{address['type']}", address["address"])
        groups.append({"targets": [host], "labels": labels})
    return groups


def wants_scrape(pod: Pod) -> bool:
    return (annotations_of(pod).get(SCRAPE) == "true" and bool(pod.get("status", {}).get("podIP"))
            and not is_pod_terminal(pod))


def _port_of(pod: Pod) -> tuple[Container | None, ContainerPort | None, int | None]:
    """The container and declared port to scrape, and the port number: the annotated one
    (and the container declaring it, else the first), or the first declared port."""
    containers = pod.get("spec", {}).get("containers", [])
    annotated = annotations_of(pod).get(PORT)
    number = int(annotated) if annotated and annotated.isdigit() else None
    for container in containers:
        for port in container.get("ports", []):
            if number is None or port["containerPort"] == number:
                return container, port, port["containerPort"]
    return (containers[0] if containers else None), None, number


def pod_group(pod: Pod) -> TargetGroup:
    """The target group of one pod that `wants_scrape`."""
    status = pod.get("status", {})
    annotations = annotations_of(pod)
    scheme = annotations.get(SCHEME, "http")
    container, port, number = _port_of(pod)
    if number is None:
        number = 443 if scheme == "https" else 80
    ready = pod_condition(pod, "Ready")
    owner = controller_of(pod)
    labels = {
        f"{META}namespace": namespace_of(pod) or "",
        f"{META}pod_name": name_of(pod),
        f"{META}pod_uid": uid_of(pod),
        f"{META}pod_ip": status.get("podIP", ""),
        f"{META}pod_host_ip": status.get("hostIP", ""),
        f"{META}pod_node_name": pod.get("spec", {}).get("nodeName", ""),
        f"{META}pod_phase": status.get("phase", ""),
        f"{META}pod_ready": (ready.get("status", "unknown") if ready else "unknown").lower(),
        f"{META}pod_container_name": container["name"] if container else "",
        f"{META}pod_container_image": container.get("image", "") if container else "",
        f"{META}pod_container_init": "false",
        f"{META}pod_container_port_name": port.get("name", "") if port else "",
        f"{META}pod_container_port_number": str(port["containerPort"]) if port else "",
        f"{META}pod_container_port_protocol": port.get("protocol", "TCP") if port else "",
        **_object_labels(f"{META}pod_", labels_of(pod), annotations),
    }
    if owner is not None:
        labels[f"{META}pod_controller_kind"] = owner.get("kind", "")
        labels[f"{META}pod_controller_name"] = owner.get("name", "")
    if PATH in annotations:
        labels["__metrics_path__"] = annotations[PATH]
    if scheme in ("http", "https"):
        labels["__scheme__"] = scheme
    ip = status["podIP"]
    host = f"[{ip}]" if ":" in ip else ip
    return {"targets": [f"{host}:{number}"], "labels": labels}


def pod_groups(pods: Iterable[Pod]) -> list[TargetGroup]:
    chosen = [pod for pod in pods if wants_scrape(pod)]
    chosen.sort(key=lambda pod: (namespace_of(pod) or "", name_of(pod)))
    return [pod_group(pod) for pod in chosen]
