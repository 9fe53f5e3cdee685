"""Exec from WebSocket clients other than kubectl: stdin sent as TEXT reaches the process;
and exec clients that quit while their stdin is held back leave nothing behind.

The official Python client writes strings to stdin as WebSocket TEXT
messages; Kubernetes reads TEXT and BINARY alike, on every channel
subprotocol, and so must minik.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import IO

import aiohttp
import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.stream import stream

from minik.kubeconfig import load_kubeconfig
from tests.e2e.cluster import Cluster, eventually

pytestmark = pytest.mark.e2e


def _sleeping_pod(cluster: Cluster, namespace: str) -> str:
    name = f"cat-{uuid.uuid4().hex[:6]}"
    cluster.api.request("POST", f"/api/v1/namespaces/{namespace}/pods", body={
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
            "name": "c", "image": "minik/busybox:1.35", "command": ["sleep", "3600"]}]}})

    def running() -> bool:
        pod = cluster.api.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
        return pod.get("status", {}).get("phase") == "Running"

    eventually(running, timeout=60, what=f"pod {name} Running")
    return name


def test_the_official_python_client_sends_text_stdin_to_cat_and_reads_it_back(
        cluster: Cluster, namespace: str) -> None:
    name = _sleeping_pod(cluster, namespace)
    core = k8s.CoreV1Api(k8s_config.new_client_from_config(config_file=str(cluster.kubeconfig)))
    session = stream(core.connect_get_namespaced_pod_exec, name, namespace, command=["cat"],
                     stdin=True, stdout=True, stderr=True, tty=False, _preload_content=False)
    try:
        session.write_stdin("typed as text\n")
        assert session.readline_stdout(timeout=20) == "typed as text"
    finally:
        session.close()


@pytest.mark.parametrize("protocol", ["v4.channel.k8s.io", "channel.k8s.io"])
def test_a_websocket_client_gets_text_stdin_echoed_by_cat(
        cluster: Cluster, namespace: str, protocol: str) -> None:
    name = _sleeping_pod(cluster, namespace)
    access = load_kubeconfig(cluster.kubeconfig)
    assert access.ca_pem is not None
    context = ssl.create_default_context(cadata=access.ca_pem.decode())
    url = f"{access.server}/api/v1/namespaces/{namespace}/pods/{name}/exec"
    query = [("command", "cat"), ("stdin", "true"), ("stdout", "true"), ("stderr", "true")]

    async def echo() -> bytes:
        async with aiohttp.ClientSession() as http, http.ws_connect(
                url, params=query, ssl=context, protocols=(protocol,),
                headers={"Authorization": f"Bearer {access.token}"}) as ws:
            assert ws.protocol == protocol
            await ws.send_str("\x00typed as text\n")
            echoed = b""
            async with asyncio.timeout(20):
                while not echoed.endswith(b"\n"):
                    message = await ws.receive()
                    assert message.type == aiohttp.WSMsgType.BINARY, message
                    if message.data[:1] == b"\x01":
                        echoed += message.data[1:]
            return echoed

    assert asyncio.run(echo()) == b"typed as text\n"


class Feeder(threading.Thread):
    """Writes zeros to a pipe until it breaks, noting when a write last got through."""

    def __init__(self, pipe: IO[bytes]) -> None:
        super().__init__(daemon=True)
        self.pipe, self.written, self.last_write = pipe, 0, time.monotonic()

    def run(self) -> None:
        block = bytes(1 << 16)
        try:
            while True:
                self.pipe.write(block)
                self.pipe.flush()
                self.written += len(block)
                self.last_write = time.monotonic()
        except (BrokenPipeError, ValueError, OSError):
            return

    def held_back(self) -> bool:
        return self.written > 0 and time.monotonic() - self.last_write > 2.0


def _processes(cluster: Cluster, namespace: str, pod: str) -> str:
    return cluster.kubectl("-n", namespace, "exec", pod, "--", "ps", "-o", "args").stdout


@pytest.mark.parametrize("minor", [27, 33], ids=["spdy-1.27", "websocket-1.33"])
def test_a_kubectl_killed_while_its_stdin_is_held_back_leaves_no_process_running(
        cluster: Cluster, namespace: str, minor: int) -> None:
    name = _sleeping_pod(cluster, namespace)
    kubectl = Path(f"/usr/lib/google-cloud-sdk/bin/kubectl.1.{minor}")
    argv = [str(kubectl), "--kubeconfig", str(cluster.kubeconfig),
            "--cache-dir", str(cluster.scratch / f"kube-cache-1.{minor}"),
            "-n", namespace, "exec", "-i", name, "--", "sleep", "3601"]
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, env=cluster._env()) as client:
        assert client.stdin is not None
        feeder = Feeder(client.stdin)
        feeder.start()
        eventually(lambda: "sleep 3601" in _processes(cluster, namespace, name), timeout=30,
                   what="the exec'd sleep running")
        eventually(feeder.held_back, timeout=60, what="kubectl's stdin held back")
        client.kill()
    eventually(lambda: "sleep 3601" not in _processes(cluster, namespace, name), timeout=30,
               what="the exec'd sleep gone")
