"""An in-memory `Runtime` for unit tests of the agent.

It keeps Docker's observable rules — a create needs a local image, a name
is unique, a container joins only a running sandbox's network, a removed
container is gone, stop and kill of a stopped container are no-ops —
and adds knobs for what tests must provoke: `exit` (a crash or an OOM
kill), `exit_on_start` (crash loops), `fail_on_start` (a missing binary:
the container stays "created" with the engine's error, as in Docker),
`fail` (one call fails), missing
images and failing pulls, named volumes (a create of an existing name
returns it, one in use cannot be removed, a container that mounts a
missing one creates it unlabelled, as Docker does), scripted exec results, log output. Ids and IPs
are deterministic; time is the wall time of an injectable `Clock` (the
engine's clock: container start and finish times, log timestamps), so
nothing here sleeps. Every call is recorded in `calls`.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import ipaddress
import signal as signals
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agent.runtime import (
    STDOUT,
    ContainerInfo,
    ContainerNotFound,
    ContainerSpec,
    ContainerState,
    ContainerStats,
    EngineInfo,
    ExecResult,
    ImageConfig,
    ImageInfo,
    ImageNotFound,
    ImagePullFailed,
    NameInUse,
    NetworkInfo,
    NetworkNotFound,
    RuntimeFailure,
    RuntimeUnavailable,
    VolumeInfo,
    VolumeMount,
)
from minik.machinery.clock import Clock, LoopClock

ExecHandler = Callable[[list[str], bytes], ExecResult | BaseException]
DEFAULT_BRIDGE = "172.17.0.0/16"


@dataclass(frozen=True)
class Call:
    method: str
    args: tuple[Any, ...]


@dataclass
class FakeContainer:
    """A container's mutable state; `info()` gives the immutable view."""

    id: str
    spec: ContainerSpec
    image_id: str
    created_at: datetime
    state: ContainerState = "created"
    exit_code: int | None = None
    oom_killed: bool = False
    error: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    ip_address: str | None = None
    pid: int | None = None
    log: list[tuple[datetime, bytes]] = field(default_factory=list)
    stdin: bytearray = field(default_factory=bytearray)
    tty_size: tuple[int, int] | None = None
    stats: tuple[int, int] = (0, 1 << 20)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def info(self) -> ContainerInfo:
        return ContainerInfo(
            id=self.id, name=self.spec.name, labels=dict(self.spec.labels),
            image=self.spec.image, image_id=self.image_id, state=self.state,
            exit_code=self.exit_code, oom_killed=self.oom_killed, error=self.error,
            created_at=self.created_at, started_at=self.started_at,
            finished_at=self.finished_at, ip_address=self.ip_address, pid=self.pid)

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class FakeRuntime:
    """A `Runtime` in memory. Knobs are plain methods and attributes."""

    def __init__(self, *, images: tuple[str, ...] = (), clock: Clock | None = None) -> None:
        self.clock: Clock = clock or LoopClock()
        self.calls: list[Call] = []
        self.available = True
        self.stop_exit_code = 143
        self.images: dict[str, ImageInfo] = {}
        self.pullable: set[str] = set()
        self.pull_errors: dict[str, str] = {}
        self.networks: dict[str, NetworkInfo] = {}
        self.volumes: dict[str, VolumeInfo] = {}
        self.containers: dict[str, FakeContainer] = {}
        self.exec_handlers: dict[tuple[str, ...], ExecHandler] = {}
        self._exit_on_start: dict[str, tuple[int, bool]] = {}
        self._fail_on_start: dict[str, tuple[str, int]] = {}
        self._failures: dict[str, list[BaseException]] = {}
        self._allocated: dict[str, set[str]] = {}
        self._serial = 0
        self._watchers: list[tuple[dict[str, str], asyncio.Queue[str]]] = []
        for ref in images:
            self.add_image(ref)

    def add_image(self, ref: str, config: ImageConfig | None = None) -> ImageInfo:
        digest = hashlib.sha256(ref.encode()).hexdigest()
        info = ImageInfo(id=f"sha256:{digest}", tags=[ref], config=config or ImageConfig())
        self.images[ref] = info
        return info

    def remove_image(self, ref: str) -> None:
        self.images.pop(ref, None)

    def fail(self, method: str, error: BaseException, *, times: int = 1) -> None:
        """The next `times` calls of `method` raise `error`."""
        self._failures.setdefault(method, []).extend([error] * times)

    def exit(self, container_id: str, code: int, *, oom: bool = False) -> None:
        """The container's process ends now with `code` (137 and oom=True: an OOM kill)."""
        self._finish(self._get(container_id), code, oom=oom)

    def exit_on_start(self, image: str, code: int, *, oom: bool = False) -> None:
        """Every container of `image` exits with `code` as soon as it starts."""
        self._exit_on_start[image] = (code, oom)

    def fail_on_start(self, image: str, message: str, code: int = 127) -> None:
        """Every start of a container of `image` fails: it stays "created" with `message`."""
        self._fail_on_start[image] = (message, code)

    def write_log(self, container_id: str, data: bytes) -> None:
        c = self._get(container_id)
        c.log.append((self.clock.wall(), data))
        c.notify()

    def set_stats(self, container_id: str, *, cpu_usage_ns: int, memory_bytes: int) -> None:
        self._get(container_id).stats = (cpu_usage_ns, memory_bytes)

    def on_exec(self, command: list[str], result: ExecResult | BaseException | ExecHandler
                ) -> None:
        """What exec of exactly `command` does; an exception (e.g. ExecTimedOut) is raised."""
        if isinstance(result, ExecResult | BaseException):
            self.exec_handlers[tuple(command)] = _constant(result)
        else:
            self.exec_handlers[tuple(command)] = result

    def called(self, method: str) -> list[tuple[Any, ...]]:
        return [c.args for c in self.calls if c.method == method]

    def _enter(self, method: str, *args: Any) -> None:
        self.calls.append(Call(method, args))
        if not self.available:
            raise RuntimeUnavailable("fake engine is unavailable")
        if pending := self._failures.get(method):
            raise pending.pop(0)

    def _get(self, container_id: str) -> FakeContainer:
        if container_id in self.containers:
            return self.containers[container_id]
        for c in self.containers.values():
            if c.spec.name == container_id:
                return c
        raise ContainerNotFound(f"No such container: {container_id}")

    def _finish(self, c: FakeContainer, code: int, *, oom: bool = False) -> None:
        c.state, c.exit_code, c.pid = "exited", code, None
        c.oom_killed = c.oom_killed or oom
        c.finished_at = self.clock.wall()
        c.notify()
        self._announce(c)

    def _announce(self, c: FakeContainer) -> None:
        for labels, queue in self._watchers:
            if labels.items() <= c.spec.labels.items():
                queue.put_nowait(c.id)

    async def container_events(self, labels: dict[str, str]) -> AsyncIterator[str]:
        self._enter("container_events", labels)
        watcher = (dict(labels), asyncio.Queue[str]())
        self._watchers.append(watcher)
        try:
            while True:
                yield await watcher[1].get()
        finally:
            self._watchers.remove(watcher)

    async def version(self) -> str:
        self._enter("version")
        return "fake-1.0"

    async def engine(self) -> EngineInfo:
        self._enter("engine")
        return EngineInfo(root_dir="", pid=None)

    async def close(self) -> None:
        self.calls.append(Call("close", ()))

    async def ensure_network(self, name: str, *, subnet: str, gateway: str | None,
                             labels: dict[str, str]) -> NetworkInfo:
        self._enter("ensure_network", name, subnet)
        existing = self.networks.get(name)
        net = ipaddress.ip_network(subnet, strict=False)
        if existing is None:
            if any(net.overlaps(ipaddress.ip_network(n.subnet)) for n in self.networks.values()):
                raise RuntimeFailure("Pool overlaps with other one on this address space")
            first = str(next(net.hosts()))
            existing = NetworkInfo(name, f"net-{len(self.networks) + 1}", str(net),
                                   gateway or first)
            self.networks[name] = existing
            self._allocated[name] = {existing.gateway or first}
        if ipaddress.ip_network(existing.subnet) != net:
            raise RuntimeFailure(f"network {name!r} exists with subnet {existing.subnet}")
        return existing

    async def remove_network(self, name: str) -> None:
        self._enter("remove_network", name)
        if any(c.spec.network_mode == name and c.state == "running"
               for c in self.containers.values()):
            raise RuntimeFailure(f"error while removing network: network {name} has active "
                                 "endpoints")
        self.networks.pop(name, None)

    async def create_volume(self, name: str, *, labels: dict[str, str]) -> VolumeInfo:
        self._enter("create_volume", name, dict(labels))
        if name not in self.volumes:
            self.volumes[name] = VolumeInfo(name, dict(labels),
                                            f"/var/lib/docker/volumes/{name}/_data")
        return self.volumes[name]

    async def volume(self, name: str) -> VolumeInfo | None:
        self._enter("volume", name)
        return self.volumes.get(name)

    async def list_volumes(self, labels: dict[str, str]) -> builtins.list[VolumeInfo]:
        self._enter("list_volumes", dict(labels))
        return [v for v in self.volumes.values() if labels.items() <= v.labels.items()]

    async def remove_volume(self, name: str) -> None:
        self._enter("remove_volume", name)
        users = [c.id[:12] for c in self.containers.values()
                 if any(isinstance(m, VolumeMount) and m.volume == name for m in c.spec.mounts)]
        if users:
            raise RuntimeFailure(f"remove {name}: volume is in use - [{', '.join(users)}]")
        self.volumes.pop(name, None)

    async def image(self, ref: str) -> ImageInfo | None:
        self._enter("image", ref)
        return self.images.get(ref)

    async def pull(self, ref: str) -> ImageInfo:
        self._enter("pull", ref)
        if ref in self.pull_errors:
            raise ImagePullFailed(self.pull_errors[ref])
        if ref in self.images:
            return self.images[ref]
        if ref not in self.pullable:
            raise ImagePullFailed(f"pull access denied for {ref}, repository does not exist")
        return self.add_image(ref)

    async def create(self, spec: ContainerSpec) -> str:
        self._enter("create", spec)
        if spec.image not in self.images:
            raise ImageNotFound(f"No such image: {spec.image}")
        self._free_name(spec.name)
        if spec.network_mode and spec.network_mode.startswith("container:"):
            self._get(spec.network_mode.removeprefix("container:"))
        elif spec.network_mode not in (None, "host", "none", "bridge", *self.networks):
            raise NetworkNotFound(f"network {spec.network_mode} not found")
        for mount in spec.mounts:
            if isinstance(mount, VolumeMount) and mount.volume not in self.volumes:
                self.volumes[mount.volume] = VolumeInfo(mount.volume, {}, "")
        self._serial += 1
        cid = hashlib.sha256(f"fake-container-{self._serial}".encode()).hexdigest()
        self.containers[cid] = FakeContainer(
            id=cid, spec=spec, created_at=self.clock.wall(),
            image_id=self.images[spec.image].id)
        return cid

    def _free_name(self, name: str) -> None:
        for c in list(self.containers.values()):
            if c.spec.name == name:
                if c.state == "running":
                    raise NameInUse(f'The container name "/{name}" is already in use', c.id)
                del self.containers[c.id]

    async def start(self, container_id: str) -> None:
        self._enter("start", container_id)
        c = self._get(container_id)
        if c.state == "running":
            return
        mode = c.spec.network_mode or ""
        if mode.startswith("container:"):
            sandbox = self._get(mode.removeprefix("container:"))
            if sandbox.state != "running":
                raise RuntimeFailure("cannot join network of a non running container: "
                                     f"{sandbox.id}")
        if c.spec.image in self._fail_on_start:
            c.error, c.exit_code = self._fail_on_start[c.spec.image]
            raise RuntimeFailure(c.error)
        if c.ip_address is None and not mode.startswith("container:") and mode not in (
                "host", "none"):
            c.ip_address = c.spec.ip_address or self._allocate_ip(mode or "bridge")
        c.state, c.exit_code, c.oom_killed = "running", None, False
        c.started_at, c.finished_at, c.pid = self.clock.wall(), None, 1000 + self._serial
        c.notify()
        if c.spec.image in self._exit_on_start:
            code, oom = self._exit_on_start[c.spec.image]
            self._finish(c, code, oom=oom)

    def _allocate_ip(self, network: str) -> str:
        subnet = self.networks[network].subnet if network in self.networks else DEFAULT_BRIDGE
        used = self._allocated.setdefault(network, {str(next(
            ipaddress.ip_network(subnet).hosts()))})
        ip = next(str(h) for h in ipaddress.ip_network(subnet).hosts() if str(h) not in used)
        used.add(ip)
        return ip

    async def stop(self, container_id: str, *, timeout: float,
                   signal: str | None = None) -> None:
        self._enter("stop", container_id, timeout, signal)
        c = self._get(container_id)
        if c.state in ("running", "paused", "restarting"):
            self._finish(c, self.stop_exit_code)

    async def kill(self, container_id: str, signal: str = "SIGKILL") -> None:
        self._enter("kill", container_id, signal)
        c = self._get(container_id)
        if c.state in ("running", "paused", "restarting"):
            self._finish(c, 128 + _signal_number(signal))

    async def remove(self, container_id: str, *, force: bool = True) -> None:
        self._enter("remove", container_id, force)
        try:
            c = self._get(container_id)
        except ContainerNotFound:
            return
        if c.state == "running" and not force:
            raise RuntimeFailure(f"You cannot remove a running container {c.id}")
        if c.ip_address:
            for used in self._allocated.values():
                used.discard(c.ip_address)
        c.state = "removing"
        c.notify()
        del self.containers[c.id]
        self._announce(c)

    async def inspect(self, container_id: str) -> ContainerInfo:
        self._enter("inspect", container_id)
        return self._get(container_id).info()

    async def list(self, labels: dict[str, str]) -> builtins.list[ContainerInfo]:
        self._enter("list", dict(labels))
        return [c.info() for c in self.containers.values()
                if labels.items() <= c.spec.labels.items()]

    async def logs(self, container_id: str, *, follow: bool = False, tail: int | None = None,
                   since: datetime | None = None,
                   timestamps: bool = False) -> AsyncIterator[bytes]:
        self._enter("logs", container_id, follow)
        c = self._get(container_id)
        entries = [e for e in c.log if since is None or e[0] >= since]
        if tail is not None:
            entries = entries[-tail:] if tail > 0 else []
        sent = len(c.log)
        for at, data in entries:
            yield _stamped(at, data) if timestamps else data
        while follow:
            while sent < len(c.log):
                at, data = c.log[sent]
                sent += 1
                yield _stamped(at, data) if timestamps else data
            if c.state != "running":
                return
            await c.changed.wait()

    async def exec(self, container_id: str, command: builtins.list[str], *, stdin: bool, tty: bool,
                   env: dict[str, str] | None = None) -> FakeExecSession:
        self._enter("exec", container_id, tuple(command))
        if self._get(container_id).state != "running":
            raise RuntimeFailure(f"Container {container_id} is not running")
        return FakeExecSession(self._handler(command), command, stdin=stdin)

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> FakeAttachSession:
        self._enter("attach", container_id, stdin, tty)
        c = self._get(container_id)
        if c.state != "running":
            raise RuntimeFailure(f"Container {container_id} is not running")
        return FakeAttachSession(c, stdin=stdin and c.spec.stdin_open)

    async def exec_run(self, container_id: str, command: builtins.list[str], *,
                       timeout: float) -> ExecResult:
        self._enter("exec_run", container_id, tuple(command))
        if self._get(container_id).state != "running":
            raise RuntimeFailure(f"Container {container_id} is not running")
        result = self._handler(command)(command, b"")
        if isinstance(result, BaseException):
            raise result
        return result

    def _handler(self, command: builtins.list[str]) -> ExecHandler:
        if tuple(command) in self.exec_handlers:
            return self.exec_handlers[tuple(command)]
        if command[:1] == ["cat"]:
            return lambda _cmd, data: ExecResult(0, data)
        return lambda _cmd, _data: ExecResult(0, b"")

    async def stats(self, container_id: str) -> ContainerStats:
        self._enter("stats", container_id)
        c = self._get(container_id)
        cpu, memory = c.stats if c.state == "running" else (c.stats[0], 0)
        return ContainerStats(cpu_usage_ns=cpu, memory_working_set_bytes=memory,
                              timestamp=self.clock.wall())


