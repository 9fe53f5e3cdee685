"""The kubelet API on real Docker containers, and the real kubectl through the API server.

Every container carries the test's own `minik.dev/instance` label (from
`container_labels`) and is removed by the `engine` fixture.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import select
import shutil
import ssl
import struct
import sys
import termios
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from agent import labels
from agent.kubelet_server import KubeletServer, serving_context
from minik.api.resources import REGISTRY
from minik.apiserver import kubelet_client, proxy
from minik.apiserver.app import READY_KEY, create_app
from minik.apiserver.handlers import STORAGE_KEY
from minik.apiserver.metrics import ApiMetrics
from minik.apiserver.routing import resource_request
from minik.apiserver.server import bootstrap_namespaces
from minik.apiserver.storage import ObjectStorage
from minik.apiserver.tls import ensure_certificates, server_ssl_context
from minik.home import Home
from minik.httpstream.channels import V5
from minik.kubeconfig import write_kubeconfig
from minik.store import MemoryStore
from tests.runtime.conftest import Engine

BUSYBOX = "minik/busybox:1.35"
TOKEN = "node-token"
KUBECTL = os.environ.get("MINIK_TEST_KUBECTL", "/usr/bin/kubectl")
WAIT_FOR_GO = "echo start; while [ ! -f /tmp/go ]; do sleep 0.05; done; echo later; sleep 3600"


@dataclass
class Served:
    """A pod's container on Docker and the kubelet API serving it over TLS."""

    engine: Engine
    pod: dict[str, Any]
    container_id: str
    url: str
    port: int
    home: Home
    client_ssl: ssl.SSLContext

    def session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"})


def fake_pod(name: str = "p") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": str(uuid.uuid4())},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": BUSYBOX}]},
            "status": {"phase": "Running"}}


@pytest.fixture
async def served(engine: Engine, tmp_path: Path) -> AsyncIterator[Served]:
    pod = fake_pod()
    container_id = await engine.run(
        "c", BUSYBOX, command=["sh", "-c", WAIT_FOR_GO],
        labels=labels.container_labels(engine.instance, pod, "c", "hash", 0))
    home = Home(tmp_path / "home").ensure()
    ensure_certificates(home, bind="127.0.0.1")
    server = KubeletServer(engine.runtime, instance=engine.instance, token=TOKEN,
                           pod_lookup=lambda ns, name: pod if (ns, name) == ("default", "p")
                           else None)
    port = await server.start("127.0.0.1", 0,
                              ssl_context=serving_context(home.server_cert, home.server_key))
    client_ssl = ssl.create_default_context(cafile=str(home.ca_cert))
    try:
        yield Served(engine, pod, container_id, f"https://127.0.0.1:{port}", port, home,
                     client_ssl)
    finally:
        await server.stop()


async def test_followed_logs_of_a_docker_container_see_a_line_written_later(
        served: Served) -> None:
    async with served.session() as session, session.get(
            f"{served.url}/containerLogs/default/p/c", params={"follow": "true"},
            ssl=served.client_ssl) as response:
        assert response.status == 200
        assert await response.content.readline() == b"start\n"
        await served.engine.runtime.exec_run(served.container_id, ["touch", "/tmp/go"],
                                             timeout=10)
        assert await response.content.readline() == b"later\n"


async def _exec(served: Served, query: list[tuple[str, str]],
                stdin: bytes | None = None) -> list[tuple[int, bytes]]:
    async with served.session() as session, session.ws_connect(
            f"{served.url}/exec/default/p/c", params=query, protocols=(V5.name,),
            ssl=served.client_ssl) as ws:
        assert ws.protocol == V5.name
        if stdin is not None:
            await ws.send_bytes(b"\x00" + stdin)
            await ws.send_bytes(b"\xff\x00")
        frames = []
        async for message in ws:
            assert message.type == WSMsgType.BINARY
            frames.append((message.data[0], message.data[1:]))
        assert ws.close_code == 1000
        return frames


async def test_exec_in_a_docker_container_reports_output_and_exit_code(served: Served) -> None:
    frames = await _exec(served, [("command", "sh"), ("command", "-c"),
                                  ("command", "echo hi; echo oops >&2; exit 3"),
                                  ("stdout", "true"), ("stderr", "true")])
    assert b"".join(d for c, d in frames if c == 1) == b"hi\n"
    assert b"".join(d for c, d in frames if c == 2) == b"oops\n"
    status = json.loads(frames[-1][1])
    assert frames[-1][0] == 3
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]


async def test_exec_stdin_reaches_a_docker_process_until_the_client_closes_it(
        served: Served) -> None:
    frames = await _exec(served, [("command", "cat"), ("stdin", "true"), ("stdout", "true")],
                         stdin=b"piped\n")
    assert b"".join(d for c, d in frames if c == 1) == b"piped\n"
    assert json.loads(frames[-1][1]) == {"metadata": {}, "status": "Success"}


# The real kubectl against an in-process API server whose pod subresources go to the agent.


