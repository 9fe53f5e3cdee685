"""Identity end to end: pods reach the API with their mounted service-account token, as
client libraries' in-cluster configuration does; `kubectl create token` and
`kubectl auth whoami`; tokens die with their pod; the agent renews a pod's token."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster, eventually

pytestmark = pytest.mark.e2e

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
KUBECTL_1_27 = "/usr/lib/google-cloud-sdk/bin/kubectl.1.27"
IN_CLUSTER = f"""
import json, os, ssl, sys, urllib.error, urllib.request
root = "{SA_DIR}"
token = open(root + "/token").read()
namespace = open(root + "/namespace").read()
context = ssl.create_default_context(cafile=root + "/ca.crt")
host = sys.argv[1] if len(sys.argv) > 1 else os.environ["KUBERNETES_SERVICE_HOST"]
port = os.environ["KUBERNETES_SERVICE_PORT"]
resource = os.environ.get("RESOURCE", "pods")
url = f"https://{{host}}:{{port}}/api/v1/namespaces/{{namespace}}/{{resource}}"
request = urllib.request.Request(url, headers={{"Authorization": "Bearer " + token}})
try:
    items = json.load(urllib.request.urlopen(request, context=context, timeout=10))["items"]
except urllib.error.HTTPError as error:
    sys.exit(f"{{error.code}} {{error.read().decode()}}")
print(json.dumps(sorted(p["metadata"]["name"] for p in items)))
"""


def pod_manifest(name: str, namespace: str, *, automount: bool = True) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
        "spec": {"automountServiceAccountToken": automount, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "main", "image": "minik/debian:bookworm",
                                 "command": ["sleep", "3600"]}]}})


def running(cluster: Cluster, name: str, namespace: str, *, automount: bool = True) -> None:
    cluster.kubectl("apply", "-f", "-", input=pod_manifest(name, namespace, automount=automount))
    cluster.kubectl("wait", "--for=condition=Ready", f"pod/{name}", "-n", namespace,
                    "--timeout=90s", timeout=120)


def grant_view(cluster: Cluster, namespace: str) -> None:
    """Bind the namespace's default account to `view` there, as a user would."""
    cluster.kubectl("create", "rolebinding", "default-view", "--clusterrole=view",
                    f"--serviceaccount={namespace}:default", "-n", namespace)


def in_pod(cluster: Cluster, name: str, namespace: str, *command: str,
           check: bool = True) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl("exec", name, "-n", namespace, "--", *command, check=check)


def test_a_pod_lists_its_namespace_with_its_mounted_token_as_in_cluster_clients_do(
        cluster: Cluster, namespace: str) -> None:
    running(cluster, "client", namespace)
    env = in_pod(cluster, "client", namespace, "env").stdout
    assert "KUBERNETES_SERVICE_HOST=" in env and "KUBERNETES_PORT_443_TCP=" in env
    refused = in_pod(cluster, "client", namespace, "python3", "-c", IN_CLUSTER, check=False)
    account = f"system:serviceaccount:{namespace}:default"
    assert refused.returncode != 0 and (
        f'403 {{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure",'
        f'"message":"pods is forbidden: User \\"{account}\\" cannot list resource '
        f'\\"pods\\" in API group \\"\\" in the namespace \\"{namespace}\\"",'
        f'"reason":"Forbidden","details":{{"kind":"pods"}},"code":403}}') in refused.stderr
    grant_view(cluster, namespace)
    listed = in_pod(cluster, "client", namespace, "python3", "-c", IN_CLUSTER)
    assert json.loads(listed.stdout) == ["client"]
    by_name = in_pod(cluster, "client", namespace, "python3", "-c", IN_CLUSTER,
                     "kubernetes.default.svc")
    assert json.loads(by_name.stdout) == ["client"]
    secrets = in_pod(cluster, "client", namespace, "env", "RESOURCE=secrets", "python3", "-c",
                     IN_CLUSTER, check=False)
    assert secrets.returncode != 0 and "403 " in secrets.stderr
    assert (f'secrets is forbidden: User \\"{account}\\" cannot list resource '
            f'\\"secrets\\"') in secrets.stderr
    assert in_pod(cluster, "client", namespace, "cat", f"{SA_DIR}/namespace").stdout == namespace
    pod = json.loads(cluster.kubectl("get", "pod", "client", "-n", namespace, "-o",
                                     "json").stdout)
    assert pod["spec"]["serviceAccountName"] == "default"
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api-access-")]
    assert pod["spec"]["containers"][0]["volumeMounts"] == [
        {"name": volume["name"], "readOnly": True, "mountPath": SA_DIR}]


