"""The dashboard: its local server in front of a real in-process API server (token `t`), and
the `minik dashboard` command."""

from __future__ import annotations

import asyncio
import json
import socket
import webbrowser
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from minik.apiserver.app import create_app
from minik.apiserver.metrics import ApiMetrics
from minik.apiserver.storage import ObjectStorage
from minik.apiserver.tls import ensure_certificates
from minik.cli import dashboard as dashboard_command
from minik.cli.main import cli
from minik.client.aio import AsyncClient
from minik.dashboard.app import make_app, refused_subresource
from minik.home import Home
from minik.kubeconfig import ClusterAccess, write_kubeconfig
from minik.store import MemoryStore


@dataclass
class Dashboard:
    api: TestServer
    page: TestClient
    port: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def dashboard() -> AsyncIterator[Dashboard]:
    api = TestServer(create_app(ObjectStorage(MemoryStore()), token="t", metrics=ApiMetrics()))
    await api.start_server()
    client = AsyncClient(ClusterAccess(server=f"http://127.0.0.1:{api.port}", ca_pem=None,
                                       token="t"))
    await client.request("POST", "/api/v1/namespaces", body={"metadata": {"name": "default"}})
    port = free_port()
    page = TestClient(TestServer(make_app(client, port), host="127.0.0.1", port=port))
    await page.start_server()
    yield Dashboard(api, page, port)
    await page.close()
    await api.close()


async def test_the_page_and_its_script_and_style_are_served_with_their_content_types(
        dashboard: Dashboard) -> None:
    for path, content_type in (("/", "text/html"), ("/dashboard.js", "text/javascript"),
                               ("/dashboard.css", "text/css")):
        response = await dashboard.page.get(path)
        assert response.status == 200, path
        assert response.content_type == content_type
        assert response.charset == "utf-8"
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    html = await (await dashboard.page.get("/")).text()
    assert '<script src="/dashboard.js"' in html


async def test_an_unknown_page_is_not_found(dashboard: Dashboard) -> None:
    response = await dashboard.page.get("/secret.txt")
    assert response.status == 404


async def test_an_api_request_is_relayed_with_the_instances_token_which_the_browser_never_sends(
        dashboard: Dashboard) -> None:
    url = f"http://127.0.0.1:{dashboard.api.port}/api/v1/namespaces"
    async with aiohttp.ClientSession() as direct, direct.get(url) as r:
        assert r.status == 401  # the API wants the token the page does not have
    response = await dashboard.page.get("/api/v1/namespaces/default/configmaps",
                                        headers={"Authorization": "Bearer not-the-token"})
    assert response.status == 200
    assert response.content_type == "application/json"
    assert (await response.json())["kind"] == "ConfigMapList"


async def test_an_error_answer_keeps_its_code_and_status_body(dashboard: Dashboard) -> None:
    response = await dashboard.page.get("/api/v1/namespaces/default/configmaps/missing")
    assert response.status == 404
    body = await response.json()
    assert (body["kind"], body["reason"]) == ("Status", "NotFound")


async def test_a_request_for_another_host_name_is_refused(dashboard: Dashboard) -> None:
    for host in ("evil.example", f"evil.example:{dashboard.port}", "127.0.0.1:1"):
        response = await dashboard.page.get("/api/v1/namespaces", headers={"Host": host})
        assert response.status == 403, host
        assert "Host" in (await response.json())["message"]
    response = await dashboard.page.get("/", headers={"Host": f"localhost:{dashboard.port}"})
    assert response.status == 200


async def test_a_request_from_another_site_is_refused(dashboard: Dashboard) -> None:
    refused = ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
               {"Sec-Fetch-Site": "same-site"})
    for headers in refused:
        response = await dashboard.page.get("/api/v1/namespaces", headers=headers)
        assert response.status == 403, headers
    own = {"Origin": f"http://127.0.0.1:{dashboard.port}", "Sec-Fetch-Site": "same-origin"}
    assert (await dashboard.page.get("/api/v1/namespaces", headers=own)).status == 200


async def test_methods_other_than_get_are_refused_and_nothing_is_written(
        dashboard: Dashboard) -> None:
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        response = await dashboard.page.request(
            method, "/api/v1/namespaces/default/configmaps", json=configmap)
        assert response.status == 405, method
        assert response.headers["Allow"] == "GET, HEAD"
    listed = await (await dashboard.page.get("/api/v1/namespaces/default/configmaps")).json()
    assert listed["items"] == []


async def test_exec_attach_portforward_and_proxy_are_refused(dashboard: Dashboard) -> None:
    for path in ("/api/v1/namespaces/default/pods/web/exec?command=sh",
                 "/api/v1/namespaces/default/pods/web/attach",
                 "/api/v1/namespaces/default/pods/web/portforward",
                 "/api/v1/nodes/node-1/proxy/metrics"):
        response = await dashboard.page.get(path)
        assert response.status == 403, path