def _signal_number(signal: str) -> int:
    """Docker accepts "9", "KILL" and "SIGKILL" alike."""
    if signal.isdigit():
        return int(signal)
    return signals.Signals[signal if signal.startswith("SIG") else f"SIG{signal}"].value


def _constant(result: ExecResult | BaseException) -> ExecHandler:
    def handler(_command: list[str], _stdin: bytes) -> ExecResult | BaseException:
        return result

    return handler


def _stamped(at: datetime, data: bytes) -> bytes:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
    return b"".join(stamp + b" " + line for line in data.splitlines(keepends=True))


class FakeExecSession:
    """Runs its handler when stdin closes (or at once without stdin), then replays output."""

    def __init__(self, handler: ExecHandler, command: list[str], *, stdin: bool) -> None:
        self._handler, self._command = handler, command
        self._stdin = bytearray()
        self._result: ExecResult | None = None
        self._done = asyncio.Event()
        self._read = False
        self.size: tuple[int, int] | None = None
        self.closed = False
        if not stdin:
            self._run()

    def _run(self) -> None:
        outcome = self._handler(self._command, bytes(self._stdin))
        self._result = outcome if isinstance(outcome, ExecResult) else ExecResult(126, b"")
        self._done.set()

    async def read(self) -> tuple[int, bytes] | None:
        await self._done.wait()
        if self._read or self.closed or self._result is None or not self._result.output:
            return None
        self._read = True
        return STDOUT, self._result.output

    async def write_stdin(self, data: bytes) -> None:
        if self._done.is_set():
            raise RuntimeFailure("exec stdin is closed")
        self._stdin += data

    async def close_stdin(self) -> None:
        if not self._done.is_set():
            self._run()

    async def resize(self, width: int, height: int) -> None:
        self.size = (width, height)

    async def wait(self) -> int:
        await self._done.wait()
        return self._result.exit_code if self._result else 0

    async def close(self) -> None:
        self.closed = True
        if not self._done.is_set():
            self._result = ExecResult(137, b"")
            self._done.set()


class FakeAttachSession:
    """The container's log from now on until it stops; stdin lands in the container's
    `stdin` (when it keeps one open) and resizes in its `tty_size`."""

    def __init__(self, container: FakeContainer, *, stdin: bool) -> None:
        self._container, self._stdin = container, stdin
        self._sent = len(container.log)
        self.closed = False

    async def read(self) -> tuple[int, bytes] | None:
        c = self._container
        while not self.closed:
            if self._sent < len(c.log):
                self._sent += 1
                return STDOUT, c.log[self._sent - 1][1]
            if c.state != "running":
                return None
            await c.changed.wait()
        return None

    async def write_stdin(self, data: bytes) -> None:
        if self._stdin:
            self._container.stdin += data

    async def close_stdin(self) -> None:
        return None

    async def resize(self, width: int, height: int) -> None:
        if self._container.spec.tty:
            self._container.tty_size = (width, height)

    async def wait(self) -> int:
        return 0

    async def close(self) -> None:
        self.closed = True
