"""What a Service update keeps and drops before it is validated, as Kubernetes' strategy does.

A Service is a union discriminated by `type`; the allocated fields belong to
some types only. So, as `pkg/registry/core/service` does on update:

1. `patch_allocated_values`: a client that leaves out the clusterIP or a
   nodePort (`kubectl replace` of a manifest, a PUT of a fresh body) keeps
   the ones allocated before - nodePorts matched by port name - so the
   update is idempotent and `clusterIP` stays immutable.
2. `normalize_cluster_ips`: `clusterIP` and `clusterIPs` say the same.
3. `drop_type_dependent_fields`: a change to a type that does not use a
   field drops it, if the client did not also change it (then validation
   says what is wrong): the clusterIP (and families) going to ExternalName,
   nodePorts going to ClusterIP or ExternalName, the healthCheckNodePort,
   `allocateLoadBalancerNodePorts`, `loadBalancerClass` and
   `externalTrafficPolicy`; the loadbalancer status of a Service that is no
   longer a LoadBalancer. What is dropped is released by the allocator.

Everything here edits plain JSON objects in place.
"""

from __future__ import annotations

from typing import Any

JsonObject = dict[str, Any]


def _spec(svc: JsonObject) -> JsonObject:
    spec = svc.get("spec")
    if not isinstance(spec, dict):
        spec = svc["spec"] = {}
    return spec


def _type(svc: JsonObject) -> str:
    return str((svc.get("spec") or {}).get("type") or "ClusterIP")


def needs_cluster_ip(svc: JsonObject) -> bool:
    return _type(svc) != "ExternalName"


def needs_node_ports(svc: JsonObject) -> bool:
    return _type(svc) in ("NodePort", "LoadBalancer")


def needs_health_check_port(svc: JsonObject) -> bool:
    spec = svc.get("spec") or {}
    return _type(svc) == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def _ports(svc: JsonObject) -> list[JsonObject]:
    return [p for p in (svc.get("spec") or {}).get("ports") or [] if isinstance(p, dict)]


def node_ports(svc: JsonObject) -> set[int]:
    return {int(p["nodePort"]) for p in _ports(svc) if isinstance(p.get("nodePort"), int)
            and p["nodePort"]}


def prepare_for_update(old: JsonObject, new: JsonObject) -> None:
    """The three steps above, in Kubernetes' order."""
    patch_allocated_values(old, new)
    normalize_cluster_ips(old, new)
    drop_type_dependent_fields(old, new)


def patch_allocated_values(old: JsonObject, new: JsonObject) -> None:
    old_spec, new_spec = old.get("spec") or {}, _spec(new)
    if needs_cluster_ip(old) and needs_cluster_ip(new):
        if not new_spec.get("clusterIP") and old_spec.get("clusterIP"):
            new_spec["clusterIP"] = old_spec["clusterIP"]
        if not new_spec.get("clusterIPs") and old_spec.get("clusterIPs"):
            new_spec["clusterIPs"] = list(old_spec["clusterIPs"])
    if needs_node_ports(old) and needs_node_ports(new):
        used = node_ports(old) & node_ports(new)
        by_name = {p.get("name") or "": p.get("nodePort") for p in _ports(old)}
        for port in _ports(new):
            if not port.get("nodePort"):
                before = by_name.get(port.get("name") or "")
                if before and before not in used:
                    port["nodePort"] = before
    if (needs_health_check_port(old) and needs_health_check_port(new)
            and not new_spec.get("healthCheckNodePort") and old_spec.get("healthCheckNodePort")):
        new_spec["healthCheckNodePort"] = old_spec["healthCheckNodePort"]


def normalize_cluster_ips(old: JsonObject, new: JsonObject) -> None:
    """A changed `clusterIP` with unchanged `clusterIPs` means the first of them, and
    a cleared `clusterIP` clears them, as `NormalizeClusterIPs` does."""
    old_spec, new_spec = old.get("spec") or {}, _spec(new)
    ip, ips = new_spec.get("clusterIP") or "", new_spec.get("clusterIPs") or []
    same_ips = ips == (old_spec.get("clusterIPs") or [])
    if ip != (old_spec.get("clusterIP") or "") and same_ips:
        if ip:
            new_spec["clusterIPs"] = [ip]
        else:
            new_spec.pop("clusterIPs", None)


def drop_type_dependent_fields(old: JsonObject, new: JsonObject) -> None:
    old_spec, new_spec = old.get("spec") or {}, _spec(new)
    if needs_cluster_ip(old) and not needs_cluster_ip(new):
        if (new_spec.get("clusterIP") == old_spec.get("clusterIP")
                and new_spec.get("clusterIPs") == old_spec.get("clusterIPs")):
            new_spec.pop("clusterIP", None)
            new_spec.pop("clusterIPs", None)
        for key in ("ipFamilies", "ipFamilyPolicy"):
            if new_spec.get(key) == old_spec.get(key):
                new_spec.pop(key, None)
    if needs_node_ports(old) and not needs_node_ports(new) and node_ports(old) >= node_ports(new):
        for port in _ports(new):
            port.pop("nodePort", None)
    if (needs_health_check_port(old) and not needs_health_check_port(new)
            and new_spec.get("healthCheckNodePort") == old_spec.get("healthCheckNodePort")):
        new_spec.pop("healthCheckNodePort", None)
    if _type(old) == "LoadBalancer" and _type(new) != "LoadBalancer":
        for key in ("allocateLoadBalancerNodePorts", "loadBalancerClass"):
            if new_spec.get(key) == old_spec.get(key):
                new_spec.pop(key, None)
    externally = ("NodePort", "LoadBalancer")
    if (_type(old) in externally and _type(new) not in externally
            and new_spec.get("externalTrafficPolicy") == old_spec.get("externalTrafficPolicy")):
        new_spec.pop("externalTrafficPolicy", None)
    if _type(new) != "LoadBalancer" and isinstance(new.get("status"), dict):
        new["status"]["loadBalancer"] = {}
