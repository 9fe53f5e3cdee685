"""How the Docker runtime calls its engine: the SDK clients, their thread pools, and the one
place where the SDK's exceptions become the runtime's.

`agent.docker_runtime.DockerRuntime` says *what* it asks the engine;
`DockerClient` owns *how* a call gets there:
- The low-level `docker.APIClient` over the unix socket (or DOCKER_HOST),
  pinned to API 1.41 so that constructing it never touches the engine.
  Calls run in worker threads of the client's own pools (never the
  process's default executor, which volumes and the rest of the server
  share) with a bounded HTTP timeout; streams whose length nobody knows
  (log follow, pulls, events) use a second client without a timeout and
  their own thread pool, so a dozen `kubectl logs -f` cannot starve the
  other calls.
- Stopping, waiting for and killing containers, which can block for a
  whole grace period, run on a pool of their own (`STOP`), so deleting
  pods that ignore SIGTERM never stalls the relist or creates; so do
  stats, which the engine answers at its next per-second sample: up to
  1 s each, so the agent's usage collection (then four at a time, every
  container every 15 s) held four of the six engine threads most of the
  time on a node with a hundred containers.
- Starts run on a pool of their own too (`START`): the engine sets up a
  sandbox's network during its start and serialises that, so twenty pods
  starting together keep every start thread busy for seconds; a create or
  an inspect (a few ms for the engine) queued behind them waited as long.
  Measured in `bench/pod_startup.py`: at N=20 the last pods' pause
  creates waited ~2 s in the shared pool, behind the first pods' starts.
  Lists (the relist) run on a small pool of their own (`READ`), so that
  they never queue behind fifty creates and starts.
- Foreign exceptions become `agent.runtime` errors in `engine_errors`,
  and nowhere else.
- Every call but the chunks of a stream is reported to an optional
  `observer` (operation, seconds, failed): the agent's
  `minik_runtime_operations_*` metrics, like the kubelet's. The seconds
  are real time (`time.perf_counter`), not the agent's `Clock`: they
  measure the engine.
- Everything held open (streams, exec sockets) is in `open` as a closer,
  so that `close` ends them all.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import os
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions

from agent.docker_exec import OpenStreams
from agent.runtime import (
    ContainerNotFound,
    ImageNotFound,
    NetworkNotFound,
    RuntimeFailure,
    RuntimeUnavailable,
)

API_VERSION = "1.41"
DEFAULT_HOST = "unix:///var/run/docker.sock"
T = TypeVar("T")
Observer = Callable[[str, float, bool], None]

ENGINE_THREADS = min(32, (os.cpu_count() or 1) + 4)
"""Concurrent engine calls per pool: what asyncio's default executor would allow."""


class Pool(Enum):
    """Which of the client's thread pools a call runs on (see the module docstring)."""

    CALL = "minik-docker"
    START = "minik-docker-start"
    STOP = "minik-docker-stop"
    READ = "minik-docker-read"
    STREAM = "minik-docker-stream"


@contextlib.contextmanager
def engine_errors(
    missing: type[RuntimeFailure] = ContainerNotFound,
    failed: type[RuntimeFailure] = RuntimeFailure,
) -> Iterator[None]:
    """The one place where Docker SDK and requests exceptions become ours."""
    try:
        yield
    except docker.errors.NotFound as e:
        raise _not_found(e, missing) from e
    except docker.errors.APIError as e:
        raise failed(error_text(e)) from e
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
        raise RuntimeUnavailable(f"docker engine unreachable: {e}") from e
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        raise failed(str(e)) from e


def error_text(e: docker.errors.APIError) -> str:
    """What the engine said was wrong."""
    return str(e.explanation or e)


def _not_found(e: docker.errors.NotFound, missing: type[RuntimeFailure]) -> RuntimeFailure:
    """An explicit `missing` wins; the default tells images and networks from containers."""
    text = error_text(e)
    if missing is not ContainerNotFound:
        return missing(text)
    if isinstance(e, docker.errors.ImageNotFound):
        return ImageNotFound(text)
    return (NetworkNotFound if text.startswith("network ") else ContainerNotFound)(text)


