"""Pods in the host's namespaces (hostNetwork, hostPID, hostIPC), a shared process
namespace, and privileged containers, with the real kubectl and Docker.

The namespaces are compared by identity: a process's `/proc/self/ns/*` link names
its namespace, so a pod in the host's network namespace reads the same link as
this test process (which runs in the same namespaces as dockerd).
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import urllib.request

import pytest

from tests.e2e.cluster import Cluster, eventually, free_port
from tests.e2e.test_pods import DOCKER, apply, pod, wait_running

pytestmark = pytest.mark.e2e


def exec_in(cluster: Cluster, namespace: str, name: str, command: str,
            container: str | None = None) -> str:
    where = ["-c", container] if container else []
    return cluster.kubectl("exec", name, "-n", namespace, *where, "--", "sh", "-c",
                           command).stdout.strip()


def own_namespace(kind: str) -> str:
    return os.readlink(f"/proc/self/ns/{kind}")


HOST_NETWORK = """\
apiVersion: v1
kind: Pod
metadata: {{name: hostnet, namespace: {ns}}}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 0
  containers:
  - name: web
    image: minik/busybox:1.35
    command: ["sh", "-c", "echo on-$(hostname) > /tmp/index.html; exec httpd -f -p {port} -h /tmp"]
    ports: [{{containerPort: {port}}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: isolated, namespace: {ns}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - {{name: c, image: minik/busybox:1.35, command: ["sleep", "3600"]}}
"""


def test_a_host_network_pod_serves_on_the_hosts_loopback_with_the_nodes_ip(
    cluster: Cluster, namespace: str, manifest
) -> None:
    port = free_port()
    apply(cluster, manifest, HOST_NETWORK.format(ns=namespace, port=port))
    wait_running(cluster, namespace, "hostnet")
    status = pod(cluster, namespace, "hostnet")["status"]
    assert status["podIP"] == status["hostIP"] and status["podIPs"] == [{"ip": status["hostIP"]}]
    assert exec_in(cluster, namespace, "hostnet", "readlink /proc/self/ns/net") == (
        own_namespace("net"))

    def fetch() -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=2) as r:
                return r.read().decode().strip()
        except OSError:
            return ""

    assert eventually(fetch, what="the pod's server on 127.0.0.1") == (
        f"on-{socket.gethostname()}")
    wait_running(cluster, namespace, "isolated")
    assert exec_in(cluster, namespace, "isolated", "readlink /proc/self/ns/net") != (
        own_namespace("net")), "a pod without hostNetwork keeps its own network"


HOST_PID_IPC = """\
apiVersion: v1
kind: Pod
metadata: {{name: hostpid, namespace: {ns}}}
spec:
  hostPID: true
  hostIPC: true
  terminationGracePeriodSeconds: 0
  containers:
  - {{name: c, image: minik/busybox:1.35, command: ["sleep", "3600"]}}
"""


def test_a_host_pid_and_ipc_pod_sees_the_hosts_processes(
    cluster: Cluster, namespace: str, manifest
) -> None:
    apply(cluster, manifest, HOST_PID_IPC.format(ns=namespace))
    wait_running(cluster, namespace, "hostpid")
    seen = exec_in(cluster, namespace, "hostpid",
                   "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc; cat /proc/1/comm; "
                   f"cat /proc/{os.getpid()}/comm").splitlines()
    with open("/proc/1/comm") as f:
        host_init = f.read().strip()
    with open("/proc/self/comm") as f:
        me = f.read().strip()
    assert seen == [own_namespace("pid"), own_namespace("ipc"), host_init, me]


SHARED_PIDS = """\
apiVersion: v1
kind: Pod
metadata: {{name: sharing, namespace: {ns}}}
spec:
  shareProcessNamespace: true
  terminationGracePeriodSeconds: 0
  containers:
  - {{name: a, image: minik/busybox:1.35, command: ["sleep", "3600"]}}
  - {{name: b, image: minik/busybox:1.35, command: ["sleep", "3601"]}}
"""


def test_containers_sharing_a_process_namespace_see_each_other_under_pause(
    cluster: Cluster, namespace: str, manifest
) -> None:
    apply(cluster, manifest, SHARED_PIDS.format(ns=namespace))
    wait_running(cluster, namespace, "sharing")
    out = exec_in(cluster, namespace, "sharing", "cat /proc/1/comm; ps -o args", container="a")
    assert out.splitlines()[0] == "pause"
    assert "sleep 3601" in out, "container b's process is visible from a"
    assert exec_in(cluster, namespace, "sharing", "readlink /proc/self/ns/pid",
                   container="a") != own_namespace("pid")


PRIVILEGED = """\
apiVersion: v1
kind: Pod
metadata: {{name: powerful, namespace: {ns}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: c
    image: minik/busybox:1.35
    command: ["sleep", "3600"]
    securityContext: {{privileged: true}}
"""


def engine_runs_privileged(cluster: Cluster) -> bool:
    """Whether this Docker can run a privileged container at all.

    Docker 20.10 grants a privileged container every capability the kernel
    knows and fails when its own bounding set lacks one (as in some VMs).
    """
    done = subprocess.run([DOCKER, "run", "--rm", "--privileged", "--label",
                           f"minik.dev/instance={cluster.name}", "minik/busybox:1.35", "true"],
                          capture_output=True, text=True, check=False)
    return done.returncode == 0


def all_capabilities() -> str:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return f"{(1 << (int(f.read()) + 1)) - 1:016x}"


def failed_events(cluster: Cluster, namespace: str) -> list[str]:
    events = cluster.api.request("GET", f"/api/v1/namespaces/{namespace}/events")["items"]
    return [e["message"] for e in events if e["reason"] == "Failed"]


def test_a_privileged_container_has_every_capability_or_is_refused_clearly(
    cluster: Cluster, namespace: str, manifest
) -> None:
    apply(cluster, manifest, PRIVILEGED.format(ns=namespace))
    if not engine_runs_privileged(cluster):
        messages = eventually(
            lambda: [m for m in failed_events(cluster, namespace)
                     if "privileged containers cannot run on this node" in m],
            what="the refusal of the privileged container")
        assert "unable to apply caps" in messages[0]
        waiting = pod(cluster, namespace, "powerful")["status"]["containerStatuses"][0][
            "state"]["waiting"]
        assert waiting["reason"] in ("RunContainerError", "CrashLoopBackOff")
        return
    wait_running(cluster, namespace, "powerful")
    caps = exec_in(cluster, namespace, "powerful", "grep CapEff /proc/self/status")
    assert caps.split()[1] == all_capabilities()
    seen = set(exec_in(cluster, namespace, "powerful", "ls /dev").split())
    assert host_devices() <= seen


def host_devices() -> set[str]:
    return {entry.name for entry in os.scandir("/dev")
            if stat.S_ISCHR(mode := entry.stat(follow_symlinks=False).st_mode)
            or stat.S_ISBLK(mode)}
