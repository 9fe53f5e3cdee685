"""The minik server process: store, API server, then scheduler, controllers and agent.

`serve()` opens the store, starts the API server (`minik.apiserver.server`)
with the instance's token, writes the kubeconfig and the instance file,
then starts what runs beside the API (`components`: scheduler, controllers,
node agent, in that order), and runs until SIGTERM or SIGINT. Then it stops
them in the reverse order: the components, the API, the store, cleanly.
`PURGE_SIGNAL` (from `minik down --purge`) stops it the same way and then
removes the node's state and the store, the store only once the node's
state is gone (a mount left under it keeps both, so that a later purge can
finish); with the store go the network settings and the host-wide claims of
the instance's address ranges (`claims`).

The server is *up* once its own node is Ready, not when the API first
answers: a pod created before the node registers would collect
FailedScheduling warnings. Then it says so in its log and marks the
instance file `"up": true`, which `minik up -d` waits for. With the agent
disabled there is no node of its own to wait for: it is up once the API
serves, and says that pods stay Pending until a node joins.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import signal
import time
from typing import TYPE_CHECKING

from minik.apiserver.instrumented import InstrumentedStore
from minik.apiserver.metrics import ApiMetrics
from minik.apiserver.server import ApiServer
from minik.home import PURGE_SIGNAL, Home, write_private
from minik.kubeconfig import ensure_token, write_kubeconfig
from minik.machinery.supervisor import Supervisor
from minik.server.claims import ClaimRegistry
from minik.server.config import ServerConfig
from minik.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from minik.server.components import Components

log = logging.getLogger(__name__)


async def start_components(config: ServerConfig, url: str, token: str, metrics: ApiMetrics,
                           api: ApiServer) -> Components:
    """Import (off the event loop) and start what runs beside the API, once it serves.

    The API's validation models are loaded the same way, so that the first
    write does not load them on the loop.
    """
    module = await asyncio.to_thread(importlib.import_module, "minik.server.components")
    await asyncio.to_thread(importlib.import_module, "minik.api.validation")
    components: Components = module.Components(config, url, token, metrics,
                                               on_pod_network=api.serve_node_address)
    components.start()
    return components


def _remove_store(home: Home) -> None:
    for path in home.root.glob(home.store.name + "*"):
        path.unlink(missing_ok=True)


def _write_instance(config: ServerConfig, url: str, *, up: bool, dns: str | None = None) -> None:
    """The instance file: who serves where (`dns`: the cluster DNS address, the pod
    network's gateway, once the node has its network)."""
    info = {"name": config.name, "pid": os.getpid(), "server": url, "port": config.port,
            "bind": config.bind, "node": config.node, "up": up, "dns": dns,
            "serviceCIDR": config.service_cidr, "nodeAddress": config.node_address}
    write_private(config.home.instance_file, (json.dumps(info, indent=2) + "\n").encode())


async def announce_up(config: ServerConfig, url: str, components: Components,
                      started: float) -> None:
    """Log "is up" and mark the instance file so, once this process's node is Ready."""
    if config.node is not None:
        await components.wait_node_ready()
    _write_instance(config, url, up=True, dns=components.dns_address)
    node = (f"node {config.node!r} is Ready" if config.node is not None else
            "no node (the agent is disabled): pods stay Pending until a node joins")
    log.info("minik %r is up in %.2fs; %s", config.name, time.monotonic() - started, node)


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

    def stop_and_purge() -> None:
        purge.set()
        stop.set()

    loop.add_signal_handler(PURGE_SIGNAL, stop_and_purge)
    purged = False
    token = ensure_token(home)
    metrics = ApiMetrics()
    store = InstrumentedStore(await SQLiteStore.open(home.store), metrics)
    write_private(home.pid_file, f"{os.getpid()}\n".encode())
    api = ApiServer(home, store, metrics, token=token, bind=config.bind, port=config.port,
                    service_cidr=config.service_cidr, node_port_range=config.node_port_range,
                    garbage_collection=config.garbage_collection,
                    metric_resolution=config.metric_resolution)
    supervisor = Supervisor()
    components: Components | None = None
    try:
        url = await api.start()
        write_kubeconfig(home, server=url, token=token)
        _write_instance(config, url, up=False)
        log.info("minik %r serving on %s", config.name, url)
        components = await start_components(config, url, token, metrics, api)
        ready = components
        supervisor.start("announce-up", lambda: announce_up(config, url, ready, started))
        await stop.wait()
        log.info("minik %r stopping%s", config.name,
                 " and removing its state" if purge.is_set() else "")
        await supervisor.stop()
        purged = await components.stop(purge=purge.is_set())
    finally:
        await supervisor.stop()
        if components is not None:
            await components.stop_tasks()
        await api.stop()
        await store.close()
        if purge.is_set() and purged:
            _remove_store(home)
            home.settings_file.unlink(missing_ok=True)
            ClaimRegistry().release(str(home.root))
        elif purge.is_set():
            log.error("minik %r keeps its store: its node's state could not be removed",
                      config.name)
        home.pid_file.unlink(missing_ok=True)
