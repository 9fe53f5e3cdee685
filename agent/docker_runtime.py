"""The `Runtime` on a Docker engine (its JSON translations are in `agent.docker_convert`).

Design:
- The low-level `docker.APIClient` over the unix socket (or DOCKER_HOST),
  pinned to API 1.41 so that constructing it never touches the engine.
  Calls run in worker threads of the runtime's own pools (never the
  process's default executor, which volumes and the rest of the server
  share) with a bounded HTTP timeout; streams whose length nobody knows
  (log follow, pulls) use a second client without a timeout and their own
  thread pool, so a dozen `kubectl logs -f` cannot starve the other calls.
  Stopping, waiting for and killing containers, which can block for a
  whole grace period, run on a pool of their own, so deleting pods that
  ignore SIGTERM never stalls the relist or creates; so do stats, which
  the engine answers at its next per-second sample: up to 1 s each, so
  the agent's usage collection (four at a time, every container every
  15 s) held four of the six engine threads most of the time on a node
  with a hundred containers.
- Starts run on a pool of their own too: the engine sets up a sandbox's
  network during its start and serialises that, so twenty pods starting
  together keep every start thread busy for seconds; a create or an
  inspect (a few ms for the engine) queued behind them waited as long.
  Measured in `bench/pod_startup.py`: at N=20 the last pods' pause
  creates waited ~2 s in the shared pool, behind the first pods' starts.
- Exec sessions (`agent.docker_exec`) read and write the hijacked socket
  with asyncio's own socket calls, so an idle interactive shell holds no
  thread; what the socket cannot tell them they ask through the runtime's
  `exec_*` methods.
- Foreign exceptions become `agent.runtime` errors in `_engine_errors`,
  and nowhere else.
- Every call but the chunks of a stream is reported to an optional
  `observer` (operation, seconds, failed): the agent's
  `minik_runtime_operations_*` metrics, like the kubelet's.
- `list()` is the agent's relist (every second, ~100 containers): one
  list call, plus an inspect only for containers whose (state, exit code)
  changed since the previous call; exit codes, OOM flags and start and
  finish times come from that cached inspect. Lists run on a small pool of
  their own, so that the relist never queues behind fifty creates and
  starts (which would delay noticing a crash by seconds under load). A
  container this runtime is starting right now is not inspected: the
  engine holds its lock for the whole start, and one such inspect held
  the list (and every pod sync waiting for it) for a second or more; the
  list's own view of it (state, labels, created) stands in, uncached,
  until its start returns.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import ipaddress
import logging
import math
import os
import re
import signal as signals
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions
from docker.types import IPAMConfig, IPAMPool
from docker.utils import parse_repository_tag

from agent.docker_convert import (
    Fingerprint,
    container_info,
    create_args,
    fingerprint,
    image_info,
    listed_fingerprint,
    listed_info,
    network_info,
    parse_time,
)
from agent.docker_exec import Closer, DockerExecSession, OpenStreams
from agent.runtime import (
    ContainerInfo,
    ContainerNotFound,
    ContainerSpec,
    ContainerStats,
    EngineInfo,
    ExecResult,
    ExecTimedOut,
    ImageInfo,
    ImageNotFound,
    ImagePullFailed,
    NameInUse,
    NetworkInfo,
    NetworkNotFound,
    RuntimeFailure,
    RuntimeUnavailable,
)

log = logging.getLogger(__name__)

API_VERSION = "1.41"
DEFAULT_HOST = "unix:///var/run/docker.sock"
T = TypeVar("T")
Observer = Callable[[str, float, bool], None]

ENGINE_THREADS = min(32, (os.cpu_count() or 1) + 4)
"""Concurrent engine calls per pool: what asyncio's default executor would allow."""

_CONFLICT_ID = re.compile(r'by container "?([0-9a-f]{12,64})')


