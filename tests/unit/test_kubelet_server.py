"""The agent's kubelet API on the fake runtime, and the API server's proxy in front of it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient
from yarl import URL

from agent import exec_spdy, labels, log_stream
from agent.fake_runtime import FakeRuntime
from agent.kubelet_server import KubeletServer, serving_context
from agent.log_stream import LogOptions
from agent.runtime import ContainerSpec, ExecResult
from minik.api.resources import REGISTRY
from minik.apiserver import kubelet_client, proxy, proxy_relay
from minik.apiserver.app import create_app
from minik.apiserver.handlers import STORAGE_KEY
from minik.apiserver.metrics import ApiMetrics
from minik.apiserver.routing import resource_request
from minik.apiserver.server import bootstrap_namespaces
from minik.apiserver.storage import ObjectStorage
from minik.apiserver.tls import ensure_certificates
from minik.home import Home
from minik.httpstream import liveness, spdy_connection, upgrade
from minik.httpstream.channels import V4, V5
from minik.store import MemoryStore
from tests.unit.apitest import UncancellingServer, eventually
from tests.unit.test_upgrade import answering

PROTOCOL_V4, PROTOCOL_V5 = V4.name, V5.name
INSTANCE = "unit"
TOKEN = "node-token"
IMAGE = "minik/busybox:1.35"


def make_pod(name: str = "p", containers: tuple[str, ...] = ("c",), *,
             phase: str = "Running", node: str | None = "n1") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
            "spec": {"nodeName": node,
                     "containers": [{"name": c, "image": IMAGE} for c in containers]},
            "status": {"phase": phase}}


class Node:
    """A fake runtime holding pods' containers, and the pods the agent knows."""

    def __init__(self) -> None:
        self.runtime = FakeRuntime(images=(IMAGE,))
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.released = asyncio.Event()
        self._track_log_streams()

    def _track_log_streams(self) -> None:
        logs = self.runtime.logs

        async def tracked(*args: Any, **kwargs: Any) -> AsyncIterator[bytes]:
            try:
                async for chunk in logs(*args, **kwargs):
                    yield chunk
            finally:
                self.released.set()

        self.runtime.logs = tracked  # type: ignore[method-assign]

    def add(self, pod: dict[str, Any]) -> dict[str, Any]:
        self.pods[(pod["metadata"]["namespace"], pod["metadata"]["name"])] = pod
        return pod

    async def run(self, pod: dict[str, Any], container: str = "c", *, attempt: int = 0,
                  stdin: bool = False, tty: bool = False) -> str:
        spec = ContainerSpec(
            name=labels.container_name_for(INSTANCE, pod, container, attempt), image=IMAGE,
            labels=labels.container_labels(INSTANCE, pod, container, "hash", attempt),
            stdin_open=stdin, tty=tty)
        container_id = await self.runtime.create(spec)
        await self.runtime.start(container_id)
        return container_id

    def server(self) -> KubeletServer:
        return KubeletServer(self.runtime, instance=INSTANCE, token=TOKEN,
                             pod_lookup=lambda ns, name: self.pods.get((ns, name)))


@pytest.fixture
def node() -> Node:
    return Node()


@pytest.fixture
async def kubelet(node: Node) -> AsyncIterator[TestClient]:
    server = UncancellingServer(node.server().app())
    client = TestClient(server, headers={"Authorization": f"Bearer {TOKEN}"})
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def _error(response: aiohttp.ClientResponse, code: int) -> str:
    body = await response.json()
    assert response.status == code, body
    assert body["kind"] == "Status" and body["code"] == code
    return body["message"]


async def _frames(ws: aiohttp.ClientWebSocketResponse) -> list[tuple[int, bytes]]:
    frames = []
    async for message in ws:
        assert message.type == WSMsgType.BINARY
        frames.append((message.data[0], message.data[1:]))
    return frames


def _status(frames: list[tuple[int, bytes]]) -> dict[str, Any]:
    assert frames and frames[-1][0] == 3, frames
    return json.loads(frames[-1][1])


LOGS = "/containerLogs/default/p/c"


async def test_logs_are_the_containers_output_as_plain_text(node: Node,
                                                            kubelet: TestClient) -> None:
    container_id = await node.run(node.add(make_pod()))
    node.runtime.write_log(container_id, b"one\ntwo\nthree\n")
    response = await kubelet.get(LOGS)
    assert response.status == 200
    assert response.content_type == "text/plain"
    assert await response.text() == "one\ntwo\nthree\n"
    tail = await kubelet.get(LOGS, params={"tailLines": "1", "timestamps": "true"})
    assert (await tail.text()).endswith("Z three\n")
    limited = await kubelet.get(LOGS, params={"limitBytes": "5"})
    assert await limited.text() == "one\nt"