def _guarded(
    missing: type[RuntimeFailure], failed: type[RuntimeFailure], fn: Callable[..., T],
    *args: Any, **kwargs: Any,
) -> T:
    with engine_errors(missing, failed):
        return fn(*args, **kwargs)


class DockerClient:
    """One Docker engine's SDK clients and the thread pools that calls to it run on."""

    def __init__(self, base_url: str | None = None, *, timeout: float = 30.0,
                 threads: int = ENGINE_THREADS, stream_threads: int = 64, stop_threads: int = 64,
                 observer: Observer | None = None) -> None:
        url = base_url or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
        self.url = url
        # The SDK's stubs say a timeout is an int; it is requests', which takes any float,
        # and None for none.
        self.api = docker.APIClient(base_url=url, version=API_VERSION,
                                    timeout=timeout,  # type: ignore[arg-type]
                                    max_pool_size=32)
        self.stream_api = docker.APIClient(base_url=url, version=API_VERSION,
                                           timeout=None)  # type: ignore[arg-type]
        # The engine is never reached through an HTTP proxy; without this, requests
        # reads the proxy environment on every call (~0.2 ms of a 0.8 ms ping).
        self.api.trust_env = self.stream_api.trust_env = False
        sizes = {Pool.CALL: threads, Pool.START: threads, Pool.STOP: stop_threads,
                 Pool.READ: 2, Pool.STREAM: stream_threads}
        self._pools = {pool: ThreadPoolExecutor(size, pool.value) for pool, size in sizes.items()}
        self.open: OpenStreams = set()
        self._observer = observer

    async def observed(self, fn: Callable[..., Any], call: Awaitable[T]) -> T:
        """Await `call`, reporting it to the observer as the operation named after `fn`."""
        if self._observer is None:
            return await call
        started, failed = time.perf_counter(), True
        try:
            result = await call
            failed = False
            return result
        finally:
            self._observer(fn.__name__.lstrip("_"), time.perf_counter() - started, failed)

    def _run(self, pool: Pool, fn: Callable[..., T], missing: type[RuntimeFailure],
             failed: type[RuntimeFailure], *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        call = functools.partial(_guarded, missing, failed, fn, *args, **kwargs)
        return asyncio.get_running_loop().run_in_executor(self._pools[pool], call)

    async def call(self, fn: Callable[..., T], *args: Any,
                   missing: type[RuntimeFailure] = ContainerNotFound,
                   failed: type[RuntimeFailure] = RuntimeFailure,
                   pool: Pool = Pool.CALL, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` on a thread of `pool`, observed, its errors mapped."""
        return await self.observed(fn, self._run(pool, fn, missing, failed, *args, **kwargs))

    async def stream_call(self, fn: Callable[..., T], *args: Any,
                          missing: type[RuntimeFailure] = ContainerNotFound,
                          failed: type[RuntimeFailure] = RuntimeFailure, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` on the stream pool, unobserved (a stream's open or chunk)."""
        return await self._run(Pool.STREAM, fn, missing, failed, *args, **kwargs)

    async def drain(self, stream: Any) -> AsyncIterator[Any]:
        """The items of a blocking stream, read on the stream pool; closed however it ends."""
        closer = functools.partial(_close_stream, stream)
        self.open.add(closer)
        try:
            while (item := await self.stream_call(next, stream, None)) is not None:
                yield item
        finally:
            self.open.discard(closer)
            closer()

    async def listener_pid(self) -> int | None:
        """The pid of the process listening on the engine's unix socket, if it is one."""
        return await asyncio.to_thread(_listener_pid, self.url)

    async def close(self) -> None:
        for closer in builtins.list(self.open):
            closer()
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        self.api.close()
        self.stream_api.close()


def _close_stream(stream: Any) -> None:
    """Shut a streaming response's socket, which also frees a thread blocked reading it."""
    with contextlib.suppress(OSError, RuntimeFailure), engine_errors():
        stream.close()


def _listener_pid(url: str) -> int | None:
    """The pid of the process listening on a unix socket URL (SO_PEERCRED), or None: dockerd,
    or systemd when it activated the socket (in the host's namespaces too, in practice)."""
    if not url.startswith("unix://"):
        return None
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(url[len("unix://"):])
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    return struct.unpack("3i", creds)[0] or None