@contextlib.contextmanager
def _engine_errors(
    missing: type[RuntimeFailure] = ContainerNotFound,
    failed: type[RuntimeFailure] = RuntimeFailure,
) -> Iterator[None]:
    """The one place where Docker SDK and requests exceptions become ours."""
    try:
        yield
    except docker.errors.NotFound as e:
        raise _not_found(e, missing) from e
    except docker.errors.APIError as e:
        raise failed(_text(e)) from e
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
        raise RuntimeUnavailable(f"docker engine unreachable: {e}") from e
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        raise failed(str(e)) from e


def _text(e: docker.errors.APIError) -> str:
    return str(e.explanation or e)


def _not_found(e: docker.errors.NotFound, missing: type[RuntimeFailure]) -> RuntimeFailure:
    """An explicit `missing` wins; the default tells images and networks from containers."""
    text = _text(e)
    if missing is not ContainerNotFound:
        return missing(text)
    if isinstance(e, docker.errors.ImageNotFound):
        return ImageNotFound(text)
    return (NetworkNotFound if text.startswith("network ") else ContainerNotFound)(text)


def _guarded(
    missing: type[RuntimeFailure], failed: type[RuntimeFailure], fn: Callable[..., T],
    *args: Any, **kwargs: Any,
) -> T:
    with _engine_errors(missing, failed):
        return fn(*args, **kwargs)