async def test_followed_logs_stream_lines_written_later_until_the_container_stops(
        node: Node, kubelet: TestClient) -> None:
    container_id = await node.run(node.add(make_pod()))
    node.runtime.write_log(container_id, b"first\n")
    response = await kubelet.get(LOGS, params={"follow": "true"})
    assert await response.content.readline() == b"first\n"
    node.runtime.write_log(container_id, b"later\n")
    assert await response.content.readline() == b"later\n"
    node.runtime.exit(container_id, 0)
    assert await response.content.read() == b""


@pytest.fixture
def quick_liveness(monkeypatch: pytest.MonkeyPatch) -> None:
    """Look at idle connections every 50 ms instead of every second."""
    monkeypatch.setattr(log_stream, "LIVENESS_CHECK", 0.05)
    monkeypatch.setattr(proxy_relay, "LIVENESS_CHECK", 0.05)
    monkeypatch.setattr(liveness, "CHECK_INTERVAL", 0.05)
    monkeypatch.setattr(liveness, "KEEPALIVE_INTERVAL", 0.1)


@pytest.mark.usefixtures("quick_liveness")
async def test_a_follower_that_goes_away_releases_the_log_stream(node: Node) -> None:
    kubelet = node.server()
    port = await kubelet.start("127.0.0.1", 0)
    container_id = await node.run(node.add(make_pod()))
    node.runtime.write_log(container_id, b"first\n")
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            response = await http.get(f"http://127.0.0.1:{port}{LOGS}?follow=true")
            assert await response.content.readline() == b"first\n"
            assert not node.released.is_set()
            response.close()
            async with asyncio.timeout(5):
                await node.released.wait()
    finally:
        await kubelet.stop()


async def test_previous_logs_come_from_the_last_terminated_attempt(
        node: Node, kubelet: TestClient) -> None:
    pod = node.add(make_pod())
    first = await node.run(pod)
    node.runtime.write_log(first, b"crashed run\n")
    message = await _error(await kubelet.get(LOGS, params={"previous": "true"}), 400)
    assert message == 'previous terminated container "c" in pod "p" not found'
    node.runtime.exit(first, 1)
    second = await node.run(pod, attempt=1)
    node.runtime.write_log(second, b"current run\n")
    assert await (await kubelet.get(LOGS, params={"previous": "true"})).text() == "crashed run\n"
    assert await (await kubelet.get(LOGS)).text() == "current run\n"


async def test_unknown_pods_containers_and_bad_options_are_status_errors(
        node: Node, kubelet: TestClient) -> None:
    node.add(make_pod())
    assert await _error(await kubelet.get("/containerLogs/default/nosuch/c"), 404) == \
        'pods "nosuch" not found'
    assert await _error(await kubelet.get("/containerLogs/default/p/x"), 400) == \
        "container x is not valid for pod p"
    assert "waiting to start" in await _error(await kubelet.get(LOGS), 400)
    assert "tailLines" in await _error(await kubelet.get(LOGS, params={"tailLines": "-1"}), 400)
    both = {"sinceSeconds": "5", "sinceTime": "2024-01-01T00:00:00Z"}
    assert "at most one" in await _error(await kubelet.get(LOGS, params=both), 400)


async def test_requests_without_the_token_are_refused(node: Node, kubelet: TestClient) -> None:
    response = await kubelet.get(LOGS, headers={"Authorization": "Bearer wrong"})
    assert await _error(response, 401) == "Unauthorized"


def test_since_seconds_counts_back_from_now() -> None:
    now = datetime.fromisoformat("2024-05-01T12:00:00+00:00")
    options = LogOptions.parse({"sinceSeconds": "60"}, now=now)
    assert options.since == datetime.fromisoformat("2024-05-01T11:59:00+00:00")


EXEC = "/exec/default/p/c"


def _exec_query(*command: str, stdin: bool = False) -> list[tuple[str, str]]:
    query = [("command", word) for word in command]
    query += [("stdout", "true"), ("stderr", "true")]
    return query + ([("stdin", "true")] if stdin else [])


async def test_exec_runs_the_command_in_the_running_container_and_reports_its_exit_code(
        node: Node, kubelet: TestClient) -> None:
    container_id = await node.run(node.add(make_pod()))
    node.runtime.on_exec(["sh", "-c", "echo hi; exit 3"], ExecResult(3, b"hi\n"))
    ws = await kubelet.ws_connect(EXEC, params=_exec_query("sh", "-c", "echo hi; exit 3"),
                                  protocols=(PROTOCOL_V5,))
    assert ws.protocol == PROTOCOL_V5
    frames = await _frames(ws)
    assert frames[0] == (1, b"hi\n")
    status = _status(frames)
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"][0]["message"] == "3"
    assert ws.close_code == 1000
    assert node.runtime.called("exec") == [(container_id, ("sh", "-c", "echo hi; exit 3"))]