def test_a_pod_that_opts_out_gets_no_token(cluster: Cluster, namespace: str) -> None:
    running(cluster, "quiet", namespace, automount=False)
    listed = in_pod(cluster, "quiet", namespace, "ls", SA_DIR, check=False)
    assert listed.returncode != 0 and "No such file or directory" in listed.stderr


def test_a_pod_naming_a_missing_service_account_is_refused(cluster: Cluster,
                                                           namespace: str) -> None:
    manifest = json.loads(pod_manifest("lost", namespace))
    manifest["spec"]["serviceAccountName"] = "ghost"
    refused = cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest), check=False)
    assert refused.returncode != 0
    assert (f'pods "lost" is forbidden: error looking up service account {namespace}/ghost: '
            'serviceaccount "ghost" not found') in refused.stderr


def test_a_created_token_authenticates_as_the_service_account(cluster: Cluster,
                                                              namespace: str) -> None:
    token = cluster.kubectl("create", "token", "default", "-n", namespace,
                            "--duration=20m").stdout.strip()
    assert token.count(".") == 2
    for kubectl in ("", KUBECTL_1_27):
        argv = ("--token", token, "auth", "whoami", "-o", "json")
        review = json.loads((cluster.run([kubectl, "--kubeconfig", str(cluster.kubeconfig),
                                          *argv], check=True, input=None, timeout=60)
                             if kubectl else cluster.kubectl(*argv)).stdout)
        assert review["status"]["userInfo"]["username"] == \
            f"system:serviceaccount:{namespace}:default"
    whoami = cluster.kubectl("auth", "whoami").stdout
    assert "minik-admin" in whoami and "system:masters" in whoami
    acting = cluster.kubectl("auth", "whoami", "--as=jane", "--as-group=devs").stdout
    assert "jane" in acting and "devs" in acting
    refused = cluster.kubectl("--token", token, "get", "pods", "--as=jane", check=False)
    assert refused.returncode != 0
    assert (f'users "jane" is forbidden: User "system:serviceaccount:{namespace}:default" '
            'cannot impersonate resource "users" in API group "" at the cluster scope'
            ) in refused.stderr
    discovery = json.loads(cluster.kubectl("--token", token, "get", "--raw",
                                           "/.well-known/openid-configuration").stdout)
    assert discovery["jwks_uri"].endswith("/openid/v1/jwks")


def test_the_token_of_a_deleted_pod_is_refused(cluster: Cluster, namespace: str) -> None:
    running(cluster, "doomed", namespace)
    token = in_pod(cluster, "doomed", namespace, "cat", f"{SA_DIR}/token").stdout
    assert cluster.kubectl("--token", token, "auth", "whoami").returncode == 0
    cluster.kubectl("delete", "pod", "doomed", "-n", namespace, "--wait=true", timeout=120)
    refused = cluster.kubectl("--token", token, "auth", "whoami", check=False)
    assert refused.returncode != 0 and "Unauthorized" in refused.stderr


def test_the_agent_renews_a_pods_token_before_it_expires(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With tokens capped at 15 seconds (a test-only server setting), the token file changes
    within the 80% of its life and the new token still authenticates."""
    monkeypatch.setenv("MINIK_TEST_MAX_TOKEN_EXPIRATION", "15")
    cluster = Cluster.start(tmp_path)
    try:
        eventually(lambda: cluster.kubectl("get", "sa", "default", check=False).returncode == 0,
                   what="the default ServiceAccount")
        grant_view(cluster, "default")
        running(cluster, "renewed", "default")
        first = in_pod(cluster, "renewed", "default", "cat", f"{SA_DIR}/token").stdout
        second = eventually(
            lambda: (t := in_pod(cluster, "renewed", "default", "cat",
                                 f"{SA_DIR}/token").stdout) != first and t,
            timeout=45, interval=1.0, what="a renewed token")
        listed = in_pod(cluster, "renewed", "default", "python3", "-c", IN_CLUSTER)
        assert json.loads(listed.stdout) == ["renewed"]
        assert second != first
    finally:
        cluster.stop()
