"""The same flows through minik's own CLI, against a real server and real containers."""

from __future__ import annotations

import subprocess
import threading

import pytest
import yaml

from tests.e2e.cluster import MINIK, Cluster, eventually
from tests.e2e.test_kubectl import _app

pytestmark = pytest.mark.e2e


def test_apply_get_and_reapply_through_the_cli(cluster: Cluster, manifest) -> None:
    path = manifest(_app("cli-shop"))
    created = cluster.minik("apply", "-f", str(path)).stdout.splitlines()
    assert created == ["namespace/cli-shop created", "configmap/settings created",
                       "secret/credentials created", "deployment.apps/web created",
                       "service/web created"]
    again = cluster.minik("apply", "-f", str(manifest(_app("cli-shop", image="minik/web:v2"))))
    assert "deployment.apps/web configured" in again.stdout
    assert "configmap/settings unchanged" in again.stdout
    deploy = cluster.api.request("GET", "/apis/apps/v1/namespaces/cli-shop/deployments/web")
    assert deploy["metadata"]["generation"] == 2
    table = cluster.minik("get", "deploy", "-n", "cli-shop", "-o", "wide").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS",
                                "IMAGES", "SELECTOR"]
    as_yaml = yaml.safe_load(cluster.minik("get", "configmap", "settings", "-n", "cli-shop",
                                           "-o", "yaml").stdout)
    assert as_yaml == cluster.api.request(
        "GET", "/api/v1/namespaces/cli-shop/configmaps/settings")
    resources = cluster.minik("api-resources").stdout
    assert "deployments" in resources and "apps/v1" in resources


def test_label_annotate_and_delete_through_the_cli(
    cluster: Cluster, namespace: str, manifest
) -> None:
    docs = "\n---\n".join(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\n  namespace: {namespace}\n"
        for i in range(3))
    path = manifest(docs)
    cluster.minik("apply", "-f", str(path))
    assert cluster.minik("label", "cm", "c0", "-n", namespace, "x=1").stdout.strip() == \
        "configmap/c0 labeled"
    assert cluster.minik("annotate", "cm", "c1", "-n", namespace, "n=v").stdout.strip() == \
        "configmap/c1 annotated"
    out = cluster.minik("delete", "cm", "-l", "x=1", "-n", namespace).stdout.strip()
    assert out == 'configmap "c0" deleted'
    cluster.minik("delete", "-f", str(path), "--ignore-not-found")
    missing = cluster.minik("get", "cm", "c1", "-n", namespace, check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'Error from server (NotFound): configmaps "c1" not found'


def test_a_misspelt_field_fails_through_the_cli(cluster: Cluster, namespace: str,
                                                manifest) -> None:
    bad = (f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: {namespace}\n"
           "dta:\n  a: b\n")
    result = cluster.minik("apply", "-f", str(manifest(bad)), check=False)
    assert result.returncode == 1 and 'unknown field "dta"' in result.stderr


def test_get_watch_through_the_cli_sees_another_clients_change(
    cluster: Cluster, namespace: str
) -> None:
    process = subprocess.Popen([MINIK, "--home", str(cluster.home), "get", "cm", "-n",
                                namespace, "-w"], stdout=subprocess.PIPE, text=True,
                               env=cluster._env())
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")),
                     daemon=True).start()
    try:
        cluster.api.request("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                            body={"metadata": {"name": "first"}})
        eventually(lambda: any(line.startswith("first") for line in lines), what="first row")
        cluster.api.request("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                            body={"metadata": {"name": "seen"}, "data": {"a": "1"}})
        eventually(lambda: any(line.startswith("seen") for line in lines), what="watched row")
    finally:
        process.kill()
        process.wait()


def test_logs_exec_and_describe_through_the_cli(cluster: Cluster, namespace: str,
                                                manifest) -> None:
    cluster.minik("apply", "-f", str(manifest(f"""\
apiVersion: v1
kind: Pod
metadata: {{name: chatty, namespace: {namespace}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: c, image: "minik/busybox:1.35", command: ["sh", "-c", "echo hello; sleep 3600"]}}
""")))
    eventually(lambda: "Running" in cluster.minik("get", "pod", "chatty", "-n",
                                                  namespace).stdout, timeout=30, what="Running")
    eventually(lambda: cluster.minik("logs", "chatty", "-n", namespace).stdout == "hello\n",
               what="logs")
    result = cluster.minik("exec", "chatty", "-n", namespace, "--", "sh", "-c", "exit 3",
                           check=False)
    assert result.returncode == 3
    assert "command terminated with exit code 3" in result.stderr
    described = cluster.minik("describe", "pod", "chatty", "-n", namespace).stdout
    assert "Started" in described and "Events:" in described


def test_scale_set_image_and_rollout_through_the_cli(cluster: Cluster, namespace: str) -> None:
    def minik(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return cluster.minik("-n", namespace, *args, check=check, timeout=120)

    def template_image() -> str:
        d = cluster.api.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/web")
        return d["spec"]["template"]["spec"]["containers"][0]["image"]

    def replica_sets() -> list[dict]:
        path = f"/apis/apps/v1/namespaces/{namespace}/replicasets"
        return cluster.api.request("GET", path)["items"]

    minik("create", "deployment", "web", "--image=minik/web:v1", "--replicas=1")
    assert minik("scale", "deploy/web", "--replicas=2").stdout == "deployment.apps/web scaled\n"
    status = minik("rollout", "status", "deployment/web", "--timeout=90s")
    assert status.stdout.splitlines()[-1] == 'deployment "web" successfully rolled out'
    assert minik("set", "image", "deployment/web", "web=minik/web:v2").stdout == (
        "deployment.apps/web image updated\n")
    minik("rollout", "status", "deployment/web", "--timeout=90s")
    history = minik("rollout", "history", "deployment/web").stdout.splitlines()
    assert history[1:4] == ["REVISION  CHANGE-CAUSE", "1         <none>", "2         <none>"]
    assert "minik/web:v1" in minik("rollout", "history", "deploy/web", "--revision=1").stdout
    assert minik("rollout", "undo", "deploy/web").stdout == "deployment.apps/web rolled back\n"
    assert template_image() == "minik/web:v1"
    minik("rollout", "status", "deployment/web", "--timeout=90s")
    assert len(replica_sets()) == 2, "undo re-uses the first ReplicaSet"
    missing = minik("rollout", "undo", "deploy/web", "--to-revision=9", check=False)
    assert missing.returncode == 1 and "unable to find specified revision 9" in missing.stderr
    assert minik("set", "image", "deploy/web", "nope=x", check=False).returncode == 1
    assert minik("rollout", "restart", "deploy/web").stdout == "deployment.apps/web restarted\n"
    assert minik("rollout", "pause", "deploy/web").stdout == "deployment.apps/web paused\n"
    again = minik("rollout", "pause", "deploy/web", check=False)
    assert again.returncode == 1 and "is already paused" in again.stderr
    assert minik("rollout", "resume", "deploy/web").stdout == "deployment.apps/web resumed\n"
    minik("rollout", "status", "deployment/web", "--timeout=90s")