async def test_exec_with_stdin_feeds_the_process_until_the_client_closes_stdin(
        node: Node, kubelet: TestClient) -> None:
    await node.run(node.add(make_pod()))
    ws = await kubelet.ws_connect(EXEC, params=_exec_query("cat", stdin=True),
                                  protocols=(PROTOCOL_V4, PROTOCOL_V5))
    assert ws.protocol == PROTOCOL_V4
    await ws.close()
    ws = await kubelet.ws_connect(EXEC, params=_exec_query("cat", stdin=True),
                                  protocols=(PROTOCOL_V5,))
    await ws.send_bytes(b"\x00hello\n")
    await ws.send_bytes(b"\xff\x00")
    frames = await _frames(ws)
    assert frames[0] == (1, b"hello\n")
    assert _status(frames) == {"metadata": {}, "status": "Success"}


async def test_exec_errors_before_the_upgrade_are_status_answers(
        node: Node, kubelet: TestClient) -> None:
    pod = node.add(make_pod())
    container_id = await node.run(pod)
    assert "Upgrade request required" in await _error(
        await kubelet.get(EXEC, params=_exec_query("ls")), 400)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await kubelet.ws_connect(EXEC, params=_exec_query("ls"), protocols=("v9.channel.k8s.io",))
    assert refused.value.status == 400
    assert "at least one command" in await _error(
        await kubelet.get(EXEC, params={"stdout": "true"}), 400)
    node.runtime.exit(container_id, 0)
    assert await _error(await kubelet.get(EXEC, params=_exec_query("ls")), 400) == \
        'container "c" in pod "p" is not running'


async def test_attach_follows_the_containers_output_until_it_stops(
        node: Node, kubelet: TestClient) -> None:
    container_id = await node.run(node.add(make_pod()))
    node.runtime.write_log(container_id, b"before attach\n")
    ws = await kubelet.ws_connect("/attach/default/p/c", params={"stdout": "true"},
                                  protocols=(PROTOCOL_V5,))
    node.runtime.write_log(container_id, b"after attach\n")
    assert (await ws.receive_bytes()) == b"\x01after attach\n"
    node.runtime.exit(container_id, 0)
    assert _status(await _frames(ws))["status"] == "Success"


