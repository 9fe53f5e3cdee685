"""`minik exec`: run a command in a container, as `kubectl exec` does.

It reads the pod (refusing a completed one, choosing the container as
`minik logs` does), then opens `pods/{name}/exec` as a WebSocket with the
subprotocol `v5.channel.k8s.io`, trusting the kubeconfig's CA and showing
its token. Each message is a channel byte and a payload: stdin goes out on
0 (and `[255, 0]` when it ends), stdout and stderr come back on 1 and 2,
and the last message, on 3, is the Status that carries the exit code.
With `-t` the local terminal is put in raw mode and its size is sent on
channel 4 at the start and on every SIGWINCH. The exit code is
propagated: `command terminated with exit code 3`, and minik exits 3.

When the server refuses the upgrade, the same request is sent once as a
plain GET to read the Status that explains why (a refused WebSocket
handshake carries no body), which is what kubectl's SPDY fallback shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import ssl
import sys
import termios
import threading
import tty as termtty
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import click
from aiohttp import WSMsgType
from yarl import URL

from minik.cli.context import CliContext, fail, handle_errors, pass_context
from minik.cli.logs import choose_container, pod_name, pod_path
from minik.kubeconfig import ClusterAccess

PROTOCOL = "v5.channel.k8s.io"
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
COMPLETED_PHASES = ("Succeeded", "Failed")
NO_TTY = "Unable to use a TTY - input is not a terminal or the right kind of file"


@dataclass(frozen=True)
class Session:
    """Where to connect and what to carry: stdin (-i) and a terminal (-t)."""

    url: URL
    token: str | None
    ssl: ssl.SSLContext
    stdin: bool
    tty: bool


def exec_params(container: str, command: tuple[str, ...], *, stdin: bool,
                tty: bool) -> list[tuple[str, str]]:
    """The query kubectl sends: -it asks for no stderr, since a terminal merges it."""
    params = [("command", word) for word in command] + [("container", container)]
    if stdin:
        params.append(("stdin", "true"))
    params.append(("stdout", "true"))
    params.append(("tty", "true") if tty else ("stderr", "true"))
    return params


def exit_code(status: dict[str, Any] | None) -> int:
    """The exit code a final Status means, printing what kubectl prints for it."""
    if status is None:
        fail("error: the exec session ended without reporting a status")
    if status.get("status") == "Success":
        return 0
    if status.get("reason") == "NonZeroExitCode":
        causes = (status.get("details") or {}).get("causes") or []
        code = next((int(c["message"]) for c in causes if c.get("reason") == "ExitCode"), 1)
        click.echo(f"command terminated with exit code {code}", err=True)
        return code
    fail(str(status.get("message") or "the command failed"))


def client_ssl(access: ClusterAccess) -> ssl.SSLContext:
    if access.insecure:
        return ssl._create_unverified_context()
    context = ssl.create_default_context()
    if access.ca_pem:
        context.load_verify_locations(cadata=access.ca_pem.decode())
    return context


@contextlib.contextmanager
def raw_terminal(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    termtty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _read_stdin(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes]) -> None:
    """Feed stdin to the loop from a daemon thread, which never holds up the exit."""
    def run() -> None:
        fd = sys.stdin.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(queue.put_nowait, data)
            if not data:
                return

    threading.Thread(target=run, name="minik-exec-stdin", daemon=True).start()


async def _send_stdin(ws: aiohttp.ClientWebSocketResponse) -> None:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    _read_stdin(asyncio.get_running_loop(), queue)
    while data := await queue.get():
        await ws.send_bytes(bytes([STDIN]) + data)
    await ws.send_bytes(bytes([CLOSE, STDIN]))


async def _send_sizes(ws: aiohttp.ClientWebSocketResponse) -> None:
    changed = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGWINCH, changed.set)
    try:
        while True:
            size = os.get_terminal_size(sys.stdin.fileno())
            body = json.dumps({"Width": size.columns, "Height": size.lines}).encode()
            await ws.send_bytes(bytes([RESIZE]) + body)
            await changed.wait()
            changed.clear()
    finally:
        loop.remove_signal_handler(signal.SIGWINCH)


async def _receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any] | None:
    """Copy stdout and stderr until the server closes; the Status it sent last."""
    status = None
    async for message in ws:
        if message.type != WSMsgType.BINARY or not message.data:
            continue
        channel, payload = message.data[0], message.data[1:]
        if channel in (STDOUT, STDERR):
            out = sys.stdout.buffer if channel == STDOUT else sys.stderr.buffer
            out.write(payload)
            out.flush()
        elif channel == ERROR:
            status = json.loads(payload)
    return status


async def run_session(session: Session) -> dict[str, Any] | None:
    headers = {"Authorization": f"Bearer {session.token}"} if session.token else {}
    async with aiohttp.ClientSession() as http, http.ws_connect(
            session.url, protocols=(PROTOCOL,), headers=headers, ssl=session.ssl,
            max_msg_size=0) as ws:
        senders = [asyncio.create_task(_send_sizes(ws))] if session.tty else []
        if session.stdin:
            senders.append(asyncio.create_task(_send_stdin(ws)))
        try:
            return await _receive(ws)
        finally:
            for task in senders:
                task.cancel()
            await asyncio.gather(*senders, return_exceptions=True)


def _explain_refusal(ctx: CliContext, path: str, params: list[tuple[str, str]],
                     e: aiohttp.WSServerHandshakeError) -> None:
    ctx.client().request("GET", path, params=params, accept="application/json, */*")
    fail(f"error: unable to upgrade connection: {e.status} {e.message}")


@click.command("exec")
@click.argument("pod")
@click.argument("command", nargs=-1, required=True)
@click.option("-c", "--container", help="Run the command in this container.")
@click.option("-i", "--stdin", is_flag=True, help="Pass stdin to the container.")
@click.option("-t", "--tty", is_flag=True, help="Stdin is a TTY.")
@pass_context
@handle_errors
def exec_command(ctx: CliContext, pod: str, command: tuple[str, ...], container: str | None,
                 stdin: bool, tty: bool) -> None:
    """Execute a command in a container: minik exec POD [-c C] [-i] [-t] -- CMD..."""
    name = pod_name(pod)
    client = ctx.client()
    obj = client.request("GET", pod_path(ctx, name))
    phase = (obj.get("status") or {}).get("phase")
    if phase in COMPLETED_PHASES:
        fail(f"cannot exec into a container in a completed pod; current phase is {phase}")
    use_tty = tty and stdin
    if use_tty and not sys.stdin.isatty():
        click.echo(NO_TTY, err=True)
        use_tty = False
    path = pod_path(ctx, name, "exec")
    params = exec_params(choose_container(obj, container), command, stdin=stdin, tty=use_tty)
    access = client.access
    session = Session(URL(access.server + path).with_query(params), access.token,
                      client_ssl(access), stdin, use_tty)
    try:
        with raw_terminal(use_tty):
            status = asyncio.run(run_session(session))
    except aiohttp.WSServerHandshakeError as e:
        _explain_refusal(ctx, path, params, e)
    except aiohttp.ClientConnectionError as e:
        fail(f"error: the connection to the server was lost: {e}")
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(exit_code(status))
