"""Port-forward: stream headers and pairing, the agent's session against a real local port,
the kubelet route's refusals, and how `minik port-forward` maps ports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from agent.portforward import PortForwardSession, localhost_dialer
from minik.cli.forward_target import PortMapping, port_mappings
from minik.httpstream import spdy_connection
from minik.httpstream.portforward import (
    StreamKind,
    StreamPairs,
    StreamRejected,
    classify,
)
from minik.httpstream.upgrade import Upgraded
from tests.unit.apitest import eventually
from tests.unit.test_kubelet_server import TOKEN, Node, kubelet, make_pod, node  # noqa: F401


def test_a_streams_headers_give_its_type_port_and_request() -> None:
    headers = {"streamtype": "data", "port": "8080", "requestid": "4"}
    assert classify(3, headers) == StreamKind("data", 8080, "4")


@pytest.mark.parametrize("headers,problem", [
    ({"streamtype": "data"}, '"port" header is required'),
    ({"streamtype": "data", "port": "http"}, 'unable to parse "http" as a port'),
    ({"streamtype": "data", "port": "65536"}, 'unable to parse "65536" as a port'),
    ({"streamtype": "data", "port": "0"}, 'port "0" must be > 0'),
    ({"port": "80"}, '"streamtype" header is required'),
    ({"port": "80", "streamtype": "stdin"}, 'invalid stream type "stdin"'),
])
def test_streams_without_a_port_and_a_known_type_are_rejected(
        headers: dict[str, str], problem: str) -> None:
    with pytest.raises(StreamRejected, match=problem):
        classify(1, headers)


def test_a_client_without_request_ids_gets_the_kubelets_guess_from_stream_ids() -> None:
    assert classify(5, {"streamtype": "error", "port": "80"}).request_id == "5"
    assert classify(7, {"streamtype": "data", "port": "80"}).request_id == "5"


def test_streams_pair_by_request_in_either_order_and_a_repeated_type_is_refused() -> None:
    pairs: StreamPairs[str] = StreamPairs()
    pair, created = pairs.add(StreamKind("data", 80, "1"), "data-1")
    assert created and not pair.complete and len(pairs) == 1
    with pytest.raises(StreamRejected, match="data stream already assigned"):
        pairs.add(StreamKind("data", 80, "1"), "again")
    other, created = pairs.add(StreamKind("error", 81, "2"), "error-2")
    assert created and other.port == 81
    pair, created = pairs.add(StreamKind("error", 80, "1"), "error-1")
    assert not created and pair.complete and (pair.data, pair.error) == ("data-1", "error-1")
    assert pairs.expire("1") is None, "a completed pair is no longer waiting"
    assert pairs.expire("2") is other and len(pairs) == 0


class PodPort:
    """A TCP server standing in for the pod: it answers `reply + what it read` at the EOF."""

    def __init__(self) -> None:
        self.connections = 0
        self.closed = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        received = await reader.read()
        if received:
            writer.write(b"reply:" + received)
            await writer.drain()
            writer.close()
        self.closed += 1


class Client:
    """kubectl's side: a SPDY client session over a TCP connection to the agent's session."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.upgraded = Upgraded.over(reader, writer)
        self.connection = spdy_connection.Connection(self.upgraded.send, server=False)
        self.serving = asyncio.create_task(self.connection.serve(self.upgraded.receive))

    async def forward(self, port: int, request_id: int
                      ) -> tuple[spdy_connection.Stream, spdy_connection.Stream]:
        headers = {"port": str(port), "requestid": str(request_id)}
        error = await self.connection.open({**headers, "streamtype": "error"})
        await error.close()
        data = await self.connection.open({**headers, "streamtype": "data"})
        return data, error


async def read_all(stream: spdy_connection.Stream) -> bytes:
    """The stream's input to its end (10 s at most)."""
    out = b""
    async with asyncio.timeout(10):
        while chunk := await stream.read():
            out += chunk
    return out


@pytest.fixture
async def agent() -> AsyncIterator[tuple[Client, PodPort, int]]:
    pod = PodPort()
    port = await pod.start()
    sessions: list[asyncio.Task[None]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upgraded = Upgraded.over(reader, writer)
        session = PortForwardSession(upgraded, pod="default/p", uid="uid-p",
                                     dial=localhost_dialer(None, sandbox="sandbox-p"))
        sessions.append(asyncio.create_task(session.run()))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.sockets[0].getsockname()[1])
    client = Client(reader, writer)
    try:
        yield client, pod, port
    finally:
        writer.close()
        client.serving.cancel()
        for task in sessions:
            task.cancel()
        await asyncio.gather(client.serving, *sessions, return_exceptions=True)
        server.close()
        assert pod.server is not None
        pod.server.close()


