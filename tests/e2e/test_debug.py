"""kubectl attach, cp and debug against a real minik, with the real kubectl (1.33 over
WebSocket, 1.27 over SPDY).

Attach carries stdin to a container that reads it, and a terminal's size
to a container with a TTY (run under a real pseudo-terminal, which kubectl
needs for `-t`). `kubectl cp` runs tar through exec both ways. `kubectl
debug` adds an ephemeral container (in the target's process namespace
with `--target`), copies a pod (`--copy-to`), and runs a pod on the node
(`node/<name>`) as far as Docker and minik's host-path rules allow.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import KUBECTL, Cluster, eventually

pytestmark = pytest.mark.e2e

KUBECTL_1_27 = Path("/usr/lib/google-cloud-sdk/bin/kubectl.1.27")
BUSYBOX = "minik/busybox:1.35"
DEBIAN = "minik/debian:bookworm"


def _pod(cluster: Cluster, namespace: str, container: dict[str, object], *,
         name: str | None = None, restart: str = "Never") -> str:
    name = name or f"p-{uuid.uuid4().hex[:6]}"
    cluster.api.request("POST", f"/api/v1/namespaces/{namespace}/pods", body={
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": 1, "restartPolicy": restart,
                 "containers": [{"name": "c", **container}]}})
    eventually(lambda: _phase(cluster, namespace, name) == "Running", timeout=60,
               what=f"pod {name} Running")
    return name


def _phase(cluster: Cluster, namespace: str, name: str) -> str | None:
    pod = cluster.api.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
    return pod.get("status", {}).get("phase")


def _kubectl(cluster: Cluster, binary: Path, *args: str, input: str | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
    return cluster.run([str(binary), "--kubeconfig", str(cluster.kubeconfig),
                        "--cache-dir", str(cluster.scratch / f"cache-{binary.name}"), *args],
                       check=check, input=input, timeout=90)


def _binaries() -> list[Path]:
    return [Path(KUBECTL), *([KUBECTL_1_27] if KUBECTL_1_27.exists() else [])]


@pytest.mark.parametrize("binary", _binaries(), ids=lambda b: b.name)
def test_kubectl_attach_sends_piped_stdin_to_a_container_that_reads_it(
        cluster: Cluster, namespace: str, binary: Path) -> None:
    name = _pod(cluster, namespace, {
        "image": BUSYBOX, "stdin": True,
        "command": ["sh", "-c", "read line; echo got $line"]})
    attached = _kubectl(cluster, binary, "-n", namespace, "attach", "-i", name, "-c", "c",
                        input="hello from attach\n")
    assert "got hello from attach" in attached.stdout, attached


def _controlling_terminal() -> None:
    """In the child: a session of its own whose controlling terminal is its stdin."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _run_in_terminal(argv: list[str], *, rows: int, cols: int, ready: bytes,
                     typed: bytes, until: bytes, env: dict[str, str]) -> bytes:
    """Run argv on a pseudo-terminal of rows x cols; once `ready` was printed, type
    `typed` (again each second: kubectl may flush what is typed before its terminal is
    raw); return everything printed until `until` appears (30 s at most)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    process = subprocess.Popen(argv, stdin=follower, stdout=follower, stderr=follower, env=env,
                               preexec_fn=_controlling_terminal)
    os.close(follower)
    seen, typed_at = b"", 0.0
    deadline = time.monotonic() + 30
    try:
        while until not in seen and time.monotonic() < deadline:
            readable, _, _ = select.select([leader], [], [], 0.5)
            if readable:
                try:
                    seen += os.read(leader, 4096)
                except OSError:
                    break
            if typed and ready in seen and time.monotonic() - typed_at > 1:
                os.write(leader, typed)
                typed_at = time.monotonic()
        return seen
    finally:
        process.kill()
        process.wait()
        os.close(leader)


@pytest.mark.parametrize("binary", _binaries(), ids=lambda b: b.name)
def test_kubectl_attach_it_gives_a_tty_container_the_terminals_size_and_input(
        cluster: Cluster, namespace: str, binary: Path) -> None:
    name = _pod(cluster, namespace, {
        "image": BUSYBOX, "stdin": True, "tty": True,
        "command": ["sh", "-c", "while read line; do echo got $line size $(stty size); done"]})
    argv = [str(binary), "--kubeconfig", str(cluster.kubeconfig), "-n", namespace,
            "attach", "-it", name, "-c", "c"]
    env = {**os.environ, "HOME": str(cluster.scratch)}
    # kubectl sends the size and what is typed on streams of their own, in no set order:
    # a line typed before the size arrived sees the container's terminal still 0x0.
    printed = _run_in_terminal(argv, rows=33, cols=101, ready=b"try pressing enter",
                               typed=b"typed\r", until=b"got typed size 33 101", env=env)
    assert b"got typed size 33 101" in printed, printed


@pytest.mark.parametrize("binary", _binaries(), ids=lambda b: b.name)
def test_kubectl_cp_copies_a_directory_into_a_pod_and_back_unchanged(
        cluster: Cluster, namespace: str, binary: Path, tmp_path: Path) -> None:
    name = _pod(cluster, namespace, {"image": DEBIAN, "command": ["sleep", "3600"]})
    source = tmp_path / "source"
    (source / "sub").mkdir(parents=True)
    (source / "note.txt").write_text("copied by kubectl cp\n")
    (source / "sub" / "data.bin").write_bytes(os.urandom(1 << 20))
    _kubectl(cluster, binary, "cp", str(source), f"{namespace}/{name}:/tmp/copied")
    inside = _kubectl(cluster, binary, "-n", namespace, "exec", name, "--",
                      "cat", "/tmp/copied/note.txt")
    assert inside.stdout == "copied by kubectl cp\n"
    back = tmp_path / "back"
    _kubectl(cluster, binary, "cp", f"{namespace}/{name}:/tmp/copied", str(back))
    assert (back / "note.txt").read_text() == "copied by kubectl cp\n"
    assert (back / "sub" / "data.bin").read_bytes() == (source / "sub" / "data.bin").read_bytes()


@pytest.mark.parametrize("binary", _binaries(), ids=lambda b: b.name)
def test_kubectl_debug_with_a_target_shows_the_targets_processes(
        cluster: Cluster, namespace: str, binary: Path) -> None:
    _pod(cluster, namespace, {"image": BUSYBOX, "command": ["sleep", "3601"]}, name="web",
         restart="Always")
    argv = [str(binary), "--kubeconfig", str(cluster.kubeconfig), "-n", namespace, "debug",
            "web", "-it", f"--image={BUSYBOX}", "--target=c", "--", "ps"]
    env = {**os.environ, "HOME": str(cluster.scratch)}
    printed = _run_in_terminal(argv, rows=24, cols=80, ready=b"\x00", typed=b"",
                               until=b"sleep 3601", env=env)
    assert b"sleep 3601" in printed, printed
    pod = cluster.api.request("GET", f"/api/v1/namespaces/{namespace}/pods/web")
    [debugger] = pod["spec"]["ephemeralContainers"]
    assert debugger["targetContainerName"] == "c"

    def terminated() -> bool:
        statuses = cluster.api.request("GET", f"/api/v1/namespaces/{namespace}/pods/web")[
            "status"].get("ephemeralContainerStatuses") or []
        return bool(statuses) and "terminated" in statuses[0]["state"]

    eventually(terminated, timeout=30, what="the debugger reported terminated")


def test_kubectl_debug_copy_to_creates_a_copy_of_the_pod_with_a_debug_container(
        cluster: Cluster, namespace: str) -> None:
    _pod(cluster, namespace, {"image": BUSYBOX, "command": ["sleep", "3600"]}, name="web",
         restart="Always")
    cluster.kubectl("-n", namespace, "debug", "web", "--copy-to=web-debug", f"--image={BUSYBOX}",
                    "--container=dbg", "--", "sh", "-c", "echo in the copy; sleep 3600")
    eventually(lambda: _phase(cluster, namespace, "web-debug") == "Running", timeout=60,
               what="the copy Running")
    copy = cluster.api.request("GET", f"/api/v1/namespaces/{namespace}/pods/web-debug")
    assert [c["name"] for c in copy["spec"]["containers"]] == ["c", "dbg"]
    eventually(lambda: "in the copy" in cluster.kubectl(
        "-n", namespace, "logs", "web-debug", "-c", "dbg").stdout, timeout=30,
        what="the debug container's output")


def _node(cluster: Cluster) -> str:
    return cluster.api.request("GET", "/api/v1/nodes")["items"][0]["metadata"]["name"]


def _debugger_pod(cluster: Cluster, namespace: str) -> dict[str, Any]:
    pods = cluster.api.request("GET", f"/api/v1/namespaces/{namespace}/pods")["items"]
    [pod] = [p for p in pods if p["metadata"]["name"].startswith("node-debugger-")]
    return pod


def test_kubectl_debug_node_runs_a_pod_on_the_node_without_host_access(
        cluster: Cluster, namespace: str) -> None:
    node = _node(cluster)
    cluster.kubectl("-n", namespace, "debug", f"node/{node}", "--profile=baseline",
                    f"--image={BUSYBOX}", "--", "echo", "debugging the node")
    pod = _debugger_pod(cluster, namespace)
    assert pod["spec"]["nodeName"] == node
    name = pod["metadata"]["name"]
    eventually(lambda: _phase(cluster, namespace, name) == "Succeeded", timeout=60,
               what="the node debugger done")
    assert cluster.kubectl("-n", namespace, "logs", name).stdout == "debugging the node\n"


def test_kubectl_debug_node_with_the_hosts_root_is_refused_for_the_docker_socket_beneath_it(
        cluster: Cluster, namespace: str) -> None:
    node = _node(cluster)
    cluster.kubectl("-n", namespace, "debug", f"node/{node}", f"--image={BUSYBOX}",
                    "--", "ls", "/host")
    pod = _debugger_pod(cluster, namespace)
    assert pod["spec"]["hostPID"] and pod["spec"]["hostNetwork"]
    assert pod["spec"]["volumes"][0]["hostPath"]["path"] == "/"

    def refusal() -> str:
        statuses = cluster.api.request(
            "GET", f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}")[
            "status"].get("containerStatuses") or [{}]
        return statuses[0].get("state", {}).get("waiting", {}).get("message", "")

    eventually(lambda: "Docker socket requires a privileged container" in refusal(),
               timeout=30, what="the hostPath refusal in the container's status")


@pytest.mark.parametrize("binary", _binaries(), ids=lambda b: b.name)
def test_kubectl_debug_it_attaches_a_shell_that_sees_the_targets_processes(
        cluster: Cluster, namespace: str, binary: Path) -> None:
    _pod(cluster, namespace, {"image": BUSYBOX, "command": ["sleep", "3602"]}, name="web",
         restart="Always")
    argv = [str(binary), "--kubeconfig", str(cluster.kubeconfig), "-n", namespace, "debug",
            "web", "-it", f"--image={BUSYBOX}", "--target=c", "--", "sh"]
    env = {**os.environ, "HOME": str(cluster.scratch)}
    printed = _run_in_terminal(argv, rows=24, cols=80, ready=b"try pressing enter",
                               typed=b"ps -o pid,args\r", until=b"sleep 3602", env=env)
    assert b"sleep 3602" in printed, printed
