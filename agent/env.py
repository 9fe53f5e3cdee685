"""A container's environment, as Kubernetes builds it.

`envFrom` sources first, then `env` in order; `valueFrom` reads ConfigMaps,
Secrets (through lookups the caller provides, backed by watch caches), the
pod's own fields and its resources. `$(VAR)` references expand against the
variables defined before them, and `$$` escapes. A missing required source
or key is a `ConfigError` naming it: the container waits with
`CreateContainerConfigError` and starts once the object appears.

Before them come the `kubernetes` Service's variables, as the kubelet sets
in every container (`KUBERNETES_SERVICE_HOST`/`_PORT` and the docker-link
style `KUBERNETES_PORT*`), which in-cluster clients use to find the API;
the container's own variables override them.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

from minik.api.meta import meta_of, namespace_of
from minik.api.models.quantity import parse_quantity
from minik.api.objects import Container, JsonObject, Pod, Quantity

Lookup = Callable[[str, str], JsonObject | None]
"""A ConfigMap or Secret by namespace and name, from the agent's caches; None when absent."""
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class ConfigError(Exception):
    """A ConfigMap, Secret or key the container needs does not exist."""


def expand(text: str, variables: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: unknown references stay as written."""
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return variables.get(match.group(1), match.group(0))

    return _REFERENCE.sub(replace, text)


def _secret_values(secret: JsonObject) -> dict[str, str]:
    return {k: base64.b64decode(v).decode(errors="replace")
            for k, v in (secret.get("data") or {}).items()}


def _source(kind: str, lookup: Lookup, namespace: str, name: str) -> dict[str, str] | None:
    obj = lookup(namespace, name)
    if obj is None:
        return None
    return _secret_values(obj) if kind == "Secret" else dict(obj.get("data") or {})


def _key_ref(kind: str, ref: JsonObject, lookup: Lookup, namespace: str) -> str | None:
    values = _source(kind, lookup, namespace, ref.get("name", ""))
    optional = bool(ref.get("optional"))
    if values is None:
        if optional:
            return None
        raise ConfigError(f'{kind.lower()} "{ref.get("name", "")}" not found')
    if ref["key"] not in values:
        if optional:
            return None
        raise ConfigError(f"couldn't find key {ref['key']} in {kind} "
                          f"{namespace}/{ref.get('name', '')}")
    return values[ref["key"]]


def _field_ref(pod: Pod, path: str, extra: dict[str, str]) -> str:
    md = meta_of(pod)
    for prefix, source in (("metadata.labels", md.get("labels")),
                           ("metadata.annotations", md.get("annotations"))):
        if path.startswith(prefix + "['") and path.endswith("']"):
            return (source or {}).get(path[len(prefix) + 2:-2], "")
    simple = {
        "metadata.name": md.get("name", ""), "metadata.namespace": md.get("namespace", ""),
        "metadata.uid": md.get("uid", ""), "spec.nodeName": pod["spec"].get("nodeName", ""),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
    }
    if path in simple:
        return str(simple[path])
    return extra.get(path, "")


def _resource_ref(container: Container, ref: JsonObject) -> str:
    section, _, resource = ref.get("resource", "").partition(".")
    resources = container.get("resources", {})
    amounts: dict[str, Quantity] | None = (
        resources.get("requests") if section == "requests"
        else resources.get("limits") if section == "limits" else None)
    value = (amounts or {}).get(resource)
    if value is None:
        return "0"
    divisor = parse_quantity(ref.get("divisor", "1"))
    amount = parse_quantity(value) / divisor
    return str(int(-(-amount // 1)))


def _value_from(
    source: JsonObject, pod: Pod, container: Container,
    configmaps: Lookup, secrets: Lookup, extra: dict[str, str],
) -> str | None:
    namespace = namespace_of(pod) or "default"
    if "configMapKeyRef" in source:
        return _key_ref("ConfigMap", source["configMapKeyRef"], configmaps, namespace)
    if "secretKeyRef" in source:
        return _key_ref("Secret", source["secretKeyRef"], secrets, namespace)
    if "fieldRef" in source:
        return _field_ref(pod, source["fieldRef"].get("fieldPath", ""), extra)
    if "resourceFieldRef" in source:
        return _resource_ref(container, source["resourceFieldRef"])
    return None


def _env_from(entry: JsonObject, namespace: str, configmaps: Lookup,
              secrets: Lookup) -> dict[str, str]:
    kind, ref = (("ConfigMap", entry["configMapRef"]) if "configMapRef" in entry
                 else ("Secret", entry.get("secretRef") or {}))
    values = _source(kind, configmaps if kind == "ConfigMap" else secrets, namespace,
                     ref.get("name", ""))
    if values is None:
        if ref.get("optional"):
            return {}
        raise ConfigError(f'{kind.lower()} "{ref.get("name", "")}" not found')
    prefix = entry.get("prefix", "")
    return {prefix + k: v for k, v in values.items()}


def service_env(service: JsonObject) -> dict[str, str]:
    """A Service's variables, as the kubelet's `FromServices`: `<NAME>_SERVICE_HOST`,
    `_SERVICE_PORT[_<port name>]` and `<NAME>_PORT[_<port>_<proto>[_PROTO|_PORT|_ADDR]]`."""
    ip = (service.get("spec") or {}).get("clusterIP") or ""
    ports = (service.get("spec") or {}).get("ports") or []
    if not ip or ip == "None" or not ports:
        return {}
    name = str((service.get("metadata") or {}).get("name", "")).upper().replace("-", "_")
    env = {f"{name}_SERVICE_HOST": ip, f"{name}_SERVICE_PORT": str(ports[0]["port"])}
    for port in ports:
        if port.get("name"):
            env[f"{name}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"] = \
                str(port["port"])
    first = ports[0]
    env[f"{name}_PORT"] = f"{first.get('protocol', 'TCP').lower()}://{ip}:{first['port']}"
    for port in ports:
        protocol = port.get("protocol", "TCP")
        prefix = f"{name}_PORT_{port['port']}_{protocol.upper()}"
        env[prefix] = f"{protocol.lower()}://{ip}:{port['port']}"
        env[f"{prefix}_PROTO"] = protocol.lower()
        env[f"{prefix}_PORT"] = str(port["port"])
        env[f"{prefix}_ADDR"] = ip
    return env


def container_env(
    pod: Pod, container: Container, *, configmaps: Lookup, secrets: Lookup,
    pod_ip: str = "", host_ip: str = "", services: Lookup | None = None,
) -> dict[str, str]:
    """The container's environment; raises ConfigError for a missing required source.

    `services` finds Services; given, the `kubernetes` Service's variables come first."""
    namespace = namespace_of(pod) or "default"
    extra = {"status.podIP": pod_ip, "status.podIPs": pod_ip, "status.hostIP": host_ip,
             "status.hostIPs": host_ip}
    master = services("default", "kubernetes") if services is not None else None
    env: dict[str, str] = service_env(master) if master is not None else {}
    for entry in container.get("envFrom") or []:
        env.update(_env_from(entry, namespace, configmaps, secrets))
    for var in container.get("env") or []:
        if "valueFrom" in var:
            value = _value_from(var["valueFrom"], pod, container, configmaps, secrets, extra)
            if value is None:
                continue
            env[var["name"]] = value
        else:
            env[var["name"]] = expand(str(var.get("value", "")), env)
    return env