async def test_an_attach_to_a_container_that_ends_before_it_took_hold_is_refused(
        node: Node, kubelet: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """`kubectl debug -it -- ps`: the ps is over before the attach; the refusal sends
    kubectl to the container's logs, where its output is."""
    container_id = await node.run(node.add(make_pod()))
    attach = node.runtime.attach

    async def attach_as_it_exits(cid: str, *, stdin: bool, tty: bool) -> Any:
        session = await attach(cid, stdin=stdin, tty=tty)
        node.runtime.exit(container_id, 0)
        return session

    monkeypatch.setattr(node.runtime, "attach", attach_as_it_exits)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await kubelet.ws_connect("/attach/default/p/c", params={"stdout": "true"},
                                 protocols=(PROTOCOL_V5,))
    assert refused.value.status == 400


async def test_attach_passes_stdin_and_resizes_to_the_container_and_outlives_the_end_of_stdin(
        node: Node, kubelet: TestClient) -> None:
    pod = make_pod()
    pod["spec"]["containers"][0].update(stdin=True, tty=True)
    container_id = await node.run(node.add(pod), stdin=True, tty=True)
    container = node.runtime.containers[container_id]
    ws = await kubelet.ws_connect("/attach/default/p/c", protocols=(PROTOCOL_V5,), params={
        "stdin": "true", "stdout": "true", "tty": "true"})
    await ws.send_bytes(b"\x00hello\n")
    await ws.send_bytes(b'\x04{"Width":80,"Height":24}')
    await ws.send_bytes(b"\xff\x00")
    await eventually(lambda: container.tty_size == (80, 24))
    assert container.stdin == b"hello\n"
    node.runtime.write_log(container_id, b"got hello\n")
    assert (await ws.receive_bytes()) == b"\x01got hello\n"
    assert node.runtime.containers[container_id].state == "running"
    node.runtime.exit(container_id, 0)
    assert _status(await _frames(ws))["status"] == "Success"


# The API server's side: pods/log and pods/exec proxied to the agent over TLS.


ProxyCall = Callable[..., Awaitable[aiohttp.ClientResponse]]


@web.middleware
async def routed_to_proxy(request: web.Request, handler: Any) -> web.StreamResponse:
    """What handlers.get_object/create_object do once wired: the two-line change."""
    if "version" in request.match_info and "tail" in request.match_info:
        target = resource_request(request)
        if (serve := proxy.handler(request.method, target)) is not None:
            return await serve(request, request.app[STORAGE_KEY], target)
    return await handler(request)


@pytest.fixture
async def api(node: Node, tmp_path: Path
              ) -> AsyncIterator[tuple[aiohttp.ClientSession, ObjectStorage]]:
    """An API server run as `minik up` runs it (no handler cancellation), with the agent."""
    home = Home(tmp_path)
    ensure_certificates(home, bind="127.0.0.1")
    kubelet = node.server()
    port = await kubelet.start("127.0.0.1", 0,
                               ssl_context=serving_context(home.server_cert, home.server_key))
    storage = ObjectStorage(MemoryStore())
    await bootstrap_namespaces(storage)
    await _put(storage, "Node", None, {
        "metadata": {"name": "n1"},
        "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}})
    app = create_app(storage, token="api-token", metrics=ApiMetrics())
    app.middlewares.append(routed_to_proxy)
    kubelet_client.install(app, ca_file=home.ca_cert, token=TOKEN)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    client = aiohttp.ClientSession(f"http://127.0.0.1:{runner.addresses[0][1]}",
                                   headers={"Authorization": "Bearer api-token"})
    try:
        yield client, storage
    finally:
        await client.close()
        await runner.cleanup()
        await kubelet.stop()


async def _put(storage: ObjectStorage, kind: str, namespace: str | None,
               obj: dict[str, Any]) -> None:
    rt = REGISTRY.by_kind("v1", kind)
    assert rt is not None
    await storage.store.create(rt.key(namespace, obj["metadata"]["name"]), obj)


POD = "/api/v1/namespaces/default/pods/p"


async def _running_pod(node: Node, storage: ObjectStorage) -> str:
    """Pod "p", stored in the API and running on the node; its container's id."""
    pod = node.add(make_pod())
    await _put(storage, "Pod", "default", pod)
    return await node.run(pod)


async def test_the_api_server_streams_followed_logs_from_the_agent(
        node: Node, api: tuple[aiohttp.ClientSession, ObjectStorage]) -> None:
    client, storage = api
    pod = node.add(make_pod())
    await _put(storage, "Pod", "default", pod)
    container_id = await node.run(pod)
    node.runtime.write_log(container_id, b"first\n")
    response = await client.get(POD + "/log", params={"follow": "true"})
    assert response.status == 200
    assert await response.content.readline() == b"first\n"
    node.runtime.write_log(container_id, b"later\n")
    assert await response.content.readline() == b"later\n"
    node.runtime.exit(container_id, 0)
    assert await response.content.read() == b""


@pytest.mark.usefixtures("quick_liveness")
async def test_a_log_follower_leaving_the_api_server_releases_the_agents_stream(
        node: Node, api: tuple[aiohttp.ClientSession, ObjectStorage]) -> None:
    client, storage = api
    pod = node.add(make_pod())
    await _put(storage, "Pod", "default", pod)
    container_id = await node.run(pod)
    node.runtime.write_log(container_id, b"first\n")
    response = await client.get(POD + "/log", params={"follow": "true"})
    assert await response.content.readline() == b"first\n"
    response.close()
    async with asyncio.timeout(5):
        await node.released.wait()


async def test_the_api_server_passes_the_agents_errors_on_with_their_code(
        node: Node, api: tuple[aiohttp.ClientSession, ObjectStorage]) -> None:
    client, storage = api
    await _running_pod(node, storage)
    message = await _error(await client.get(POD + "/log", params={"previous": "true"}), 400)
    assert message == 'previous terminated container "c" in pod "p" not found'


async def test_the_api_server_checks_the_pod_before_asking_the_agent(
        node: Node, api: tuple[aiohttp.ClientSession, ObjectStorage]) -> None:
    client, storage = api
    await _put(storage, "Pod", "default", make_pod("two", ("a", "b")))
    await _put(storage, "Pod", "default", make_pod("pending", node=None))
    await _put(storage, "Pod", "default", make_pod("done", phase="Succeeded"))
    base = "/api/v1/namespaces/default/pods"
    assert await _error(await client.get(f"{base}/nosuch/log"), 404) == 'pods "nosuch" not found'
    assert await _error(await client.get(f"{base}/two/log"), 400) == \
        "a container name must be specified for pod two, choose one of: [a b]"
    assert await _error(await client.get(f"{base}/two/log", params={"container": "x"}), 400) == \
        "container x is not valid for pod two"
    assert await _error(await client.get(f"{base}/pending/log"), 400) == \
        "pod pending does not have a host assigned"
    assert await _error(await client.get(f"{base}/done/exec", params={"command": "ls"}), 400) \
        == "cannot exec into a container in a completed pod; current phase is Succeeded"


async def test_the_api_server_relays_exec_over_websocket_with_the_exit_code(
        node: Node, api: tuple[aiohttp.ClientSession, ObjectStorage]) -> None:
    client, storage = api
    await _running_pod(node, storage)
    node.runtime.on_exec(["sh", "-c", "exit 3"], ExecResult(3, b"bye\n"))
    ws = await client.ws_connect(POD + "/exec", protocols=(PROTOCOL_V5,), params=[
        ("command", "sh"), ("command", "-c"), ("command", "exit 3"), ("container", "c"),
        ("stdout", "true"), ("stderr", "true")])
    assert ws.protocol == PROTOCOL_V5
    frames = await _frames(ws)
    assert frames[0] == (1, b"bye\n")
    assert _status(frames)["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert ws.close_code == 1000


async def test_an_exec_the_agent_refuses_is_answered_with_the_agents_status(
        node: Node, api: tuple[aiohttp.ClientSession, ObjectStorage]) -> None:
    client, storage = api
    pod = node.add(make_pod())
    await _put(storage, "Pod", "default", pod)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(POD + "/exec", protocols=(PROTOCOL_V5,),
                                params={"command": "ls", "stdout": "true"})
    assert refused.value.status == 400
    spdy_fallback = await client.post(POD + "/exec", params={"command": "ls", "stdout": "true"})
    assert await _error(spdy_fallback, 400) == 'container "c" in pod "p" is not running'


class SpdyExec:
    """kubectl's side of an exec over SPDY: streams opened as client-go opens them."""

    def __init__(self, upgraded: upgrade.Upgraded, protocol: str) -> None:
        self.protocol = protocol
        self.connection = spdy_connection.Connection(upgraded.send, server=False)
        self.serving = asyncio.create_task(self.connection.serve(upgraded.receive))
        self.upgraded = upgraded
        self.streams: dict[str, spdy_connection.Stream] = {}

    @classmethod
    async def start(cls, url: URL, query: list[tuple[str, str]], *, token: str,
                    versions: tuple[str, ...] = ("v4.channel.k8s.io",),
                    ssl_context: Any = None) -> SpdyExec | upgrade.Refusal:
        headers = [("Authorization", f"Bearer {token}"),
                   *((upgrade.PROTOCOL_VERSION, v) for v in versions)]
        answer = await upgrade.dial(url.with_query(query), method="POST", headers=headers,
                                    ssl_context=ssl_context, timeout=10)
        if isinstance(answer, upgrade.Refusal):
            return answer
        agreed, upgraded = answer
        return cls(upgraded, agreed[upgrade.PROTOCOL_VERSION])

    async def open(self, *kinds: str) -> None:
        for kind in kinds:
            self.streams[kind] = await self.connection.open({"streamtype": kind})

    async def read_all(self, kind: str) -> bytes:
        out = b""
        while chunk := await self.streams[kind].read():
            out += chunk
        return out

    async def close(self) -> None:
        await self.upgraded.close()
        self.serving.cancel()
        await asyncio.gather(self.serving, return_exceptions=True)


def _kubelet_url(kubelet: TestClient, path: str) -> URL:
    return URL(str(kubelet.make_url(path)))


async def _api_url(client: aiohttp.ClientSession, path: str) -> URL:
    """The absolute URL of `path` on the API server the session talks to."""
    async with client.get("/version") as response:
        return response.url.with_path(path)


@contextlib.asynccontextmanager
async def _spdy_exec(url: URL, query: list[tuple[str, str]], *, token: str = TOKEN
                     ) -> AsyncIterator[SpdyExec]:
    """An exec over SPDY, closed on the way out; 10 s at most."""
    async with asyncio.timeout(10):
        session = await SpdyExec.start(url, query, token=token)
        assert isinstance(session, SpdyExec)
        try:
            yield session
        finally:
            await session.close()


async def test_exec_over_spdy_feeds_stdin_and_ends_with_a_status_on_the_error_stream(
        node: Node, kubelet: TestClient) -> None:
    await node.run(node.add(make_pod()))
    async with asyncio.timeout(10):
        session = await SpdyExec.start(_kubelet_url(kubelet, EXEC),
                                       _exec_query("cat", stdin=True), token=TOKEN,
                                       versions=("v5.channel.k8s.io", "v4.channel.k8s.io"))
        assert isinstance(session, SpdyExec) and session.protocol == "v4.channel.k8s.io"
        try:
            await session.open("error", "stdin", "stdout", "stderr")
            await session.streams["stdin"].write(b"over spdy\n")
            await session.streams["stdin"].close()
            assert await session.read_all("stdout") == b"over spdy\n"
            assert await session.read_all("stderr") == b""
            assert json.loads(await session.read_all("error")) == {
                "metadata": {}, "status": "Success"}
        finally:
            await session.close()


async def test_exec_over_spdy_v2_reports_a_failure_as_its_message(
        node: Node, kubelet: TestClient) -> None:
    await node.run(node.add(make_pod()))
    node.runtime.on_exec(["sh", "-c", "exit 3"], ExecResult(3, b"bye\n"))
    async with asyncio.timeout(10):
        session = await SpdyExec.start(_kubelet_url(kubelet, EXEC),
                                       _exec_query("sh", "-c", "exit 3"), token=TOKEN,
                                       versions=("v2.channel.k8s.io",))
        assert isinstance(session, SpdyExec)
        try:
            await session.open("error", "stdout", "stderr")
            assert await session.read_all("stdout") == b"bye\n"
            message = await session.read_all("error")
            assert message.startswith(b"command terminated with non-zero exit code")
        finally:
            await session.close()


async def test_unknown_repeated_and_late_spdy_streams_are_refused(
        node: Node, kubelet: TestClient) -> None:
    await node.run(node.add(make_pod()))
    async with _spdy_exec(_kubelet_url(kubelet, EXEC), _exec_query("cat", stdin=True)) as session:
        await session.open("error")
        for kind in ("bogus", "error"):
            with pytest.raises(ConnectionResetError, match="refused"):
                await session.connection.open({"streamtype": kind})
        await session.open("stdin", "stdout", "stderr")
        with pytest.raises(ConnectionResetError, match="refused"):
            await session.connection.open({"streamtype": "resize"})
        await session.streams["stdin"].write(b"still served\n")
        await session.streams["stdin"].close()
        assert await session.read_all("stdout") == b"still served\n"
        assert json.loads(await session.read_all("error"))["status"] == "Success"


async def test_data_on_streams_minik_does_not_read_never_holds_the_session_back(
        node: Node, kubelet: TestClient) -> None:
    await node.run(node.add(make_pod()))
    async with _spdy_exec(_kubelet_url(kubelet, EXEC), _exec_query("cat", stdin=True)) as session:
        await session.open("error", "stdin", "stdout", "stderr")
        for kind in ("error", "stdout", "stderr"):
            await session.streams[kind].write(b"x" * (3 << 20))
        await session.streams["stdin"].write(b"heard\n")
        await session.streams["stdin"].close()
        assert await session.read_all("stdout") == b"heard\n"


async def test_spdy_upgrades_without_a_common_stream_protocol_are_refused(
        node: Node, kubelet: TestClient) -> None:
    await node.run(node.add(make_pod()))
    refused = await SpdyExec.start(_kubelet_url(kubelet, EXEC), _exec_query("ls"),
                                   token=TOKEN, versions=("v9.channel.k8s.io",))
    assert isinstance(refused, upgrade.Refusal) and refused.status == 403
    assert json.loads(refused.body)["reason"] == "Forbidden"
    assert "v4.channel.k8s.io" in refused.headers[upgrade.ACCEPTED_VERSIONS]
    refused = await SpdyExec.start(_kubelet_url(kubelet, EXEC), _exec_query("ls"),
                                   token=TOKEN, versions=())
    assert isinstance(refused, upgrade.Refusal) and refused.status == 400


async def test_a_spdy_client_that_never_opens_its_streams_is_cut_off(
        node: Node, kubelet: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exec_spdy, "STREAM_CREATION_TIMEOUT", 0.2)
    await node.run(node.add(make_pod()))
    async with asyncio.timeout(10):
        session = await SpdyExec.start(_kubelet_url(kubelet, EXEC), _exec_query("ls"),
                                       token=TOKEN)
        assert isinstance(session, SpdyExec)
        try:
            await session.open("error")
            await session.connection.closed.wait()
        finally:
            await session.close()


async def test_the_api_server_relays_exec_over_spdy_to_the_agent(
        node: Node, api: tuple[aiohttp.ClientSession, ObjectStorage]) -> None:
    client, storage = api
    await _running_pod(node, storage)
    node.runtime.on_exec(["sh", "-c", "exit 3"], ExecResult(3, b"bye\n"))
    query = [*_exec_query("sh", "-c", "exit 3"), ("container", "c")]
    url = await _api_url(client, POD + "/exec")
    async with asyncio.timeout(10):
        session = await SpdyExec.start(url, query, token="api-token")
        assert isinstance(session, SpdyExec) and session.protocol == "v4.channel.k8s.io"
        try:
            await session.open("error", "stdout", "stderr")
            assert await session.read_all("stdout") == b"bye\n"
            status = json.loads(await session.read_all("error"))
            assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
        finally:
            await session.close()
        refused = await SpdyExec.start(url, query, token="api-token",
                                       versions=("v9.channel.k8s.io",))
        assert isinstance(refused, upgrade.Refusal) and refused.status == 403


AgentAnswering = Callable[[bytes | None], Awaitable[str]]


@pytest.fixture
async def agent_answering(api: tuple[aiohttp.ClientSession, ObjectStorage], tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AgentAnswering]:
    """Pod "q" on a node whose agent answers every request with the given bytes, or never
    (None), within 0.2 s of the API server's patience; the pod's API path."""
    monkeypatch.setattr(upgrade, "DIAL_TIMEOUT", 0.2)
    _, storage = api
    home = Home(tmp_path)
    servers: list[asyncio.Server] = []

    async def start(answer: bytes | None) -> str:
        server = await asyncio.start_server(answering(answer), "127.0.0.1", 0, ssl=serving_context(
            home.server_cert, home.server_key))
        servers.append(server)
        await _put(storage, "Node", None, {
            "metadata": {"name": "n2"},
            "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                       "daemonEndpoints": {"kubeletEndpoint": {
                           "Port": server.sockets[0].getsockname()[1]}}}})
        await _put(storage, "Pod", "default", make_pod("q", node="n2"))
        return "/api/v1/namespaces/default/pods/q"

    yield start
    for server in servers:
        server.close()


@pytest.mark.parametrize(("answer", "code", "problem"), [
    (None, 503, "no answer within 0.2s"),
    (b"HTTP/1.1 403 Forbidden\r\nContent-Length: x\r\n\r\n", 502,
     "a refusal with a malformed Content-Length"),
])
async def test_an_agent_that_answers_an_spdy_upgrade_badly_or_never_is_a_clear_status(
        api: tuple[aiohttp.ClientSession, ObjectStorage], agent_answering: AgentAnswering,
        answer: bytes | None, code: int, problem: str) -> None:
    client, _ = api
    url = await _api_url(client, await agent_answering(answer) + "/exec")
    refused = await asyncio.wait_for(
        SpdyExec.start(url, _exec_query("ls"), token="api-token"), 5)
    assert isinstance(refused, upgrade.Refusal) and refused.status == code
    status = json.loads(refused.body)
    assert status["code"] == code and problem in status["message"]
    assert status["message"].startswith("error dialing backend: the node agent at 127.0.0.1")


async def test_an_agent_that_never_answers_a_websocket_or_a_log_request_is_a_503(
        api: tuple[aiohttp.ClientSession, ObjectStorage],
        agent_answering: AgentAnswering) -> None:
    client, _ = api
    pod = await agent_answering(None)
    async with asyncio.timeout(5):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect(pod + "/exec", protocols=(PROTOCOL_V5,),
                                    params=_exec_query("ls"))
        assert refused.value.status == 503
        assert "no answer within 0.2s" in await _error(await client.get(pod + "/log"), 503)


async def test_the_api_server_relays_text_stdin_to_the_agent_on_any_subprotocol(
        node: Node, api: tuple[aiohttp.ClientSession, ObjectStorage]) -> None:
    client, storage = api
    await _running_pod(node, storage)
    query = [*_exec_query("cat", stdin=True), ("container", "c")]
    async with asyncio.timeout(10):
        ws = await client.ws_connect(POD + "/exec", protocols=(PROTOCOL_V5,), params=query)
        await ws.send_str("\x00typed as text\n")
        await ws.send_bytes(b"\xff\x00")
        frames = await _frames(ws)
        assert frames[0] == (1, b"typed as text\n")
        ws = await client.ws_connect(POD + "/exec", params=query)  # no subprotocol offered
        assert ws.protocol is None
        await ws.send_str("\x00unnamed\n")
        await ws.close()


def _capture_sessions(node: Node) -> list[Any]:
    """The exec sessions the fake runtime hands out, as they are opened."""
    sessions: list[Any] = []
    opened = node.runtime.exec

    async def exec_and_keep(*args: Any, **kwargs: Any) -> Any:
        sessions.append(await opened(*args, **kwargs))
        return sessions[-1]

    node.runtime.exec = exec_and_keep  # type: ignore[method-assign]
    return sessions


async def test_spdy_resizes_arrive_whole_however_the_frames_split_them(
        node: Node, kubelet: TestClient) -> None:
    await node.run(node.add(make_pod()))
    sessions = _capture_sessions(node)
    query = [("command", "sh"), ("stdin", "true"), ("stdout", "true"), ("tty", "true")]
    async with asyncio.timeout(10):
        session = await SpdyExec.start(_kubelet_url(kubelet, EXEC), query, token=TOKEN)
        assert isinstance(session, SpdyExec)
        try:
            await session.open("error", "stdin", "stdout", "resize")
            resize = session.streams["resize"]
            await resize.write(b'{"Width":80,"Height":24}\n{"Width":100,')
            await resize.write(b'"Height":30}\n')
            await eventually(lambda: sessions[0].size == (100, 30))
        finally:
            await session.close()


async def test_a_resize_stream_full_of_other_json_costs_linear_time(
        node: Node, kubelet: TestClient) -> None:
    await node.run(node.add(make_pod()))
    sessions = _capture_sessions(node)
    query = [("command", "sh"), ("stdin", "true"), ("stdout", "true"), ("tty", "true")]
    async with _spdy_exec(_kubelet_url(kubelet, EXEC), query) as session:
        await session.open("error", "stdin", "stdout", "resize")
        resize = session.streams["resize"]
        await resize.write(b"1 " * (1 << 19) + b'[1] "x" null {"Width":90,')
        await resize.write(b'"Height":20} {"Width":100,"Height":30}')
        await eventually(lambda: sessions[0].size == (100, 30))  # 10 s and more when quadratic


async def test_a_resize_stream_that_is_not_json_is_dropped_without_holding_the_session_back(
        node: Node, kubelet: TestClient) -> None:
    await node.run(node.add(make_pod()))
    sessions = _capture_sessions(node)
    query = [("command", "cat"), ("stdin", "true"), ("stdout", "true"), ("tty", "true")]
    async with _spdy_exec(_kubelet_url(kubelet, EXEC), query) as session:
        await session.open("error", "stdin", "stdout", "resize")
        await session.streams["resize"].write(b"<not json>" * (3 << 17))
        await session.streams["stdin"].write(b"typed\n")
        await session.streams["stdin"].close()
        assert await session.read_all("stdout") == b"typed\n"
        assert sessions[0].size is None


async def test_a_spdy_client_that_goes_away_ends_the_session(
        node: Node, kubelet: TestClient) -> None:
    await node.run(node.add(make_pod()))
    sessions = _capture_sessions(node)
    async with asyncio.timeout(10):
        session = await SpdyExec.start(_kubelet_url(kubelet, EXEC),
                                       _exec_query("cat", stdin=True), token=TOKEN)
        assert isinstance(session, SpdyExec)
        await session.open("error", "stdin", "stdout", "stderr")
        await session.close()
        await eventually(lambda: sessions[0].closed)


class DeafExecSession:
    """A process that never reads its stdin (`sleep`): writing to it waits for good."""

    def __init__(self) -> None:
        self.heard = asyncio.Event()  # the first stdin reached it
        self.closed = asyncio.Event()

    async def read(self) -> tuple[int, bytes] | None:
        await self.closed.wait()
        return None

    async def write_stdin(self, data: bytes) -> None:
        self.heard.set()
        await asyncio.Event().wait()

    async def close_stdin(self) -> None:
        return None

    async def resize(self, width: int, height: int) -> None:
        return None

    async def wait(self) -> int:
        await self.closed.wait()
        return 137

    async def close(self) -> None:
        self.closed.set()


SLEEP = _exec_query("sleep", "3601", stdin=True)


def _deaf_exec(node: Node) -> DeafExecSession:
    deaf = DeafExecSession()

    async def exec_deaf(*_args: Any, **_kwargs: Any) -> DeafExecSession:
        return deaf

    node.runtime.exec = exec_deaf  # type: ignore[method-assign]
    return deaf


async def _quit_flooding_stdin(session: SpdyExec, deaf: DeafExecSession) -> None:
    """Send stdin until it is held back, then quit as a killed kubectl does."""
    await session.open("error", "stdin", "stdout", "stderr")
    flood = asyncio.create_task(session.streams["stdin"].write(b"x" * (32 << 20)))
    await deaf.heard.wait()
    await eventually(lambda: session.upgraded.transport is not None
                     and session.upgraded.transport.get_write_buffer_size() > 0)
    transport = session.upgraded.transport
    assert transport is not None
    transport.abort()  # the socket closes with its unsent bytes: no reset, a FIN behind them
    flood.cancel()
    await asyncio.gather(flood, return_exceptions=True)


@pytest.mark.usefixtures("quick_liveness")
async def test_a_spdy_client_that_quits_while_its_stdin_is_held_back_ends_the_session(
        node: Node, kubelet: TestClient) -> None:
    await node.run(node.add(make_pod()))
    deaf = _deaf_exec(node)
    async with _spdy_exec(_kubelet_url(kubelet, EXEC), SLEEP) as session:
        await _quit_flooding_stdin(session, deaf)
        await deaf.closed.wait()


@pytest.fixture
async def deaf_behind_api(node: Node, api: tuple[aiohttp.ClientSession, ObjectStorage]
                          ) -> tuple[aiohttp.ClientSession, DeafExecSession]:
    """A client of the API server, and the deaf process an exec of pod "p" will run."""
    client, storage = api
    await _running_pod(node, storage)
    return client, _deaf_exec(node)


@pytest.mark.usefixtures("quick_liveness")
async def test_a_client_quitting_behind_the_api_servers_spdy_relay_ends_the_agents_session(
        deaf_behind_api: tuple[aiohttp.ClientSession, DeafExecSession]) -> None:
    client, deaf = deaf_behind_api
    url = await _api_url(client, POD + "/exec")
    async with _spdy_exec(url, [*SLEEP, ("container", "c")], token="api-token") as session:
        await _quit_flooding_stdin(session, deaf)
        await deaf.closed.wait()


@pytest.mark.usefixtures("quick_liveness")
async def test_a_client_quitting_behind_the_api_servers_websocket_relay_ends_the_session(
        deaf_behind_api: tuple[aiohttp.ClientSession, DeafExecSession]) -> None:
    client, deaf = deaf_behind_api
    async with asyncio.timeout(10):
        ws = await client.ws_connect(POD + "/exec", protocols=(PROTOCOL_V5,),
                                     params=[*SLEEP, ("container", "c")])

        async def flood() -> None:
            while True:
                await ws.send_bytes(b"\x00" + b"x" * (1 << 20))

        flooding = asyncio.create_task(flood())
        await deaf.heard.wait()
        liveness.reset_socket(ws.get_extra_info("socket"))  # the client quits
        await deaf.closed.wait()
        flooding.cancel()
        await asyncio.gather(flooding, return_exceptions=True)