@web.middleware
async def routed_to_proxy(request: web.Request, handler: Any) -> web.StreamResponse:
    """What handlers.get_object/create_object do once wired: the two-line change."""
    if "version" in request.match_info and "tail" in request.match_info:
        target = resource_request(request)
        if (serve := proxy.handler(request.method, target)) is not None:
            return await serve(request, request.app[STORAGE_KEY], target)
    return await handler(request)


async def _put(storage: ObjectStorage, kind: str, namespace: str | None,
               obj: dict[str, Any]) -> None:
    rt = REGISTRY.by_kind("v1", kind)
    assert rt is not None
    await storage.store.create(rt.key(namespace, obj["metadata"]["name"]), obj)


@pytest.fixture
async def api_server(served: Served) -> AsyncIterator[Path]:
    """An API server on TLS whose kubeconfig is returned, with the pod and its node."""
    storage = ObjectStorage(MemoryStore())
    await bootstrap_namespaces(storage)
    await _put(storage, "Node", None, {
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
        "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": served.port}}}})
    await _put(storage, "Pod", "default", served.pod)
    app = create_app(storage, token="api-token", metrics=ApiMetrics())
    app.middlewares.append(routed_to_proxy)
    app[READY_KEY].append(True)
    kubelet_client.install(app, ca_file=served.home.ca_cert, token=TOKEN)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ssl_context(served.home))
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield write_kubeconfig(served.home, server=f"https://127.0.0.1:{port}",
                               token="api-token")
    finally:
        await runner.cleanup()


Run = Callable[..., Awaitable[tuple[int, str, str]]]


def _runner(argv: list[str], home: Path) -> Run:
    async def run(*args: str, stdin: bytes = b"") -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            *argv, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env={**os.environ, "HOME": str(home)})
        async with asyncio.timeout(60):
            out, err = await process.communicate(stdin)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    return run


@pytest.fixture
def kubectl(api_server: Path, tmp_path: Path) -> Run:
    if not shutil.which(KUBECTL):
        pytest.skip(f"no kubectl at {KUBECTL}")
    return _runner([KUBECTL, "--kubeconfig", str(api_server), "--cache-dir",
                    str(tmp_path / "kube-cache")], tmp_path)


@pytest.fixture
def minik(api_server: Path, tmp_path: Path) -> list[str]:
    return [sys.executable, "-m", "minik.cli.main", "--kubeconfig", str(api_server)]


async def test_the_real_kubectl_reads_logs_and_execs_through_the_api_server(
        kubectl: Run) -> None:
    code, out, err = await kubectl("logs", "p")
    assert (code, out) == (0, "start\n"), err
    code, out, err = await kubectl("logs", "p", "--previous")
    assert code == 1
    assert 'previous terminated container "c" in pod "p" not found' in err
    code, out, err = await kubectl("exec", "p", "--", "sh", "-c", "echo hi; exit 3")
    assert (code, out) == (3, "hi\n"), err
    assert "command terminated with exit code 3" in err
    code, out, err = await kubectl("exec", "-i", "p", "--", "cat", stdin=b"hello\n")
    assert (code, out) == (0, "hello\n"), err


async def test_minik_logs_and_exec_behave_like_kubectl(minik: list[str], tmp_path: Path) -> None:
    run = _runner(minik, tmp_path)
    code, out, err = await run("logs", "pod/p", "--tail", "1")
    assert (code, out) == (0, "start\n"), err
    code, out, err = await run("logs", "p", "--previous")
    assert code == 1
    assert err == ('Error from server (BadRequest): previous terminated container "c" in pod '
                   '"p" not found\n')
    code, out, err = await run("exec", "p", "--", "sh", "-c", "echo hi; exit 3")
    assert (code, out, err) == (3, "hi\n", "command terminated with exit code 3\n")
    code, out, err = await run("exec", "-i", "p", "-c", "c", "--", "cat", stdin=b"hello\n")
    assert (code, out) == (0, "hello\n"), err
    code, out, err = await run("exec", "p", "-c", "nosuch", "--", "ls")
    assert (code, err) == (1, "Error from server (BadRequest): container nosuch is not valid "
                              "for pod p\n")


async def test_minik_exec_with_a_terminal_sends_its_size_and_passes_keys(
        minik: list[str]) -> None:
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    process = await asyncio.create_subprocess_exec(
        *minik, "exec", "-it", "p", "--", "sh", "-c", "echo ready; read x; stty size; exit 4",
        stdin=secondary, stdout=secondary, stderr=secondary)
    os.close(secondary)
    try:
        seen = await asyncio.to_thread(_read_until, primary, b"ready")
        os.write(primary, b"go\r")
        seen += await asyncio.to_thread(_read_until, primary, b"exit code 4")
        async with asyncio.timeout(30):
            assert await process.wait() == 4
    finally:
        os.close(primary)
    assert b"33 101" in seen


def _read_until(fd: int, token: bytes, timeout: float = 30) -> bytes:
    """Terminal output up to `token` (or what came before the terminal closed)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while token not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
        if not ready:
            break
        try:
            seen += os.read(fd, 4096)
        except OSError:
            break
    assert token in seen, seen
    return seen
