"""The `Runtime` on a Docker engine (its JSON translations are in `agent.docker_convert`).

Design:
- How a call reaches the engine (the SDK clients, the thread pools that
  keep starts, stops, lists and streams from queueing behind each other,
  the observer, and the one place where the SDK's exceptions become
  `agent.runtime`'s) is `agent.docker_client.DockerClient`'s; this module
  says what the runtime asks.
- Exec and attach sessions (`agent.docker_exec`) read and write the hijacked socket
  with asyncio's own socket calls, so an idle interactive shell holds no
  thread; what the socket cannot tell them they ask through the runtime's
  `exec_*` methods.
- `list()` is the agent's relist (every second, ~100 containers): one
  list call, plus an inspect only for containers whose (state, exit code)
  changed since the previous call; exit codes, OOM flags and start and
  finish times come from that cached inspect. Lists run on a small pool of
  their own (delaying the relist behind fifty creates and starts would
  delay noticing a crash by seconds under load). A
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
import ipaddress
import logging
import math
import os
import re
import signal as signals
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.types import IPAMConfig, IPAMPool
from docker.utils import parse_repository_tag

from agent.docker_client import (
    ENGINE_THREADS,
    DockerClient,
    Observer,
    Pool,
    error_text,
)
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
    volume_info,
)
from agent.docker_exec import Closer, DockerAttachSession, DockerExecSession
from agent.runtime import (
    ContainerInfo,
    ContainerSpec,
    ContainerStats,
    EngineInfo,
    ExecResult,
    ExecTimedOut,
    ImageInfo,
    ImageNotFound,
    ImagePullFailed,
    InterfaceStats,
    NameInUse,
    NetworkInfo,
    NetworkNotFound,
    RuntimeFailure,
    VolumeInfo,
    VolumeNotFound,
)

log = logging.getLogger(__name__)

_CONFLICT_ID = re.compile(r'by container "?([0-9a-f]{12,64})')


class DockerRuntime:
    """A `agent.runtime.Runtime` backed by one Docker engine."""

    def __init__(self, base_url: str | None = None, *, timeout: float = 30.0,
                 threads: int = ENGINE_THREADS, stream_threads: int = 64, stop_threads: int = 64,
                 observer: Observer | None = None) -> None:
        self._client = DockerClient(base_url, timeout=timeout, threads=threads,
                                    stream_threads=stream_threads, stop_threads=stop_threads,
                                    observer=observer)
        self._cache: dict[str, tuple[Fingerprint, ContainerInfo]] = {}
        self._starting: set[str] = set()

    @property
    def _api(self) -> docker.APIClient:
        return self._client.api

    async def close(self) -> None:
        await self._client.close()

    async def version(self) -> str:
        return (await self._client.call(self._api.version))["Version"]

    async def engine(self) -> EngineInfo:
        info = await self._client.call(self._api.info)
        pid = await self._client.listener_pid()
        return EngineInfo(root_dir=info.get("DockerRootDir") or "", pid=pid)

    async def ensure_network(self, name: str, *, subnet: str, gateway: str | None,
                             labels: dict[str, str]) -> NetworkInfo:
        info = await self._client.call(self._ensure_network, name, subnet, gateway, labels,
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
            await self._client.call(self._api.remove_network, name, missing=NetworkNotFound)

    async def create_volume(self, name: str, *, labels: dict[str, str]) -> VolumeInfo:
        return volume_info(await self._client.call(self._api.create_volume, name,
                                                   driver="local", labels=labels))

    async def volume(self, name: str) -> VolumeInfo | None:
        try:
            return volume_info(await self._client.call(self._api.inspect_volume, name,
                                                       missing=VolumeNotFound))
        except VolumeNotFound:
            return None

    async def list_volumes(self, labels: dict[str, str]) -> builtins.list[VolumeInfo]:
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        listed = await self._client.call(self._api.volumes, filters=filters, pool=Pool.READ)
        return [volume_info(v) for v in (listed or {}).get("Volumes") or []]

    async def remove_volume(self, name: str) -> None:
        with contextlib.suppress(VolumeNotFound):
            await self._client.call(self._api.remove_volume, name, missing=VolumeNotFound)

    async def image(self, ref: str) -> ImageInfo | None:
        try:
            return image_info(await self._client.call(self._api.inspect_image, ref,
                                                      missing=ImageNotFound))
        except ImageNotFound:
            return None

    async def pull(self, ref: str) -> ImageInfo:
        await self._client.observed(self._pull, self._client.stream_call(
            self._pull, ref, missing=ImagePullFailed, failed=ImagePullFailed))
        info = await self.image(ref)
        if info is None:
            raise ImagePullFailed(f"pulled {ref} but the engine does not have it")
        return info

    def _pull(self, ref: str) -> None:
        repository, tag = parse_repository_tag(ref)
        for message in self._client.stream_api.pull(repository, tag=tag or "latest",
                                                    stream=True, decode=True):
            if "error" in message:
                raise ImagePullFailed(str(message["error"]))

    async def create(self, spec: ContainerSpec) -> str:
        return await self._client.call(self._create, spec)

    def _create(self, spec: ContainerSpec) -> str:
        try:
            return self._api.create_container(**create_args(self._api, spec))["Id"]
        except docker.errors.APIError as e:
            if e.status_code != 409 or not (match := _CONFLICT_ID.search(error_text(e))):
                raise
            self._clear_stale(match.group(1), e)
            return self._api.create_container(**create_args(self._api, spec))["Id"]

    def _clear_stale(self, container_id: str, conflict: docker.errors.APIError) -> None:
        """A name left by a crash: remove it unless it is running (see reliability §3)."""
        with contextlib.suppress(docker.errors.NotFound):
            if self._api.inspect_container(container_id)["State"]["Running"]:
                raise NameInUse(error_text(conflict), container_id)
            self._api.remove_container(container_id, force=True, v=True)

    async def start(self, container_id: str) -> None:
        # A start that fails leaves the container "created", as a list made meanwhile
        # may have cached it: forget that, so the next list sees the engine's error.
        self._starting.add(container_id)
        try:
            await self._client.call(self._api.start, container_id, pool=Pool.START)
        finally:
            self._starting.discard(container_id)
            self._cache.pop(container_id, None)

    async def stop(self, container_id: str, *, timeout: float,
                   signal: str | None = None) -> None:
        self._cache.pop(container_id, None)
        if signal is None:
            await self._client.call(self._api.stop, container_id,
                                    timeout=math.ceil(max(timeout, 0)), pool=Pool.STOP)
            return
        await self.kill(container_id, signal)
        if not await self._client.call(self._wait_stopped, container_id, max(timeout, 0.001),
                                       pool=Pool.STOP):
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
        await self._client.call(self._kill, container_id, signal, pool=Pool.STOP)

    def _kill(self, container_id: str, signal: str) -> None:
        try:
            self._api.kill(container_id, signal=signal)
        except docker.errors.APIError as e:
            if e.status_code != 409:
                raise

    async def remove(self, container_id: str, *, force: bool = True) -> None:
        self._cache.pop(container_id, None)
        await self._client.call(self._remove, container_id, force)

    def _remove(self, container_id: str, force: bool) -> None:
        try:
            self._api.remove_container(container_id, force=force, v=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as e:
            if e.status_code != 409 or "already in progress" not in error_text(e):
                raise

    async def inspect(self, container_id: str) -> ContainerInfo:
        return await self._client.call(self._inspect, container_id)

    def _inspect(self, container_id: str) -> ContainerInfo:
        info = container_info(self._api.inspect_container(container_id))
        self._cache[info.id] = (fingerprint(info), info)
        return info

    async def list(self, labels: dict[str, str]) -> builtins.list[ContainerInfo]:
        return await self._client.call(self._list, labels, pool=Pool.READ)

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
        stream = await self._client.stream_call(
            self._client.stream_api.logs, container_id, stream=True, follow=follow,
            tail="all" if tail is None else tail, timestamps=timestamps,
            since=since.timestamp() if since else None)
        async for chunk in self._client.drain(stream):
            yield chunk

    async def container_events(self, labels: dict[str, str]) -> AsyncIterator[str]:
        filters = {"type": ["container"], "event": ["die", "destroy"],
                   "label": [f"{k}={v}" for k, v in labels.items()]}
        stream = await self._client.stream_call(self._client.stream_api.events,
                                                filters=filters, decode=True)
        async for event in self._client.drain(stream):
            container_id = event.get("id") or (event.get("Actor") or {}).get("ID", "")
            # The engine's list lags its events by a moment: forget what was cached,
            # so that the next list inspects the container instead of trusting it.
            self._cache.pop(container_id, None)
            yield container_id

    async def exec(self, container_id: str, command: builtins.list[str], *, stdin: bool, tty: bool,
                   env: dict[str, str] | None = None) -> DockerExecSession:
        created = await self._client.call(self._api.exec_create, container_id, command,
                                          stdin=stdin, tty=tty, environment=env)
        sock, release = await self._client.call(self._exec_start, created["Id"], tty)
        return DockerExecSession(self, created["Id"], sock, tty=tty,
                                 open_streams=self._client.open, release=release)

    def _exec_start(self, exec_id: str, tty: bool) -> tuple[socket.socket, Closer]:
        """The hijacked socket, and what closes the `SocketIO` the SDK wrapped it in (which
        has no public accessor for it)."""
        io: Any = self._api.exec_start(exec_id, socket=True, tty=tty)
        sock: socket.socket = io._sock
        return sock, io.close

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> DockerAttachSession:
        sock, release = await self._client.call(self._attach_socket, container_id, stdin)
        return DockerAttachSession(self, container_id, sock, tty=tty,
                                   open_streams=self._client.open, release=release)

    def _attach_socket(self, container_id: str, stdin: bool) -> tuple[socket.socket, Closer]:
        io: Any = self._api.attach_socket(container_id, params={
            "stdin": int(stdin), "stdout": 1, "stderr": 1, "stream": 1})
        sock: socket.socket = io._sock
        return sock, io.close

    async def container_resize(self, container_id: str, *, width: int, height: int) -> None:
        await self._client.call(self._api.resize, container_id, height=height, width=width)

    async def exec_resize(self, exec_id: str, *, width: int, height: int) -> None:
        await self._client.call(self._api.exec_resize, exec_id, height=height, width=width)

    async def exec_exit_code(self, exec_id: str) -> int | None:
        data = await self._client.call(self._api.exec_inspect, exec_id)
        return None if data.get("Running") else int(data.get("ExitCode") or 0)

    async def exec_kill(self, exec_id: str) -> None:
        await self._client.call(self._kill_exec, exec_id)

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
        data = await self._client.call(self._api.stats, container_id, stream=False,
                                       one_shot=True, pool=Pool.STOP)
        memory = data.get("memory_stats") or {}
        detail = memory.get("stats") or {}
        inactive = detail.get("total_inactive_file", detail.get("inactive_file", 0))
        usage = int(memory.get("usage", 0))
        networks = data.get("networks") or {}
        return ContainerStats(
            cpu_usage_ns=int(data["cpu_stats"]["cpu_usage"]["total_usage"]),
            memory_working_set_bytes=max(0, usage - int(inactive)),
            timestamp=parse_time(data.get("read")) or datetime.now(UTC),
            memory_usage_bytes=usage,
            memory_rss_bytes=int(detail.get("total_rss", detail.get("anon", 0))),
            interfaces=tuple(InterfaceStats(name, int(n.get("rx_bytes", 0)),
                                            int(n.get("tx_bytes", 0)))
                             for name, n in sorted(networks.items())),
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
