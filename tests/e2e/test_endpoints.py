"""Endpoints and EndpointSlices of real pods, `expose` and the Service tables, with the real
kubectl."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, eventually

pytestmark = pytest.mark.e2e

WEB = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: minik/web:v1
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe:
          httpGet: {{path: /, port: 8080}}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {ns}}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: http}}]
"""

UNREADY = """\
apiVersion: v1
kind: Pod
metadata: {{name: stuck, namespace: {ns}, labels: {{app: stuck}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: minik/busybox:1.35
    command: [sleep, "3600"]
    readinessProbe:
      exec: {{command: ["false"]}}
      periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: stuck, namespace: {ns}}}
spec:
  selector: {{app: stuck}}
  ports: [{{port: 80}}]
"""


def get(cluster: Cluster, path: str) -> Any:
    return cluster.api.request("GET", path)


def ready_pod_ips(cluster: Cluster, ns: str) -> list[str]:
    pods = get(cluster, f"/api/v1/namespaces/{ns}/pods?labelSelector=app%3Dweb")["items"]
    return sorted(p["status"]["podIP"] for p in pods
                  if not p["metadata"].get("deletionTimestamp")
                  and any(c["type"] == "Ready" and c["status"] == "True"
                          for c in p["status"].get("conditions") or []))


def endpoint_ips(cluster: Cluster, ns: str, name: str = "web",
                 field: str = "addresses") -> list[str]:
    endpoints = get(cluster, f"/api/v1/namespaces/{ns}/endpoints/{name}")
    return sorted(a["ip"] for s in endpoints.get("subsets") or [] for a in s.get(field) or [])


def slices(cluster: Cluster, ns: str, name: str = "web") -> list[dict[str, Any]]:
    return get(cluster, f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"
                        f"?labelSelector=kubernetes.io%2Fservice-name%3D{name}")["items"]


def slice_ips(cluster: Cluster, ns: str, *, ready: bool = True) -> list[str]:
    return sorted(e["addresses"][0] for s in slices(cluster, ns) for e in s.get("endpoints") or []
                  if e["conditions"].get("ready") is ready)


def follows(cluster: Cluster, ns: str, count: int) -> list[str]:
    """The pod IPs once Endpoints and slices both list exactly the `count` ready pods."""
    def check() -> list[str] | None:
        pods = ready_pod_ips(cluster, ns)
        if len(pods) == count and endpoint_ips(cluster, ns) == pods \
                and slice_ips(cluster, ns) == pods:
            return pods
        return None
    return eventually(check, timeout=60, interval=0.2, what=f"{count} endpoints")


def test_a_service_follows_its_deployment_s_ready_pods_as_it_scales(
        cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=WEB.format(ns=namespace))
    ips = follows(cluster, namespace, 3)
    [slice_] = slices(cluster, namespace)
    assert slice_["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert slice_["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == \
        "endpointslice-controller.k8s.io"
    table = cluster.kubectl("get", "endpoints", "web", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "ENDPOINTS", "AGE"]
    assert table[1].split()[1] == ",".join(f"{ip}:8080" for ip in ips)
    table = cluster.kubectl("get", "endpointslices", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    assert table[1].split()[1:4] == ["IPv4", "8080", ",".join(
        e["addresses"][0] for e in slice_["endpoints"])]
    described = cluster.kubectl("describe", "svc", "web", "-n", namespace).stdout
    # kubectl 1.33 describes the slice's endpoints, in the slice's order.
    shown = re.search(r"^Endpoints:\s+(\S+)", described, re.M)
    assert shown is not None and set(shown.group(1).split(",")) == {
        f"{ip}:8080" for ip in ips}, described

    cluster.kubectl("scale", "deployment", "web", "--replicas", "1", "-n", namespace)
    follows(cluster, namespace, 1)
    cluster.kubectl("scale", "deployment", "web", "--replicas", "3", "-n", namespace)
    follows(cluster, namespace, 3)

    cluster.kubectl("delete", "service", "web", "-n", namespace)
    eventually(lambda: not slices(cluster, namespace), timeout=30, what="slices gone")
    eventually(lambda: not get(cluster, f"/api/v1/namespaces/{namespace}/endpoints")["items"],
               timeout=30, what="endpoints gone")


def test_a_pod_failing_its_readiness_probe_is_a_not_ready_address(
        cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=UNREADY.format(ns=namespace))

    def pod_ip() -> str | None:
        pod = get(cluster, f"/api/v1/namespaces/{namespace}/pods/stuck")
        return pod.get("status", {}).get("podIP")

    ip = eventually(pod_ip, timeout=60, what="pod IP")
    eventually(lambda: endpoint_ips(cluster, namespace, "stuck", "notReadyAddresses") == [ip],
               timeout=30, what="not-ready address")
    assert endpoint_ips(cluster, namespace, "stuck") == []
    [slice_] = slices(cluster, namespace, "stuck")
    assert [(e["addresses"], e["conditions"]) for e in slice_["endpoints"]] == [
        ([ip], {"ready": False, "serving": False, "terminating": False})]


def test_kubectl_and_minik_expose_a_deployment_and_get_svc_prints_kubernetes_columns(
        cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("create", "deployment", "api", "--image", "minik/web:v1", "-n", namespace)
    out = cluster.kubectl("expose", "deployment", "api", "--port", "80", "--target-port",
                          "8080", "--type", "NodePort", "-n", namespace).stdout
    assert out.strip() == "service/api exposed"
    service = get(cluster, f"/api/v1/namespaces/{namespace}/services/api")
    assert service["spec"]["selector"] == {"app": "api"}
    assert service["spec"]["type"] == "NodePort"
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(80, 8080)]
    rows = cluster.kubectl("get", "svc", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert rows[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE",
                               "SELECTOR"]
    name, kind, _cluster_ip, external, ports, _age, selector = rows[1].split()
    assert (name, kind, external, selector) == ("api", "NodePort", "<none>", "app=api")
    assert re.fullmatch(r"80(:3\d{4})?/TCP", ports), ports

    out = cluster.minik("expose", "deploy/api", "--name", "api-lb", "--port", "8080",
                        "--type", "LoadBalancer", "-n", namespace).stdout
    assert out.strip() == "service/api-lb exposed"
    minik_rows = cluster.minik("get", "svc", "api-lb", "-n", namespace).stdout.splitlines()
    kubectl_rows = cluster.kubectl("get", "svc", "api-lb", "-n", namespace).stdout.splitlines()
    assert minik_rows[0].split() == kubectl_rows[0].split()
    assert minik_rows[1].split()[:5] == kubectl_rows[1].split()[:5]
    assert kubectl_rows[1].split()[1] == "LoadBalancer"
    assert get(cluster, f"/api/v1/namespaces/{namespace}/services/api-lb")["spec"][
        "selector"] == {"app": "api"}