class DockerRuntime:
    """A `agent.runtime.Runtime` backed by one Docker engine."""

    def __init__(self, base_url: str | None = None, *, timeout: float = 30.0,
                 threads: int = ENGINE_THREADS, stream_threads: int = 64, stop_threads: int = 64,
                 observer: Observer | None = None) -> None:
        url = base_url or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
        self._url = url
        # The SDK's stubs say a timeout is an int; it is requests', which takes any float,
        # and None for none.
        self._api = docker.APIClient(base_url=url, version=API_VERSION,
                                     timeout=timeout,  # type: ignore[arg-type]
                                     max_pool_size=32)
        self._stream_api = docker.APIClient(base_url=url, version=API_VERSION,
                                            timeout=None)  # type: ignore[arg-type]
        self._pool = ThreadPoolExecutor(threads, "minik-docker")
        self._start_pool = ThreadPoolExecutor(threads, "minik-docker-start")
        self._stream_pool = ThreadPoolExecutor(stream_threads, "minik-docker-stream")
        self._stop_pool = ThreadPoolExecutor(stop_threads, "minik-docker-stop")
        self._read_pool = ThreadPoolExecutor(2, "minik-docker-read")
        self._cache: dict[str, tuple[Fingerprint, ContainerInfo]] = {}
        self._starting: set[str] = set()
        self._open: OpenStreams = set()
        self._observer = observer

    async def _observed(self, fn: Callable[..., Any], call: Awaitable[T]) -> T:
        if self._observer is None:
            return await call
        started, failed = time.perf_counter(), True
        try:
            result = await call
            failed = False
            return result
        finally:
            self._observer(fn.__name__.lstrip("_"), time.perf_counter() - started, failed)

    async def _call(self, fn: Callable[..., T], *args: Any,
                    missing: type[RuntimeFailure] = ContainerNotFound,
                    failed: type[RuntimeFailure] = RuntimeFailure,
                    pool: ThreadPoolExecutor | None = None, **kwargs: Any) -> T:
        call = functools.partial(_guarded, missing, failed, fn, *args, **kwargs)
        return await self._observed(
            fn, asyncio.get_running_loop().run_in_executor(pool or self._pool, call))

    async def _stream_call(self, fn: Callable[..., T], *args: Any,
                           missing: type[RuntimeFailure] = ContainerNotFound,
                           failed: type[RuntimeFailure] = RuntimeFailure, **kwargs: Any) -> T:
        call = functools.partial(_guarded, missing, failed, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._stream_pool, call)

    async def _stop_call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self._call(fn, *args, pool=self._stop_pool, **kwargs)

    async def close(self) -> None:
        for closer in builtins.list(self._open):
            closer()
        for pool in (self._pool, self._start_pool, self._stream_pool, self._stop_pool,
                     self._read_pool):
            pool.shutdown(wait=False, cancel_futures=True)
        self._api.close()
        self._stream_api.close()

    async def version(self) -> str:
        return (await self._call(self._api.version))["Version"]

    async def engine(self) -> EngineInfo:
        info = await self._call(self._api.info)
        pid = await asyncio.to_thread(_listener_pid, self._url)
        return EngineInfo(root_dir=info.get("DockerRootDir") or "", pid=pid)

    async def ensure_network(self, name: str, *, subnet: str, gateway: str | None,
                             labels: dict[str, str]) -> NetworkInfo:
        info = await self._call(self._ensure_network, name, subnet, gateway, labels,
                                missing=NetworkNotFound)
        if ipaddress.ip_network(info.subnet, strict=False) != ipaddress.ip_network(
                subnet, strict=False) or (gateway and info.gateway != gateway):
            raise RuntimeFailure(
                f"network {name!r} exists with subnet {info.subnet} gateway {info.gateway}, "
                f"not {subnet} gateway {gateway}; remove it or choose another subnet")
        return info

    def _ensure_network(self, name: str, subnet: str, gateway: str | None,
                        labels: dict[str, str]) -> NetworkInfo:
        try:
            return network_info(self._api.inspect_network(name))
        except docker.errors.NotFound:
            pass
        gateway = gateway or str(next(ipaddress.ip_network(subnet, strict=False).hosts()))
        ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=subnet, gateway=gateway)])
        try:
            self._api.create_network(name, driver="bridge", ipam=ipam, labels=labels,
                                     check_duplicate=True)
        except docker.errors.APIError as e:
            if e.status_code != 409:
                raise
        return network_info(self._api.inspect_network(name))

    async def remove_network(self, name: str) -> None:
        with contextlib.suppress(NetworkNotFound):
            await self._call(self._api.remove_network, name, missing=NetworkNotFound)

    async def image(self, ref: str) -> ImageInfo | None:
        try:
            return image_info(await self._call(self._api.inspect_image, ref,
                                                missing=ImageNotFound))
        except ImageNotFound:
            return None

    async def pull(self, ref: str) -> ImageInfo:
        await self._observed(self._pull, self._stream_call(
            self._pull, ref, missing=ImagePullFailed, failed=ImagePullFailed))
        info = await self.image(ref)
        if info is None:
            raise ImagePullFailed(f"pulled {ref} but the engine does not have it")
        return info

    def _pull(self, ref: str) -> None:
        repository, tag = parse_repository_tag(ref)
        for message in self._stream_api.pull(repository, tag=tag or "latest", stream=True,
                                             decode=True):
            if "error" in message:
                raise ImagePullFailed(str(message["error"]))

    async def create(self, spec: ContainerSpec) -> str:
        return await self._call(self._create, spec)

    def _create(self, spec: ContainerSpec) -> str:
        try:
            return self._api.create_container(**create_args(self._api, spec))["Id"]
        except docker.errors.APIError as e:
            if e.status_code != 409 or not (match := _CONFLICT_ID.search(_text(e))):
                raise
            self._clear_stale(match.group(1), e)
            return self._api.create_container(**create_args(self._api, spec))["Id"]

    def _clear_stale(self, container_id: str, conflict: docker.errors.APIError) -> None:
        """A name left by a crash: remove it unless it is running (see reliability §3)."""
        with contextlib.suppress(docker.errors.NotFound):
            if self._api.inspect_container(container_id)["State"]["Running"]:
                raise NameInUse(_text(conflict), container_id)
            self._api.remove_container(container_id, force=True, v=True)

    async def start(self, container_id: str) -> None:
        # A start that fails leaves the container "created", as a list made meanwhile
        # may have cached it: forget that, so the next list sees the engine's error.
        self._starting.add(container_id)
        try:
            await self._call(self._api.start, container_id, pool=self._start_pool)
        finally:
            self._starting.discard(container_id)
            self._cache.pop(container_id, None)

    async def stop(self, container_id: str, *, timeout: float,
                   signal: str | None = None) -> None:
        self._cache.pop(container_id, None)
        if signal is None:
            await self._stop_call(self._api.stop, container_id,
                                  timeout=math.ceil(max(timeout, 0)))
            return
        await self.kill(container_id, signal)
        if not await self._stop_call(self._wait_stopped, container_id, max(timeout, 0.001)):
            await self.kill(container_id, "SIGKILL")

    def _wait_stopped(self, container_id: str, timeout: float) -> bool:
        """False when the wait timed out (a read timeout surfaces as either exception)."""
        try:
            self._api.wait(container_id, timeout=timeout,  # type: ignore[arg-type]
                           condition="not-running")
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            return False
        return True

    async def kill(self, container_id: str, signal: str = "SIGKILL") -> None:
        self._cache.pop(container_id, None)
        await self._stop_call(self._kill, container_id, signal)

    def _kill(self, container_id: str, signal: str) -> None:
        try:
            self._api.kill(container_id, signal=signal)
        except docker.errors.APIError as e:
            if e.status_code != 409:
                raise

    async def remove(self, container_id: str, *, force: bool = True) -> None:
        self._cache.pop(container_id, None)
        await self._call(self._remove, container_id, force)

    def _remove(self, container_id: str, force: bool) -> None:
        try:
            self._api.remove_container(container_id, force=force, v=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as e:
            if e.status_code != 409 or "already in progress" not in _text(e):
                raise

    async def inspect(self, container_id: str) -> ContainerInfo:
        return await self._call(self._inspect, container_id)

    def _inspect(self, container_id: str) -> ContainerInfo:
        info = container_info(self._api.inspect_container(container_id))
        self._cache[info.id] = (fingerprint(info), info)
        return info

    async def list(self, labels: dict[str, str]) -> builtins.list[ContainerInfo]:
        call = functools.partial(_guarded, ContainerNotFound, RuntimeFailure, self._list, labels)
        return await self._observed(
            self._list, asyncio.get_running_loop().run_in_executor(self._read_pool, call))

    def _list(self, labels: dict[str, str]) -> builtins.list[ContainerInfo]:
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        items = self._api.containers(all=True, filters=filters)
        seen = {item["Id"] for item in items}
        for cid, (_, info) in builtins.list(self._cache.items()):
            if cid not in seen and labels.items() <= info.labels.items():
                self._cache.pop(cid, None)
        return [listed for item in items if (listed := self._listed(item)) is not None]

    def _listed(self, item: dict[str, Any]) -> ContainerInfo | None:
        if item["Id"] in self._starting:
            return listed_info(item)
        cached = self._cache.get(item["Id"])
        if cached and cached[0] == listed_fingerprint(item):
            return cached[1]
        try:
            return self._inspect(item["Id"])
        except docker.errors.NotFound:
            return None

    async def logs(self, container_id: str, *, follow: bool = False, tail: int | None = None,
                   since: datetime | None = None,
                   timestamps: bool = False) -> AsyncIterator[bytes]:
        stream = await self._stream_call(
            self._stream_api.logs, container_id, stream=True, follow=follow,
            tail="all" if tail is None else tail, timestamps=timestamps,
            since=since.timestamp() if since else None)
        async for chunk in self._drain(stream):
            yield chunk

    async def container_events(self, labels: dict[str, str]) -> AsyncIterator[str]:
        filters = {"type": ["container"], "event": ["die", "destroy"],
                   "label": [f"{k}={v}" for k, v in labels.items()]}
        stream = await self._stream_call(self._stream_api.events, filters=filters, decode=True)
        async for event in self._drain(stream):
            container_id = event.get("id") or (event.get("Actor") or {}).get("ID", "")
            # The engine's list lags its events by a moment: forget what was cached,
            # so that the next list inspects the container instead of trusting it.
            self._cache.pop(container_id, None)
            yield container_id

    async def _drain(self, stream: Any) -> AsyncIterator[Any]:
        """The items of a blocking stream, read on the stream pool; closed however it ends."""
        closer = functools.partial(_close_stream, stream)
        self._open.add(closer)
        try:
            while (item := await self._stream_call(next, stream, None)) is not None:
                yield item
        finally:
            self._open.discard(closer)
            closer()

    async def exec(self, container_id: str, command: builtins.list[str], *, stdin: bool, tty: bool,
                   env: dict[str, str] | None = None) -> DockerExecSession:
        created = await self._call(self._api.exec_create, container_id, command, stdin=stdin,
                                   tty=tty, environment=env)
        sock, release = await self._call(self._exec_start, created["Id"], tty)
        return DockerExecSession(self, created["Id"], sock, tty=tty, open_streams=self._open,
                                 release=release)

    def _exec_start(self, exec_id: str, tty: bool) -> tuple[socket.socket, Closer]:
        """The hijacked socket, and what closes the `SocketIO` the SDK wrapped it in (which
        has no public accessor for it)."""
        io: Any = self._api.exec_start(exec_id, socket=True, tty=tty)
        sock: socket.socket = io._sock
        return sock, io.close

    async def exec_resize(self, exec_id: str, *, width: int, height: int) -> None:
        await self._call(self._api.exec_resize, exec_id, height=height, width=width)

    async def exec_exit_code(self, exec_id: str) -> int | None:
        data = await self._call(self._api.exec_inspect, exec_id)
        return None if data.get("Running") else int(data.get("ExitCode") or 0)

    async def exec_kill(self, exec_id: str) -> None:
        await self._call(self._kill_exec, exec_id)

    async def exec_run(self, container_id: str, command: builtins.list[str], *,
                       timeout: float) -> ExecResult:
        session = await self.exec(container_id, command, stdin=False, tty=False)
        try:
            async with asyncio.timeout(timeout):
                output = bytearray()
                while (frame := await session.read()) is not None:
                    output += frame[1]
                return ExecResult(await session.wait(), bytes(output))
        except TimeoutError:
            raise ExecTimedOut(f"{command!r} did not finish within {timeout}s") from None
        finally:
            await session.close()

    async def stats(self, container_id: str) -> ContainerStats:
        data = await self._call(self._api.stats, container_id, stream=False, one_shot=True,
                                pool=self._stop_pool)
        memory = data.get("memory_stats") or {}
        detail = memory.get("stats") or {}
        inactive = detail.get("total_inactive_file", detail.get("inactive_file", 0))
        return ContainerStats(
            cpu_usage_ns=int(data["cpu_stats"]["cpu_usage"]["total_usage"]),
            memory_working_set_bytes=max(0, int(memory.get("usage", 0)) - int(inactive)),
            timestamp=parse_time(data.get("read")) or datetime.now(UTC),
        )

    def _kill_exec(self, exec_id: str) -> None:
        """Docker cannot kill an exec'd process; kill it from here when it is visibly ours.

        Only if its /proc entry sits in the container's cgroup, so a foreign
        PID namespace can never make us kill the wrong process.
        """
        data = self._api.exec_inspect(exec_id)
        if not data.get("Running") or not data.get("Pid"):
            return
        pid, container_id = data["Pid"], data["ContainerID"]
        try:
            if container_id in Path(f"/proc/{pid}/cgroup").read_text():
                os.kill(pid, signals.SIGKILL)
                return
        except OSError:
            pass
        log.warning("exec %s in %s still running (pid %s); abandoned", exec_id[:12],
                    container_id[:12], pid)


def _close_stream(stream: Any) -> None:
    """Shut a streaming response's socket, which also frees a thread blocked reading it."""
    with contextlib.suppress(OSError, RuntimeFailure), _engine_errors():
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
