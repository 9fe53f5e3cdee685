"""RestClient's connection reuse: a stale kept-alive connection never sends a POST twice."""

from __future__ import annotations

import http.client
import json
from email.message import Message
from typing import Any

import pytest

from minik.client import rest
from minik.client.rest import ConnectionFailed, RestClient, warning_text
from minik.kubeconfig import ClusterAccess


class Response:
    status = 200
    reason = "OK"

    def __init__(self) -> None:
        self.headers = Message()
        self.headers["Content-Type"] = "application/json"

    def read(self) -> bytes:
        return json.dumps({"kind": "Status", "status": "Success"}).encode()


class Server:
    """Fake connections; each one drops the request numbered `drop_at` (1-based) on it."""

    def __init__(self, drop_at: int | None) -> None:
        self.drop_at = drop_at
        self.received: list[str] = []
        self.connections = 0

    def connect(self, host: str, port: int, **kwargs: Any) -> Any:
        self.connections += 1
        server, requests = self, 0

        class Connection:
            sock = None
            timeout = None

            def request(self, method: str, target: str, **kwargs: Any) -> None:
                nonlocal requests
                requests += 1
                server.received.append(method)
                if requests == server.drop_at:
                    raise http.client.RemoteDisconnected("closed without response")

            def getresponse(self) -> Response:
                return Response()

            def close(self) -> None:
                pass

        return Connection()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Server:
    server = Server(drop_at=2)
    monkeypatch.setattr(rest.http.client, "HTTPSConnection", server.connect)
    return server


@pytest.fixture
def client() -> RestClient:
    return RestClient(ClusterAccess(server="https://127.0.0.1:6443", ca_pem=None, token="t",
                                    insecure=True))


def test_a_get_on_a_stale_connection_is_sent_again(server: Server, client: RestClient) -> None:
    client.request("GET", "/api")
    client.request("GET", "/api")
    assert server.received == ["GET", "GET", "GET"]
    assert server.connections == 2


def test_a_post_on_a_stale_connection_is_not_sent_twice(
        server: Server, client: RestClient) -> None:
    client.request("GET", "/api")
    with pytest.raises(ConnectionFailed):
        client.request("POST", "/api/v1/namespaces/default/pods", body={})
    assert server.received == ["GET", "POST"]


def test_a_long_idle_connection_is_not_reused(
        server: Server, client: RestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    client.request("GET", "/api")
    later = rest.time.monotonic() + rest.IDLE_REUSE + 1
    monkeypatch.setattr(rest.time, "monotonic", lambda: later)
    client.request("POST", "/api/v1/namespaces/default/pods", body={})
    assert server.received == ["GET", "POST"]
    assert server.connections == 2


def test_warning_headers_are_unescaped_and_read_as_utf8() -> None:
    assert warning_text('299 - "unknown field \\"a\\\\x01\\""') == 'unknown field "a\\x01"'
    assert warning_text('299 - "é"'.encode().decode("latin-1")) == "é"
    assert warning_text("not a warning header") == "not a warning header"
