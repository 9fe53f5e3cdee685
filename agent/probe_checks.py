"""The single checks behind probes and lifecycle hooks: exec, HTTP GET, TCP connect.

Each check runs once against one container and reports in the kubelet's
words: `success`; `failure` with the detail Kubernetes puts after
"Liveness probe failed: " (`HTTP probe failed with statuscode: 500`, Go's
`Get "http://...": dial tcp ...: connect: connection refused`, the exec
output); or `unknown` when the probe could not be carried out at all — no
pod IP, a port name the container does not declare, a runtime that refused
the exec. An unknown result counts neither way, as in the kubelet.

Addresses follow `pkg/probe/http`: the action's `host`, else the pod IP; a
port by number or by the name of one of the container's `ports`. HTTPS is
not verified, redirects are not followed (a 3xx is a success), no proxy is
used and no connection is kept alive. Lifecycle hooks share the address
rules and `http_get`, but judge the answer themselves (`agent.hooks`).
Nothing here keeps state between calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import socket
from dataclasses import dataclass
from typing import Literal

import aiohttp
import yarl

from agent.runtime import ExecTimedOut, Runtime, RuntimeFailure
from minik.api.objects import Container, JsonObject

Outcome = Literal["success", "failure", "unknown"]
PROBE_USER_AGENT = "kube-probe/minik"
MAX_OUTPUT = 10 * 1024


@dataclass(frozen=True)
class CheckResult:
    outcome: Outcome
    detail: str = ""


SUCCESS = CheckResult("success")


class CheckError(Exception):
    """The check cannot be carried out: no address to reach, an unknown port name."""


class NoResponse(Exception):
    """An HTTP request got no response; the message is Go's `*url.Error` text."""


def resolve_port(port: int | str | None, container: Container) -> int:
    """A probe's port: a number, a number in a string, or a name from `ports[].name`."""
    if isinstance(port, str) and not port.isdigit():
        named = [p for p in container.get("ports") or [] if p.get("name") == port]
        if not named:
            raise CheckError(f"couldn't find port: {port} in container {container.get('name')!r}")
        port = named[0].get("containerPort")
    if port is None or not 0 < int(port) < 65536:
        raise CheckError(f"invalid port number: {port}")
    return int(port)


def host_port(host: str, port: int | None) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def target_host(action: JsonObject, pod_ip: str | None) -> str:
    host = action.get("host") or pod_ip
    if not host:
        raise CheckError("the pod has no IP address yet")
    return host


def http_url(action: JsonObject, container: Container, pod_ip: str | None) -> str:
    scheme = (action.get("scheme") or "HTTP").lower()
    address = host_port(target_host(action, pod_ip), resolve_port(action.get("port"), container))
    path = action.get("path") or "/"
    return f"{scheme}://{address}{path if path.startswith('/') else '/' + path}"


def http_headers(action: JsonObject, user_agent: str) -> dict[str, str]:
    headers = {"User-Agent": user_agent, "Accept": "*/*"}
    for header in action.get("httpHeaders") or []:
        headers[header["name"]] = header.get("value", "")
    return headers


async def http_get(url: str, headers: dict[str, str], *, timeout: float) -> int:
    """GET `url` and return the response status; `NoResponse` when none came back."""
    connector = aiohttp.TCPConnector(ssl=False, force_close=True)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session,
            session.get(yarl.URL(url, encoded=True), headers=headers,
                        allow_redirects=False) as response,
        ):
            return response.status
    except TimeoutError as e:
        raise NoResponse(f'Get "{url}": context deadline exceeded '
                         "(Client.Timeout exceeded while awaiting headers)") from e
    except aiohttp.ClientConnectorError as e:
        raise NoResponse(f'Get "{url}": {dial_error(e.host, e.port, e.os_error)}') from e
    except (aiohttp.ClientError, OSError) as e:
        raise NoResponse(f'Get "{url}": {e}') from e


def dial_error(host: str, port: int | None, error: OSError) -> str:
    """Go's words for a failed dial: `dial tcp 10.0.0.5:80: connect: connection refused`."""
    address = host_port(host, port)
    if isinstance(error, TimeoutError):
        return f"dial tcp {address}: i/o timeout"
    if isinstance(error, socket.gaierror):
        return f"dial tcp: lookup {host}: {error.strerror or error}"
    if error.errno == errno.ECONNREFUSED:
        return f"dial tcp {address}: connect: connection refused"
    if error.errno:
        reason = os.strerror(error.errno)
        return f"dial tcp {address}: connect: {reason[:1].lower()}{reason[1:]}"
    return f"dial tcp {address}: {error}"


async def http_check(action: JsonObject, container: Container, pod_ip: str | None,
                     *, timeout: float) -> CheckResult:
    try:
        url = http_url(action, container, pod_ip)
        status = await http_get(url, http_headers(action, PROBE_USER_AGENT), timeout=timeout)
    except CheckError as e:
        return CheckResult("unknown", str(e))
    except NoResponse as e:
        return CheckResult("failure", str(e))
    if 200 <= status < 400:
        return SUCCESS
    return CheckResult("failure", f"HTTP probe failed with statuscode: {status}")


async def tcp_check(action: JsonObject, container: Container, pod_ip: str | None,
                    *, timeout: float) -> CheckResult:
    try:
        host = target_host(action, pod_ip)
        port = resolve_port(action.get("port"), container)
    except CheckError as e:
        return CheckResult("unknown", str(e))
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except OSError as e:
        return CheckResult("failure", dial_error(host, port, e))
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return SUCCESS


def exec_output(output: bytes) -> str:
    return output[:MAX_OUTPUT].decode("utf-8", "replace").rstrip()


def exec_timed_out(command: list[str]) -> str:
    return f"command {json.dumps(' '.join(command))} timed out"


async def exec_check(runtime: Runtime, container_id: str, command: list[str],
                     *, timeout: float) -> CheckResult:
    try:
        result = await runtime.exec_run(container_id, command, timeout=timeout)
    except ExecTimedOut:
        return CheckResult("failure", exec_timed_out(command))
    except RuntimeFailure as e:
        return CheckResult("unknown", str(e))
    if result.exit_code == 0:
        return SUCCESS
    return CheckResult("failure", exec_output(result.output))


async def run_probe_check(runtime: Runtime, probe: JsonObject, *, container: Container,
                          container_id: str, pod_ip: str | None, timeout: float) -> CheckResult:
    """Run the one handler a probe declares."""
    if "exec" in probe:
        command = list((probe["exec"] or {}).get("command") or [])
        return await exec_check(runtime, container_id, command, timeout=timeout)
    if "httpGet" in probe:
        return await http_check(probe["httpGet"], container, pod_ip, timeout=timeout)
    if "tcpSocket" in probe:
        return await tcp_check(probe["tcpSocket"], container, pod_ip, timeout=timeout)
    if "grpc" in probe:
        return CheckResult("failure", "gRPC probes are not supported by minik")
    return CheckResult("unknown", "the probe declares no handler")
