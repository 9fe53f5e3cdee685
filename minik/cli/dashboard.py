"""`minik dashboard [--port N] [--url]`: serve the live dashboard on 127.0.0.1 and open it.

As `kubectl proxy` does, the command itself is the server (`minik.dashboard`):
it listens on 127.0.0.1 only (port `--port`, a free one unless told), relays
the page's read-only API requests with the kubeconfig's token and CA, prints
`Serving the dashboard at http://127.0.0.1:PORT/`, and opens that URL in a
browser when there is a display to show one on (`--url` only prints it, as
`minikube dashboard --url` does). The token stays in this process: no URL
carries it. It runs until Ctrl-C or SIGTERM, then closes its listener and
its watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import webbrowser

import click
from aiohttp import web

from minik.api.errors import ApiError
from minik.cli.context import CliContext, fail, handle_errors, pass_context
from minik.client.aio import ApiUnavailable, AsyncClient
from minik.dashboard.app import make_app
from minik.kubeconfig import ClusterAccess


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as e:
        sock.close()
        fail(f"error: unable to listen on 127.0.0.1:{port}: {e}")
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _has_display() -> bool:
    """Whether a graphical browser can be shown: never start a console browser in a terminal."""
    return sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _open_browser(url: str) -> None:
    if not _has_display():
        return
    with contextlib.suppress(webbrowser.Error, OSError):
        webbrowser.open(url)


async def _serve(access: ClusterAccess, sock: socket.socket, *, open_browser: bool) -> None:
    client = AsyncClient(access, user_agent="minik-dashboard")
    try:
        await client.request("GET", "/version")
    except (ApiError, ApiUnavailable) as e:
        await client.close()
        fail(f"error: the API server at {access.server} cannot be reached: {e}")
    port = sock.getsockname()[1]
    runner = web.AppRunner(make_app(client, port), handler_cancellation=True,
                           access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await web.SockSite(runner, sock, shutdown_timeout=1.0).start()
        url = f"http://127.0.0.1:{port}/"
        click.echo(f"Serving the dashboard at {url}")
        if open_browser:
            await loop.run_in_executor(None, _open_browser, url)
        await stop.wait()
    finally:
        await runner.cleanup()


@click.command("dashboard")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port to serve on, on 127.0.0.1 (0: a free one).")
@click.option("--url", "url_only", is_flag=True,
              help="Print the dashboard's URL only; do not open a browser.")
@pass_context
@handle_errors
def dashboard(ctx: CliContext, port: int, url_only: bool) -> None:
    """Serve the live dashboard on 127.0.0.1 and open it in a browser."""
    access = ctx.client().access
    sock = _listen(port)
    asyncio.run(_serve(access, sock, open_browser=not url_only))
