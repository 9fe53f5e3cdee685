"""The minik server process: store, certificates, API, background tasks.

`serve()` opens the store, makes sure the CA, serving certificate and token
exist, starts the HTTPS API, writes the kubeconfig and the instance file,
and then runs until SIGTERM or SIGINT, when it stops accepting requests,
ends background tasks and closes the store cleanly. `PURGE_SIGNAL` (from
`minik down --purge`) stops it the same way and then removes the node's
state and the store, the store only once the node's state is gone (a
mount left under it keeps both, so that a later purge can finish).

The server is *up* once its own node is Ready, not when the API first
answers: a pod created before the node registers would collect
FailedScheduling warnings. Then it says so in its log and marks the
instance file `"up": true`, which `minik up -d` waits for. With the agent
disabled there is no node of its own to wait for: it is up once the API
serves, and says that pods stay Pending until a node joins.

Serving TLS, it keeps asyncio's per-connection read buffer small
(`tls.limit_read_buffers`), and it gives freed heap memory back to the
system periodically (`heap`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from minik.api import errors
from minik.api.resources import REGISTRY
from minik.apiserver import proxy
from minik.apiserver.app import READY_KEY, FailureAccessLogger, create_app
from minik.apiserver.heap import trim_forever
from minik.apiserver.instrumented import InstrumentedStore
from minik.apiserver.metrics import ApiMetrics
from minik.apiserver.storage import ObjectStorage, WriteOptions
from minik.apiserver.tls import ensure_certificates, limit_read_buffers, server_ssl_context
from minik.home import PURGE_SIGNAL, Home, write_private
from minik.kubeconfig import ensure_token, server_url, write_kubeconfig
from minik.machinery.supervisor import Supervisor
from minik.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from minik.apiserver.components import Components

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
COMPACT_INTERVAL = 60.0
COMPACT_KEEP = 1000


@dataclass(frozen=True, slots=True)
class ServerConfig:
    home: Home
    name: str
    port: int
    bind: str = "127.0.0.1"
    disabled_controllers: frozenset[str] = field(default_factory=frozenset)
    node_name: str = ""
    pod_subnet: str | None = None
    restart_backoff: float = 10.0

    def enabled(self, component: str) -> bool:
        return component not in self.disabled_controllers

    @property
    def node(self) -> str | None:
        """The name of the node this process runs; None when its agent is disabled."""
        if not self.enabled("agent"):
            return None
        return self.node_name or socket.gethostname().lower()


async def bootstrap_namespaces(storage: ObjectStorage) -> None:
    ns_type = REGISTRY.get("namespaces")
    for name in SYSTEM_NAMESPACES:
        with contextlib.suppress(errors.ApiError):
            await storage.create(ns_type, None, {"metadata": {"name": name}},
                                 WriteOptions(trusted=True))


async def start_components(
    config: ServerConfig, url: str, token: str, metrics: ApiMetrics, supervisor: Supervisor
) -> Components:
    """Import (off the event loop) and start what runs beside the API, once it serves."""
    module = await asyncio.to_thread(importlib.import_module, "minik.apiserver.components")
    await asyncio.to_thread(importlib.import_module, "minik.api.validation")
    components: Components = module.Components(config, url, token, metrics)
    components.start(supervisor)
    return components


async def compact_forever(storage: ObjectStorage) -> None:
    while True:
        await asyncio.sleep(COMPACT_INTERVAL)
        await storage.store.compact(keep=COMPACT_KEEP)


def _remove_store(home: Home) -> None:
    for path in home.root.glob(home.store.name + "*"):
        path.unlink(missing_ok=True)


def _write_instance(config: ServerConfig, url: str, *, up: bool) -> None:
    info = {"name": config.name, "pid": os.getpid(), "server": url, "port": config.port,
            "bind": config.bind, "node": config.node, "up": up}
    write_private(config.home.instance_file, (json.dumps(info, indent=2) + "\n").encode())


async def announce_up(config: ServerConfig, url: str, components: Components,
                      started: float) -> None:
    """Log "is up" and mark the instance file so, once this process's node is Ready."""
    if config.node is not None:
        await components.wait_node_ready()
    _write_instance(config, url, up=True)
    node = (f"node {config.node!r} is Ready" if config.node is not None else
            "no node (the agent is disabled): pods stay Pending until a node joins")
    log.info("minik %r is up in %.2fs; %s", config.name, time.monotonic() - started, node)


def make_runner(app: web.Application) -> web.AppRunner:
    """The API's runner. A client that goes away cancels its request's handler.

    aiohttp leaves a handler running after its client disconnects unless
    asked; Kubernetes cancels the request's context. Without it an idle watch,
    log or exec stream whose client is gone lives on, with its connection's
    memory, until its next write fails - for a quiet watch, possibly never.
    """
    return web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0,
                         access_log_class=FailureAccessLogger, handler_cancellation=True)


async def serve(config: ServerConfig) -> None:
    started = time.monotonic()
    home = config.home.ensure()
    loosened = home.make_private()
    if loosened:
        log.warning("%s", home.describe_tightened(loosened))
    home.purge_request.unlink(missing_ok=True)
    stop, purge = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(PURGE_SIGNAL, lambda: (purge.set(), stop.set()))
    purged = False
    ensure_certificates(home, bind=config.bind)
    limit_read_buffers()
    token = ensure_token(home)
    metrics = ApiMetrics()
    store = InstrumentedStore(await SQLiteStore.open(home.store), metrics)
    write_private(home.pid_file, f"{os.getpid()}\n".encode())
    storage = ObjectStorage(store)
    supervisor = Supervisor()
    app = create_app(storage, token=token, metrics=metrics)
    proxy.install(app, ca_file=home.ca_cert, token=token)
    runner = make_runner(app)
    try:
        await bootstrap_namespaces(storage)
        await runner.setup()
        site = web.TCPSite(runner, config.bind, config.port, ssl_context=server_ssl_context(home))
        await site.start()
        url = server_url(config.bind, config.port)
        write_kubeconfig(home, server=url, token=token)
        _write_instance(config, url, up=False)
        supervisor.start("store-compaction", lambda: compact_forever(storage))
        supervisor.start("heap-trim", trim_forever)
        app[READY_KEY].append(True)
        log.info("minik %r serving on %s", config.name, url)
        components = await start_components(config, url, token, metrics, supervisor)
        supervisor.start("announce-up", lambda: announce_up(config, url, components, started))
        await stop.wait()
        log.info("minik %r stopping%s", config.name,
                 " and removing its state" if purge.is_set() else "")
        await supervisor.stop()
        purged = await components.stop(purge=purge.is_set())
    finally:
        await supervisor.stop()
        await runner.cleanup()
        await store.close()
        if purge.is_set() and purged:
            _remove_store(home)
        elif purge.is_set():
            log.error("minik %r keeps its store: its node's state could not be removed",
                      config.name)
        home.pid_file.unlink(missing_ok=True)
