"""Shared helpers for tests against a real in-process API server on a memory store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from minik.api.errors import ApiError
from minik.api.resources import REGISTRY
from minik.apiserver.app import READY_KEY, create_app
from minik.apiserver.metrics import ApiMetrics
from minik.apiserver.rbac.bootstrap import ensure_bootstrap_policy
from minik.apiserver.server import bootstrap_namespaces, make_runner
from minik.apiserver.storage import ObjectStorage
from minik.client.aio import AsyncClient
from minik.controllers.context import ControllerFactory
from minik.kubeconfig import ClusterAccess
from minik.machinery.metrics import ControllerMetrics
from minik.machinery.supervisor import Supervisor
from minik.store import MemoryStore, Store

NAMESPACES = REGISTRY.get("namespaces")
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-node-lease")
T = TypeVar("T")


class UncancellingServer(TestServer):
    """A test server that, like minik's own, never cancels a handler whose client left.

    aiohttp's TestServer does; a handler then looks as if it noticed a client
    leaving that minik would not notice.
    """

    async def _make_runner(self, **kwargs: Any) -> web.BaseRunner:
        return await super()._make_runner(**{**kwargs, "handler_cancellation": False})


@dataclass
class Api:
    """A real API server on a memory store, a client of it, and tasks to cancel at the end."""

    server: TestServer
    client: AsyncClient
    tasks: list[asyncio.Task] = field(default_factory=list)

    def start(self, coro, name: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=name)
        self.tasks.append(task)
        return task

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.client.close()
        await self.server.close()


async def bootstrapped(store: Store | None = None) -> ObjectStorage:
    """Storage on `store` (a fresh memory store by default) with the namespaces and default
    RBAC policy `minik up` makes."""
    storage = ObjectStorage(store or MemoryStore())
    await bootstrap_namespaces(storage)
    await ensure_bootstrap_policy(storage)
    return storage


@contextlib.asynccontextmanager
async def serving(storage: ObjectStorage, token: str) -> AsyncIterator[TestClient]:
    """A ready API server on `storage`, and a client sending `token`."""
    app = create_app(storage, token=token, metrics=ApiMetrics())
    app[READY_KEY].append(True)
    client = TestClient(TestServer(app), headers={"Authorization": f"Bearer {token}"})
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def served(store: Store, token: str = "test-token") -> AsyncIterator[
    tuple[TestClient, ObjectStorage]
]:
    """`store` with the namespaces `minik up` bootstraps, served, and a client sending `token`."""
    from minik.apiserver.server import bootstrap_namespaces

    storage = ObjectStorage(store)
    await bootstrap_namespaces(storage)
    async with serving(storage, token) as client:
        yield client, storage


@contextlib.asynccontextmanager
async def on_the_server_s_runner(app: web.Application) -> AsyncIterator[str]:
    """`app` served over plain HTTP as `minik up` runs it (`server.make_runner`); its base URL."""
    runner = make_runner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def start_api() -> Api:
    """A served memory store with the namespaces `minik up` bootstraps."""
    server = TestServer(create_app(ObjectStorage(MemoryStore()), token="t", metrics=ApiMetrics()))
    await server.start_server(shutdown_timeout=0.1)
    client = AsyncClient(ClusterAccess(server=f"http://127.0.0.1:{server.port}", ca_pem=None,
                                       token="t"))
    for name in SYSTEM_NAMESPACES:
        await client.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": name}})
    return Api(server, client)


@contextlib.asynccontextmanager
async def running_controllers(
    factories: dict[str, ControllerFactory],
) -> AsyncIterator[tuple[Api, AsyncClient]]:
    """A served memory store (`start_api`) with `factories`' controllers running on it, and
    a client of their own."""
    from minik.controllers.manager import ControllerManager

    api = await start_api()
    client = AsyncClient(api.client.access)
    manager = ControllerManager(client, metrics=ControllerMetrics(CollectorRegistry()),
                                factories=factories)
    supervisor = Supervisor()
    manager.start(supervisor)
    try:
        yield api, client
    finally:
        await supervisor.stop()
        await api.close()
        await client.close()


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def poll(probe: Callable[[], Awaitable[T]], until: Callable[[T], bool],
               timeout: float = 5.0) -> T:
    """Await `probe()` until its answer satisfies `until` (NotFound means "not yet")."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                answer = await probe()
            except ApiError as e:
                if e.code != 404:
                    raise
            else:
                if until(answer):
                    return answer
            await asyncio.sleep(0.02)
