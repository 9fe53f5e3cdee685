"""Services through the real kubectl: every type allocated and shown as Kubernetes shows it,
taken values refused naming them, type changes, allocations kept across restarts and
crashes, and the `kubernetes` Service's endpoint reachable from a pod."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.cluster import Cluster, eventually

SERVICES = """\
apiVersion: v1
kind: Service
metadata: {name: plain}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: np}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80}, {name: dns, port: 53, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: lb}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: headless}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec:
  type: ExternalName
  externalName: example.com
"""


def get_service(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return yaml.safe_load(cluster.kubectl("get", "svc", name, "-n", namespace, "-o",
                                          "yaml").stdout)


def specs(cluster: Cluster, namespace: str) -> dict[str, dict[str, Any]]:
    listed = json.loads(cluster.kubectl("get", "svc", "-n", namespace, "-o", "json").stdout)
    return {item["metadata"]["name"]: item["spec"] for item in listed["items"]}


def test_every_service_type_is_allocated_as_kubernetes_does(cluster: Cluster, namespace: str,
                                                            manifest):
    cluster.kubectl("apply", "-n", namespace, "-f", str(manifest(SERVICES)))
    cidr = json.loads((cluster.home / "settings.json").read_text())["serviceCIDR"]
    prefix = cidr.rsplit(".", 2)[0] + "."
    plain = get_service(cluster, namespace, "plain")["spec"]
    assert plain["clusterIP"].startswith(prefix) and plain["clusterIPs"] == [plain["clusterIP"]]
    assert plain["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 8080}]
    assert (plain["type"], plain["sessionAffinity"], plain["internalTrafficPolicy"],
            plain["ipFamilies"], plain["ipFamilyPolicy"]) == (
        "ClusterIP", "None", "Cluster", ["IPv4"], "SingleStack")
    np = get_service(cluster, namespace, "np")["spec"]
    node_ports = [p["nodePort"] for p in np["ports"]]
    assert all(30000 <= p <= 32767 for p in node_ports) and len(set(node_ports)) == 2
    assert [p["protocol"] for p in np["ports"]] == ["TCP", "UDP"]
    assert np["externalTrafficPolicy"] == "Cluster"
    lb = get_service(cluster, namespace, "lb")["spec"]
    assert lb["allocateLoadBalancerNodePorts"] is True and lb["ports"][0]["nodePort"]
    headless = get_service(cluster, namespace, "headless")["spec"]
    assert headless["clusterIP"] == "None" and headless["clusterIPs"] == ["None"]
    ext = get_service(cluster, namespace, "ext")["spec"]
    assert "clusterIP" not in ext and ext["externalName"] == "example.com"
    addresses = [s.get("clusterIP") for s in specs(cluster, namespace).values()]
    taken = [a for a in addresses if a not in (None, "None")]
    assert len(taken) == len(set(taken)) == 3
    shown = cluster.kubectl("get", "svc", "np", "-n", namespace).stdout
    assert f"80:{node_ports[0]}/TCP,53:{node_ports[1]}/UDP" in shown


def test_a_taken_cluster_ip_or_node_port_is_refused_naming_it(cluster: Cluster, namespace: str,
                                                              manifest):
    cluster.kubectl("create", "service", "nodeport", "first", "-n", namespace, "--tcp=80:80")
    first = get_service(cluster, namespace, "first")["spec"]
    ip, node_port = first["clusterIP"], first["ports"][0]["nodePort"]
    clash = manifest(f"""\
apiVersion: v1
kind: Service
metadata: {{name: second}}
spec:
  clusterIP: {ip}
  ports: [{{port: 80}}]
""")
    result = cluster.kubectl("apply", "-n", namespace, "-f", str(clash), check=False)
    assert result.returncode != 0
    assert (f'spec.clusterIPs: Invalid value: []string{{"{ip}"}}: failed to allocate IP {ip}: '
            "provided IP is already allocated") in result.stderr
    clash = manifest(f"""\
apiVersion: v1
kind: Service
metadata: {{name: third}}
spec:
  type: NodePort
  ports: [{{port: 80, nodePort: {node_port}}}]