async def test_dot_segments_cannot_lead_a_path_past_the_refused_subresources(
    dashboard: Dashboard,
) -> None:
    for path in ("/api/v1/nodes/x/../../nodes/node-1/proxy/metrics",
                 "/api/v1/nodes/x/%2e%2e/%2e%2e/nodes/node-1/proxy/metrics",
                 "/api/v1/namespaces/default/pods/x/../web/exec?command=sh",
                 "/api/v1/namespaces/default/pods/./web/exec?command=sh"):
        reader, writer = await asyncio.open_connection("127.0.0.1", dashboard.port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{dashboard.port}\r\n"
                     "Connection: close\r\n\r\n".encode())
        answer = await reader.read()
        writer.close()
        assert answer.startswith(b"HTTP/1.1 400 "), (path, answer[:200])
        assert b"segment" in answer


def test_a_pod_named_like_a_refused_subresource_is_not_refused() -> None:
    assert refused_subresource("/api/v1/namespaces/default/pods/exec") is None
    assert refused_subresource("/api/v1/namespaces/default/services/proxy") is None
    assert refused_subresource("/api/v1/namespaces/default/pods/web/log") is None
    assert refused_subresource("/api/v1/namespaces/exec/pods/web/exec") == "exec"


async def test_a_watch_asked_as_a_websocket_relays_one_event_per_message(
        dashboard: Dashboard) -> None:
    listed = await (await dashboard.page.get("/api/v1/namespaces/default/configmaps")).json()
    version = listed["metadata"]["resourceVersion"]
    async with dashboard.page.ws_connect(
            f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={version}") as ws:
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer t"}) as direct:
            url = f"http://127.0.0.1:{dashboard.api.port}/api/v1/namespaces/default/configmaps"
            async with direct.post(url, json={"apiVersion": "v1", "kind": "ConfigMap",
                                              "metadata": {"name": "seen"}}) as r:
                assert r.status == 201
        message = await asyncio.wait_for(ws.receive(), 10)
        event = json.loads(message.data)
        assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "seen")


async def test_a_websocket_that_is_not_a_watch_is_refused(dashboard: Dashboard) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await dashboard.page.ws_connect("/api/v1/namespaces/default/configmaps")
    assert refused.value.status == 403


async def test_a_websocket_from_another_site_is_refused(dashboard: Dashboard) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await dashboard.page.ws_connect("/api/v1/namespaces/default/configmaps?watch=1",
                                        origin="http://evil.example")
    assert refused.value.status == 403


async def test_an_unreachable_api_server_is_a_503_status_and_an_error_event() -> None:
    client = AsyncClient(ClusterAccess(server=f"http://127.0.0.1:{free_port()}", ca_pem=None,
                                       token="t"))
    port = free_port()
    page = TestClient(TestServer(make_app(client, port), host="127.0.0.1", port=port))
    await page.start_server()
    try:
        response = await page.get("/api/v1/namespaces")
        assert response.status == 503
        assert "could not be reached" in (await response.json())["message"]
        async with page.ws_connect("/api/v1/namespaces?watch=1&resourceVersion=1") as ws:
            event = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
            assert (event["type"], event["object"]["code"]) == ("ERROR", 503)
            assert (await asyncio.wait_for(ws.receive(), 10)).type == aiohttp.WSMsgType.CLOSE
    finally:
        await page.close()


async def test_stopping_the_dashboard_closes_the_pages_watches_as_going_away(
        dashboard: Dashboard) -> None:
    ws = await dashboard.page.ws_connect("/api/v1/namespaces?watch=1&resourceVersion=1")
    await dashboard.page.server.close()
    message = await asyncio.wait_for(ws.receive(), 10)
    assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE,
                                            aiohttp.WSCloseCode.GOING_AWAY)
    await ws.close()


def home_for(tmp_path: Path, server: str) -> Path:
    home = Home.at(tmp_path / "home").ensure()
    ensure_certificates(home, bind="127.0.0.1")
    write_kubeconfig(home, server=server, token="t")
    return tmp_path / "home"


def test_the_command_fails_clearly_when_the_api_server_cannot_be_reached(
        tmp_path: Path) -> None:
    home = home_for(tmp_path, f"https://127.0.0.1:{free_port()}")
    result = CliRunner().invoke(cli, ["--home", str(home), "dashboard", "--url"])
    assert result.exit_code == 1
    assert "error: the API server at https://127.0.0.1:" in result.output
    assert "cannot be reached" in result.output


def test_the_command_fails_clearly_when_its_port_is_taken(tmp_path: Path) -> None:
    home = home_for(tmp_path, f"https://127.0.0.1:{free_port()}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["--home", str(home), "dashboard", "--port", str(port)])
    assert result.exit_code == 1
    assert f"error: unable to listen on 127.0.0.1:{port}" in result.output


def test_a_browser_is_opened_only_where_a_display_can_show_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    monkeypatch.setattr(dashboard_command.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    dashboard_command._open_browser("http://127.0.0.1:1/")
    assert opened == []  # no console browser taking over the terminal
    monkeypatch.setenv("DISPLAY", ":0")
    dashboard_command._open_browser("http://127.0.0.1:1/")
    assert opened == ["http://127.0.0.1:1/"]
