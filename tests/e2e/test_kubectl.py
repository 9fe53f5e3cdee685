"""The real kubectl against a real minik server: apply, get, watch, label, delete."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from minik.api.errors import ApiError
from minik.api.resources import REGISTRY
from tests.e2e.cluster import Cluster, eventually

pytestmark = pytest.mark.e2e

APP = """\
apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: {ns}
data:
  mode: "{mode}"
---
apiVersion: v1
kind: Secret
metadata:
  name: credentials
  namespace: {ns}
stringData:
  password: hunter2
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
  labels:
    tier: {tier}
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: {image}
          env:
            - name: MODE
              value: "{mode}"
          ports:
            - containerPort: 8080
        - name: sidecar
          image: minik/busybox:1.35
          command: ["sleep", "3600"]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: {ns}
spec:
  selector:
    app: web
  ports:
    - port: 80
      targetPort: 8080
"""


def _app(ns: str, *, mode: str = "a", tier: str = "front", image: str = "minik/web:v1") -> str:
    return APP.format(ns=ns, mode=mode, tier=tier, image=image)


def _get(cluster: Cluster, path: str) -> dict:
    return cluster.api.request("GET", path)


def test_apply_of_a_multi_document_file_creates_every_object(cluster: Cluster, manifest) -> None:
    path = manifest(_app("shop"))
    out = cluster.kubectl("apply", "-f", str(path)).stdout.splitlines()
    assert out == [
        "namespace/shop created",
        "configmap/settings created",
        "secret/credentials created",
        "deployment.apps/web created",
        "service/web created",
    ]
    secret = _get(cluster, "/api/v1/namespaces/shop/secrets/credentials")
    assert secret["data"] == {"password": "aHVudGVyMg=="}
    deploy = _get(cluster, "/apis/apps/v1/namespaces/shop/deployments/web")
    assert deploy["metadata"]["generation"] == 1
    assert deploy["spec"]["strategy"]["type"] == "RollingUpdate"
    again = cluster.kubectl("apply", "-f", str(path)).stdout
    assert "deployment.apps/web unchanged" in again


def test_reapply_updates_only_what_changed_and_bumps_generation_on_spec_changes(
    cluster: Cluster, manifest
) -> None:
    ns = "reapply"
    cluster.kubectl("apply", "-f", str(manifest(_app(ns))))
    before = _get(cluster, f"/apis/apps/v1/namespaces/{ns}/deployments/web")

    out = cluster.kubectl("apply", "-f", str(manifest(_app(ns, tier="back")))).stdout
    assert "deployment.apps/web configured" in out
    assert "configmap/settings unchanged" in out
    labelled = _get(cluster, f"/apis/apps/v1/namespaces/{ns}/deployments/web")
    assert labelled["metadata"]["labels"] == {"tier": "back"}
    assert labelled["metadata"]["generation"] == before["metadata"]["generation"]

    cluster.kubectl("apply", "-f", str(manifest(_app(ns, tier="back", image="minik/web:v2"))))
    updated = _get(cluster, f"/apis/apps/v1/namespaces/{ns}/deployments/web")
    assert updated["metadata"]["generation"] == before["metadata"]["generation"] + 1
    containers = updated["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == ["minik/web:v2", "minik/busybox:1.35"]
    assert updated["metadata"]["uid"] == before["metadata"]["uid"]


def test_get_prints_kubectl_columns_for_each_kind(cluster: Cluster, manifest) -> None:
    ns = "columns"
    cluster.kubectl("apply", "-f", str(manifest(_app(ns))))
    headers = {
        "deployments": ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "configmaps": ["NAME", "DATA", "AGE"],
        "secrets": ["NAME", "TYPE", "DATA", "AGE"],
        "services": ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
    }
    for kind, expected in headers.items():
        lines = cluster.kubectl("get", kind, "-n", ns).stdout.splitlines()
        assert lines[0].split() == expected, lines
    wide = cluster.kubectl("get", "deploy", "-n", ns, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[-3:] == ["web,sidecar", "minik/web:v1,minik/busybox:1.35", "app=web"]
    namespaces = cluster.kubectl("get", "ns").stdout.splitlines()
    assert namespaces[0].split() == ["NAME", "STATUS", "AGE"]
    assert any(line.split()[:2] == ["default", "Active"] for line in namespaces)
    labels = cluster.kubectl("get", "deploy", "-A", "--show-labels").stdout.splitlines()
    assert labels[0].split()[0] == "NAMESPACE" and labels[0].split()[-1] == "LABELS"
    assert any(line.split()[0] == ns and "tier=front" in line for line in labels)


def test_get_yaml_round_trips_through_replace(cluster: Cluster, manifest) -> None:
    ns = "roundtrip"
    cluster.kubectl("apply", "-f", str(manifest(_app(ns))))
    text = cluster.kubectl("get", "configmap", "settings", "-n", ns, "-o", "yaml").stdout
    obj = yaml.safe_load(text)
    assert obj == _get(cluster, f"/api/v1/namespaces/{ns}/configmaps/settings")
    out = cluster.kubectl("replace", "-f", str(manifest(text, "round.yaml"))).stdout
    assert out.strip() == "configmap/settings replaced"
    deploy = yaml.safe_load(cluster.kubectl("get", "deploy", "web", "-n", ns, "-o",
                                            "yaml").stdout)
    assert deploy["kind"] == "Deployment" and deploy["spec"]["replicas"] == 2


def test_a_list_written_by_get_applies_back(cluster: Cluster, namespace: str, manifest) -> None:
    for name in ("one", "two"):
        cluster.api.request("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                            body={"metadata": {"name": name}, "data": {"k": "v"}})
    listing = yaml.safe_load(cluster.kubectl("get", "configmaps", "one", "two", "-n", namespace,
                                             "-o", "yaml").stdout)
    assert listing["kind"] == "List"
    for item in listing["items"]:
        item["data"]["k"] = "changed"
    out = cluster.kubectl("apply", "-f", str(manifest(yaml.safe_dump(listing), "list.yaml")))
    assert out.stdout.split("\n")[:2] == ["configmap/one configured", "configmap/two configured"]
    for name in ("one", "two"):
        cm = _get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        assert cm["data"] == {"k": "changed"}
    listing["items"][0]["dataa"] = {"x": "v"}
    for item in listing["items"]:
        del item["metadata"]["resourceVersion"]
    bad = cluster.kubectl("apply", "-f", str(manifest(yaml.safe_dump(listing), "bad.yaml")),
                          check=False)
    assert bad.returncode == 1 and 'unknown field "dataa"' in bad.stderr


def test_kubectl_create_subcommands_send_protobuf_that_minik_decodes(
    cluster: Cluster, namespace: str
) -> None:
    ns = ["-n", namespace]
    commands = [
        ["create", "deployment", "web", "--image=minik/web:v1", "--replicas=0", "--port=8080"],
        ["create", "configmap", "settings", "--from-literal=mode=fast"],
        ["create", "secret", "generic", "creds", "--from-literal=password=hunter2"],
        ["create", "serviceaccount", "robot"],
        ["create", "service", "clusterip", "web", "--tcp=80:8080"],
        ["create", "job", "once", "--image=minik/busybox:1.35", "--", "true"],
        ["create", "cronjob", "nightly", "--image=minik/busybox:1.35", "--schedule=0 3 * * *",
         "--", "true"],
    ]
    for command in commands:
        result = cluster.kubectl(*ns, "-v=8", *command)
        assert result.stdout.strip().endswith("created")
        assert "application/vnd.kubernetes.protobuf" in result.stderr, "kubectl sent JSON"
    base = f"/namespaces/{namespace}"
    deploy = _get(cluster, f"/apis/apps/v1{base}/deployments/web")
    assert deploy["spec"]["replicas"] == 0
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "minik/web:v1"
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert _get(cluster, f"/api/v1{base}/configmaps/settings")["data"] == {"mode": "fast"}
    secret = _get(cluster, f"/api/v1{base}/secrets/creds")
    assert secret["data"] == {"password": "aHVudGVyMg=="}
    service = _get(cluster, f"/api/v1{base}/services/web")["spec"]
    assert service["ports"][0]["port"] == 80 and service["ports"][0]["targetPort"] == 8080
    assert service["selector"] == {"app": "web"}
    job = _get(cluster, f"/apis/batch/v1{base}/jobs/once")["spec"]["template"]["spec"]
    assert job["containers"][0]["command"] == ["true"] and job["restartPolicy"] == "Never"
    cron = _get(cluster, f"/apis/batch/v1{base}/cronjobs/nightly")["spec"]
    assert cron["schedule"] == "0 3 * * *"
    assert cluster.kubectl("create", "namespace", f"{namespace}-x").stdout.strip() == (
        f"namespace/{namespace}-x created")


def test_get_watch_prints_a_change_made_by_another_client(cluster: Cluster, namespace: str) -> None:
    cluster.api.request("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                        body={"metadata": {"name": "first"}, "data": {"a": "1"}})
    argv = [*_kubectl_argv(cluster), "get", "configmaps", "-n", namespace, "-w"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=cluster._env())
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")),
                              daemon=True)
    reader.start()
    try:
        eventually(lambda: any(line.startswith("first") for line in lines), what="initial row")
        cluster.api.request("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                            body={"metadata": {"name": "second"}, "data": {"a": "1", "b": "2"}})
        row = eventually(lambda: [line for line in lines if line.startswith("second")],
                         what="watched row")
        assert row[0].split()[:2] == ["second", "2"]
    finally:
        process.kill()
        process.wait()


def _kubectl_argv(cluster: Cluster) -> list[str]:
    from tests.e2e.cluster import KUBECTL

    return [KUBECTL, "--kubeconfig", str(cluster.kubeconfig),
            "--cache-dir", str(cluster.scratch / "kube-cache")]


def test_label_annotate_and_delete_by_label_and_by_file(
    cluster: Cluster, namespace: str, manifest
) -> None:
    docs = "\n---\n".join(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{i}\n  namespace: {namespace}\n"
        f"data:\n  k: v\n" for i in range(3)
    )
    path = manifest(docs)
    cluster.kubectl("apply", "-f", str(path))
    assert cluster.kubectl("label", "cm", "cm0", "cm1", "-n", namespace,
                           "group=x").stdout.split("\n")[0] == "configmap/cm0 labeled"
    cluster.kubectl("annotate", "cm", "cm2", "-n", namespace, "note=hello")
    cm2 = _get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/cm2")
    assert cm2["metadata"]["annotations"]["note"] == "hello"

    out = cluster.kubectl("delete", "cm", "-n", namespace, "-l", "group=x").stdout
    assert sorted(out.split("\n")[:2]) == ['configmap "cm0" deleted', 'configmap "cm1" deleted']
    names = cluster.kubectl("get", "cm", "-n", namespace, "-o", "name").stdout.split()
    assert "configmap/cm2" in names and "configmap/cm0" not in names

    cluster.kubectl("delete", "-f", str(path), "--ignore-not-found")
    left = cluster.kubectl("get", "cm", "-n", namespace, "-o", "name").stdout.split()
    assert not [n for n in left if n.startswith("configmap/cm")]


def test_api_resources_lists_every_kind(cluster: Cluster) -> None:
    out = cluster.kubectl("api-resources").stdout
    kinds = {line.split()[-1] for line in out.splitlines()[1:] if line.strip()}
    assert {rt.kind for rt in REGISTRY} <= kinds
    deploy_line = next(line for line in out.splitlines() if line.startswith("deployments"))
    assert deploy_line.split()[:3] == ["deployments", "deploy", "apps/v1"]


def test_a_misspelt_field_fails_with_an_error_naming_it(
    cluster: Cluster, namespace: str, manifest
) -> None:
    bad = _app(namespace).split("---\n")[3].replace("image:", "imagee:", 1)
    result = cluster.kubectl("apply", "-f", str(manifest(bad)), check=False)
    assert result.returncode == 1
    assert 'unknown field "spec.template.spec.containers[0].imagee"' in result.stderr
    missing = cluster.kubectl("get", "deploy", "web", "-n", namespace, check=False)
    assert missing.returncode == 1


def test_a_stale_update_is_refused_with_409(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    created = cluster.api.request("POST", path, body={"metadata": {"name": "c"},
                                                      "data": {"v": "1"}})
    fresh = dict(created, data={"v": "2"})
    cluster.api.request("PUT", f"{path}/c", body=fresh)
    stale = dict(created, data={"v": "3"})
    with pytest.raises(ApiError) as caught:
        cluster.api.request("PUT", f"{path}/c", body=stale)
    assert caught.value.code == 409 and caught.value.reason == "Conflict"
    assert _get(cluster, f"{path}/c")["data"] == {"v": "2"}


def test_requests_without_the_token_are_unauthorized(cluster: Cluster) -> None:
    url = f"https://127.0.0.1:{cluster.port}/api/v1/namespaces"
    ca = cluster.home / "ca.crt"
    anonymous = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                "--cacert", str(ca), url], capture_output=True, text=True)
    assert anonymous.stdout == "401"
    token = (cluster.home / "token").read_text().strip()
    authed = subprocess.run(["curl", "-s", "--cacert", str(ca), "-H",
                             f"Authorization: Bearer {token}", url],
                            capture_output=True, text=True)
    assert json.loads(authed.stdout)["kind"] == "NamespaceList"
    health = subprocess.run(["curl", "-s", "--cacert", str(ca),
                             f"https://127.0.0.1:{cluster.port}/readyz"],
                            capture_output=True, text=True)
    assert health.stdout == "ok"


def test_kubeconfig_is_private_and_names_the_https_server(cluster: Cluster) -> None:
    assert cluster.kubeconfig.stat().st_mode & 0o777 == 0o600
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    assert config["clusters"][0]["cluster"]["server"] == f"https://127.0.0.1:{cluster.port}"
    for key_file in ("ca.key", "server.key", "token"):
        assert (cluster.home / key_file).stat().st_mode & 0o777 == 0o600
    log = Path(cluster.home / "server.log").read_text()
    assert (cluster.home / "token").read_text().strip() not in log
    assert "hunter2" not in log and "aHVudGVyMg==" not in log