async def test_connections_are_forwarded_with_half_close_and_end_with_a_fin_on_both_streams(
        agent: tuple[Client, PodPort, int]) -> None:
    client, pod, port = agent
    streams = [await client.forward(port, i) for i in range(3)]
    for i, (data, _) in enumerate(streams):
        await data.write(f"request {i}".encode())
        await data.close()  # the pod answers only at its EOF: the half-close reached it
    for i, (data, error) in enumerate(streams):
        assert await read_all(data) == f"reply:request {i}".encode()
        assert await read_all(error) == b""
    assert pod.connections == 3


async def test_a_refused_port_is_reported_on_the_error_stream_as_the_kubelet_words_it(
        agent: tuple[Client, PodPort, int]) -> None:
    client, _, _ = agent
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    closed_port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    data, error = await client.forward(closed_port, 0)
    assert await read_all(data) == b""
    assert (await read_all(error)).decode() == (
        f"error forwarding port {closed_port} to pod default/p, uid uid-p: failed to execute "
        f'portforward in network namespace "host": failed to connect to localhost:{closed_port} '
        f'inside namespace "sandbox-p", IPv4: dial tcp4 127.0.0.1:{closed_port}: connect: '
        f"connection refused IPv6 dial tcp6 [::1]:{closed_port}: connect: connection refused")


async def test_a_reset_data_stream_closes_the_pod_connection(
        agent: tuple[Client, PodPort, int]) -> None:
    client, pod, port = agent
    data, _ = await client.forward(port, 0)
    await eventually(lambda: pod.connections == 1)
    await data.reset()
    await eventually(lambda: pod.closed == 1)


async def test_the_client_leaving_closes_every_pod_connection(
        agent: tuple[Client, PodPort, int]) -> None:
    client, pod, port = agent
    for i in range(4):
        await client.forward(port, i)
    await eventually(lambda: pod.connections == 4)
    client.writer.close()
    await eventually(lambda: pod.closed == 4)


async def test_streams_with_bad_headers_are_reset(agent: tuple[Client, PodPort, int]) -> None:
    client, _, _ = agent
    try:  # the reset may come before open() sees the reply
        stream = await client.connection.open({"streamtype": "stdin", "port": "80"})
    except ConnectionResetError:
        return
    await eventually(lambda: not stream.open)


async def test_the_kubelet_route_refuses_plain_requests_other_protocols_and_unknown_pods(
        node: Node, kubelet: TestClient) -> None:  # noqa: F811
    node.add(make_pod())
    plain = await kubelet.post("/portForward/default/p")
    assert plain.status == 400 and "Upgrade request required" in (await plain.json())["message"]
    spdy_headers = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1"}
    other = await kubelet.post("/portForward/default/p", headers={
        **spdy_headers, "X-Stream-Protocol-Version": "v4.channel.k8s.io"})
    assert other.status == 403
    assert other.headers.getall("X-Accepted-Stream-Protocol-Versions") == ["portforward.k8s.io"]
    missing = await kubelet.post("/portForward/default/nope", headers=spdy_headers)
    assert missing.status == 404
    wrong_uid = await kubelet.post("/portForward/default/p/other-uid", headers=spdy_headers)
    assert wrong_uid.status == 404
    no_sandbox = await kubelet.post("/portForward/default/p", headers=spdy_headers)
    assert no_sandbox.status == 400
    assert "no running sandbox" in (await no_sandbox.json())["message"]


def _service(target: Any, *, cluster_ip: str = "10.96.0.10") -> dict[str, Any]:
    port: dict[str, Any] = {"name": "web", "port": 8080}
    if target is not None:
        port["targetPort"] = target
    return {"metadata": {"name": "web"},
            "spec": {"clusterIP": cluster_ip, "ports": [port], "selector": {"app": "web"}}}


POD = {"metadata": {"name": "p"}, "spec": {"containers": [
    {"name": "c", "ports": [{"name": "http", "containerPort": 80}]}]}}


@pytest.mark.parametrize("spec,target,expected", [
    ("9000:8080", 80, PortMapping(9000, 80)),
    ("8080", 80, PortMapping(8080, 80)),        # LOCAL is the Service port, as written
    ("web", "http", PortMapping(8080, 80)),     # a named Service port, a named targetPort
    (":8080", None, PortMapping(0, 8080)),      # no targetPort: the port itself
])
def test_a_service_port_becomes_its_target_port_on_the_pod(
        spec: str, target: Any, expected: PortMapping) -> None:
    assert port_mappings((spec,), POD, _service(target)) == [expected]


def test_a_headless_service_forwards_to_its_own_port_number() -> None:
    headless = _service(80, cluster_ip="None")
    assert port_mappings(("8080",), POD, headless) == [PortMapping(8080, 8080)]


def test_a_pods_named_port_is_its_container_port() -> None:
    assert port_mappings(("http", "9000:http"), POD, None) == [
        PortMapping(80, 80), PortMapping(9000, 80)]