""")
    result = cluster.kubectl("apply", "-n", namespace, "-f", str(clash), check=False)
    assert (f"spec.ports[0].nodePort: Invalid value: {node_port}: provided port is already "
            "allocated") in result.stderr


def test_a_service_changes_type_and_back(cluster: Cluster, namespace: str):
    cluster.kubectl("create", "service", "clusterip", "web", "-n", namespace, "--tcp=80:8080")
    ip = get_service(cluster, namespace, "web")["spec"]["clusterIP"]

    def patch(kind: str) -> dict[str, Any]:
        cluster.kubectl("patch", "svc", "web", "-n", namespace, "-p",
                        json.dumps({"spec": {"type": kind}}))
        return get_service(cluster, namespace, "web")["spec"]

    node_port = patch("NodePort")["ports"][0]["nodePort"]
    lb = patch("LoadBalancer")
    assert (lb["clusterIP"], lb["ports"][0]["nodePort"]) == (ip, node_port)
    back = patch("ClusterIP")
    assert back["clusterIP"] == ip and "nodePort" not in back["ports"][0]
    assert "externalTrafficPolicy" not in back
    cluster.kubectl("create", "service", "nodeport", "reuse", "-n", namespace, "--tcp=81:81",
                    f"--node-port={node_port}")


def test_restart_and_crash_keep_every_cluster_ip_and_node_port(crashable: Cluster, manifest):
    crashable.kubectl("apply", "-f", str(manifest(SERVICES)))
    before = specs(crashable, "default")
    crashable.down()
    crashable.restart()
    assert specs(crashable, "default") == before
    crashable.kill()
    crashable.restart()
    assert specs(crashable, "default") == before
    crashable.kubectl("create", "service", "nodeport", "after", "--tcp=80:80")
    after = specs(crashable, "default")["after"]
    ips = [s["clusterIP"] for s in before.values() if s.get("clusterIP") not in (None, "None")]
    ports = [p["nodePort"] for s in before.values() for p in s.get("ports", [])
             if p.get("nodePort")]
    assert after["clusterIP"] not in ips and after["ports"][0]["nodePort"] not in ports
    assert before["kubernetes"]["clusterIP"] == min(ips, key=lambda a: tuple(
        int(x) for x in a.split(".")))


def test_a_pod_reaches_the_api_at_the_kubernetes_endpoint(cluster: Cluster, namespace: str,
                                                          tmp_path: Path):
    endpoints = eventually(lambda: json.loads(cluster.kubectl(
        "get", "endpoints", "kubernetes", "-n", "default", "-o", "json",
        check=False).stdout or "{}").get("subsets"), what="kubernetes endpoints")
    address = endpoints[0]["addresses"][0]["ip"]
    port = endpoints[0]["ports"][0]["port"]
    assert not address.startswith("127.")
    slice_ = json.loads(cluster.kubectl("get", "endpointslice", "kubernetes", "-n", "default",
                                        "-o", "json").stdout)
    assert slice_["endpoints"][0]["addresses"] == [address]
    (tmp_path / "ca.crt").write_bytes((cluster.home / "ca.crt").read_bytes())
    cluster.kubectl("create", "configmap", "ca", "-n", namespace,
                    f"--from-file=ca.crt={tmp_path / 'ca.crt'}")
    token = (cluster.home / "token").read_text().strip()
    script = (
        "import ssl, urllib.request\n"
        "ctx = ssl.create_default_context(cafile='/ca/ca.crt')\n"
        f"req = urllib.request.Request('https://{address}:{port}/version', "
        f"headers={{'Authorization': 'Bearer {token}'}})\n"
        "print(urllib.request.urlopen(req, context=ctx, timeout=10).read().decode())\n")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"}, "spec": {
        "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "c", "image": "minik/debian:bookworm",
                        "command": ["python3", "-c", script],
                        "volumeMounts": [{"name": "ca", "mountPath": "/ca"}]}],
        "volumes": [{"name": "ca", "configMap": {"name": "ca"}}]}}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(pod))
    phase = eventually(lambda: cluster.kubectl(
        "get", "pod", "client", "-n", namespace, "-o", "jsonpath={.status.phase}").stdout
        in ("Succeeded", "Failed") and cluster.kubectl(
        "get", "pod", "client", "-n", namespace, "-o", "jsonpath={.status.phase}").stdout,
        timeout=60, what="client pod finished")
    logs = cluster.kubectl("logs", "client", "-n", namespace).stdout
    assert phase == "Succeeded", logs
    assert json.loads(logs)["gitVersion"]
