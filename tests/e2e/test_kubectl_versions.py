"""Every kubectl on this machine, 1.27 to 1.33, through a Deployment's whole life on one minik.

Old and new kubectl differ on the wire where it matters: 1.27 to 1.29 ask
for `apidiscovery.k8s.io/v2beta1` discovery and run exec over a raw
SPDY/3.1 upgrade; 1.30 and later ask for v2 and run exec over WebSocket
(and still fall back to SPDY, forced here with
KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false). The versioned binaries are run
directly, not through the gcloud dispatcher at /usr/bin/kubectl, which
picks a binary by the server's version. Each version has its own cache
directory and namespace on the module's one cluster.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster

pytestmark = pytest.mark.e2e

BINARIES = Path("/usr/lib/google-cloud-sdk/bin")
MINORS = range(27, 34)
FIRST_WEBSOCKET_EXEC = 30
EXEC_REQUEST = re.compile(r'(GET|POST)"?\s+(?:url=")?https://\S+/exec\?.*101 Switching Protocols')

MANIFEST = """\
apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: web
          image: minik/busybox:1.35
          command: ["sh", "-c", "echo started by {ns}; exec sleep 3600"]
"""


class Kubectl:
    """One kubectl binary against the cluster, with its own discovery cache."""

    def __init__(self, cluster: Cluster, minor: int) -> None:
        self.cluster, self.minor = cluster, minor
        self.binary = BINARIES / f"kubectl.1.{minor}"
        self.cache = cluster.scratch / f"kube-cache-1.{minor}"

    def __call__(self, *args: str, check: bool = True, input: str | None = None,
                 ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.binary), "--kubeconfig", str(self.cluster.kubeconfig),
                "--cache-dir", str(self.cache), *args]
        return self.cluster.run(argv, check=check, input=input, timeout=90)


def _exec_transport(kubectl: Kubectl, namespace: str) -> str:
    """Exec with stdin and with an exit code; the HTTP method of the upgrade (POST is SPDY)."""
    echoed = kubectl("-n", namespace, "exec", "-i", "deploy/web", "--", "cat",
                     input=f"stdin through kubectl 1.{kubectl.minor}\n")
    assert echoed.stdout == f"stdin through kubectl 1.{kubectl.minor}\n"
    failed = kubectl("-n", namespace, "-v=6", "exec", "deploy/web", "--",
                     "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert failed.returncode == 3, failed.stderr
    assert failed.stdout == "out\n"
    assert "err\n" in failed.stderr
    assert "command terminated with exit code 3" in failed.stderr
    upgrade = EXEC_REQUEST.search(failed.stderr)
    assert upgrade is not None, failed.stderr
    return upgrade.group(1)


@pytest.mark.parametrize("minor", MINORS, ids=[f"1.{m}" for m in MINORS])
def test_kubectl_applies_inspects_scales_reads_logs_execs_and_deletes(
        cluster: Cluster, manifest, minor: int, monkeypatch: pytest.MonkeyPatch) -> None:
    kubectl = Kubectl(cluster, minor)
    if not kubectl.binary.exists():
        pytest.skip(f"{kubectl.binary} is not installed")
    ns = f"kubectl-1-{minor}"
    path = manifest(MANIFEST.format(ns=ns), f"web-1.{minor}.yaml")

    applied = kubectl("apply", "-f", str(path)).stdout
    assert f"namespace/{ns} created" in applied and "deployment.apps/web created" in applied
    table = kubectl("-n", ns, "get", "deployments").stdout
    assert re.match(r"NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\nweb\s", table), table
    assert "successfully rolled out" in kubectl(
        "-n", ns, "rollout", "status", "deployment/web", "--timeout=60s").stdout
    described = kubectl("-n", ns, "describe", "deployment", "web").stdout
    assert re.search(r"Replicas:\s+1 desired \| 1 updated \| 1 total \| 1 available", described)

    assert "deployment.apps/web scaled" in kubectl(
        "-n", ns, "scale", "deployment/web", "--replicas=2").stdout
    assert "successfully rolled out" in kubectl(
        "-n", ns, "rollout", "status", "deployment/web", "--timeout=60s").stdout
    pods = kubectl("-n", ns, "get", "pods", "-l", "app=web", "-o", "name").stdout.split()
    assert len(pods) == 2, pods
    assert f"started by {ns}" in kubectl("-n", ns, "logs", "deploy/web").stdout

    expected = "GET" if minor >= FIRST_WEBSOCKET_EXEC else "POST"
    assert _exec_transport(kubectl, ns) == expected
    if minor >= FIRST_WEBSOCKET_EXEC:
        monkeypatch.setenv("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
        assert _exec_transport(kubectl, ns) == "POST"

    deleted = kubectl("delete", "-f", str(path)).stdout
    assert f'namespace "{ns}" deleted' in deleted
    gone = kubectl("get", "namespace", ns, check=False)
    assert gone.returncode == 1 and "NotFound" in gone.stderr
