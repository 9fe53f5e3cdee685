"""The container runtime seam: what the agent asks of a container engine.

This is minik's CRI. The agent speaks only this vocabulary — specs,
infos, errors — and never a Docker type, so a pod worker can be tested
against `agent.fake_runtime.FakeRuntime` and run against
`agent.docker_runtime.DockerRuntime` (which, with its engine client in
`agent.docker_client` and its translations in `agent.docker_convert`, is
all that imports the Docker SDK). Every method
is async; an implementation must not block the event loop.

Errors are ours: an implementation maps its engine's exceptions to the
`RuntimeFailure` family at one boundary, so callers can tell "the engine
is down" (`RuntimeUnavailable`) from "that container is gone"
(`ContainerNotFound`) from "the engine refused" (plain `RuntimeFailure`).
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

ContainerState = Literal["created", "running", "exited", "dead", "paused", "restarting", "removing"]
CONTAINER_STATES: tuple[ContainerState, ...] = (
    "created", "running", "exited", "dead", "paused", "restarting", "removing",
)


class RuntimeFailure(Exception):
    """The engine refused or failed an operation; the message is its own words."""


class RuntimeUnavailable(RuntimeFailure):
    """The engine cannot be reached or did not answer in time."""


class ImageNotFound(RuntimeFailure):
    """The image is not present locally."""


class ImagePullFailed(RuntimeFailure):
    """A pull failed; the message is the engine's (or registry's) error text."""


class ContainerNotFound(RuntimeFailure):
    """No container with that id or name exists."""


class NetworkNotFound(RuntimeFailure):
    """No network with that name exists."""


class VolumeNotFound(RuntimeFailure):
    """No named volume with that name exists."""


class ExecTimedOut(RuntimeFailure):
    """An `exec_run` command did not finish in time; it was killed or abandoned."""


class NameInUse(RuntimeFailure):
    """A running container already holds the requested name."""

    def __init__(self, message: str, container_id: str) -> None:
        super().__init__(message)
        self.container_id = container_id


@dataclass(frozen=True)
class BindMount:
    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class TmpfsMount:
    target: str
    size_bytes: int | None = None
    mode: int | None = None


@dataclass(frozen=True)
class VolumeMount:
    """A named volume of the engine (a `VolumeInfo`'s name) mounted at `target`."""

    volume: str
    target: str
    read_only: bool = False


Mount = BindMount | TmpfsMount | VolumeMount


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""
    host_port: int | None = None


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to create one container, in engine-neutral terms.

    `command` overrides the image entrypoint and `args` its cmd, as in a
    Kubernetes container. `network_mode` is "container:<id>" for an app
    container joining its sandbox, or a network name for the sandbox.
    Swap is never granted: the memory limit is also the memory+swap limit.
    """

    name: str
    image: str
    labels: dict[str, str] = field(default_factory=dict)
    command: list[str] | None = None
    args: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    network_mode: str | None = None
    network_aliases: list[str] = field(default_factory=list)
    ip_address: str | None = None
    ipc_mode: str | None = None
    pid_mode: str | None = None
    hostname: str | None = None
    domainname: str | None = None
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    extra_hosts: dict[str, str] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)
    user: str | None = None
    group_add: list[str] = field(default_factory=list)
    read_only_rootfs: bool = False
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpu_shares: int | None = None
    memory_limit: int | None = None
    stdin_open: bool = False
    stdin_once: bool = False
    tty: bool = False
    published_ports: list[PortMapping] = field(default_factory=list)
    stop_signal: str | None = None
    init: bool = False
    sysctls: dict[str, str] = field(default_factory=dict)
    shm_size: int | None = None


@dataclass(frozen=True)
class ContainerInfo:
    """A container as the engine reports it.

    `image` is the reference it was created from; `ip_address` is its
    address on its own network (a sandbox's pod IP), None for containers
    that join another's network namespace. `exit_code` is None until the
    container has run and stopped, or failed to start: then it stays
    "created", with the engine's `error` and exit code.
    """

    id: str
    name: str
    labels: dict[str, str]
    image: str
    image_id: str
    state: ContainerState
    exit_code: int | None = None
    oom_killed: bool = False
    error: str = ""
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    ip_address: str | None = None
    pid: int | None = None


@dataclass(frozen=True)
class ImageConfig:
    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    working_dir: str = ""
    user: str = ""
    stop_signal: str | None = None
    exposed_ports: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImageInfo:
    id: str
    tags: list[str]
    config: ImageConfig


@dataclass(frozen=True)
class NetworkInfo:
    name: str
    id: str
    subnet: str
    gateway: str | None


@dataclass(frozen=True)
class VolumeInfo:
    """A named volume: its labels, and where its content is on the host (`mountpoint`)."""

    name: str
    labels: dict[str, str]
    mountpoint: str


@dataclass(frozen=True)
class EngineInfo:
    """The engine itself: its state directory (Docker's DockerRootDir; "" when unknown),
    and its pid as this process sees it (None when unknown)."""

    root_dir: str
    pid: int | None


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: bytes


@dataclass(frozen=True)
class InterfaceStats:
    """The byte counters of one network interface (`eth0`) of a container."""

    name: str
    receive_bytes: int
    transmit_bytes: int


@dataclass(frozen=True)
class ContainerStats:
    """One sample of a container's cgroup and network counters, as cAdvisor reads them.

    The network counters are the container's network namespace's: only a
    sandbox (or a hostNetwork pod's container) owns one.
    """

    cpu_usage_ns: int
    memory_working_set_bytes: int
    timestamp: datetime
    memory_usage_bytes: int = 0
    memory_rss_bytes: int = 0
    interfaces: tuple[InterfaceStats, ...] = ()


STDOUT = 1
STDERR = 2


class ExecSession(Protocol):
    """An interactive process in a running container (kubectl exec).

    `read` returns (stream, data) with stream `STDOUT` or `STDERR` (always
    `STDOUT` with a tty) and None at end of output. `close` releases the
    session whether or not the process has finished.
    """

    async def read(self) -> tuple[int, bytes] | None: ...
    async def write_stdin(self, data: bytes) -> None: ...
    async def close_stdin(self) -> None: ...
    async def resize(self, width: int, height: int) -> None: ...
    async def wait(self) -> int: ...
    async def close(self) -> None: ...


@runtime_checkable
class Runtime(Protocol):
    """A container engine on one node, as the agent sees it.

    Containers are found by labels (`agent.labels`), never by name.
    The engine's own restart policy is always off: the agent restarts.
    """

    async def version(self) -> str: ...

    async def engine(self) -> EngineInfo:
        """Where the engine keeps its state and which process it is (see `EngineInfo`)."""

    async def close(self) -> None:
        """Release connections, threads and open streams."""

    async def ensure_network(
        self, name: str, *, subnet: str, gateway: str | None, labels: dict[str, str]
    ) -> NetworkInfo:
        """Create a bridge network with its own subnet, or reuse one that matches.

        An existing network with another subnet (or gateway, when given) is
        a `RuntimeFailure` naming both: minik never silently uses it.
        """

    async def remove_network(self, name: str) -> None:
        """Remove a network; an absent one is fine."""

    async def create_volume(self, name: str, *, labels: dict[str, str]) -> VolumeInfo:
        """Create a named volume of the engine's local driver; as Docker does, a volume of
        that name that exists already is returned as it is."""

    async def volume(self, name: str) -> VolumeInfo | None:
        """The named volume, or None when there is none."""

    async def list_volumes(self, labels: dict[str, str]) -> builtins.list[VolumeInfo]:
        """Named volumes whose labels include all of `labels`."""

    async def remove_volume(self, name: str) -> None:
        """Remove a named volume (and its content); an absent one is fine, one a container
        still uses is a `RuntimeFailure`."""

    async def image(self, ref: str) -> ImageInfo | None:
        """The local image, or None when it is not present."""

    async def pull(self, ref: str) -> ImageInfo:
        """Pull an image; `ImagePullFailed` carries the engine's message."""

    async def create(self, spec: ContainerSpec) -> str:
        """Create (not start) a container and return its id.

        `ImageNotFound` when the image is not local. A name held by a
        stopped leftover is reclaimed; one held by a running container
        is `NameInUse`.
        """

    async def start(self, container_id: str) -> None: ...

    async def stop(
        self, container_id: str, *, timeout: float, signal: str | None = None
    ) -> None:
        """Send `signal` (default: the container's stop signal, else SIGTERM),
        wait up to `timeout` seconds, then SIGKILL. Stopping a stopped
        container is fine; an absent one is `ContainerNotFound`."""

    async def kill(self, container_id: str, signal: str = "SIGKILL") -> None:
        """Signal the main process; a container that is not running is fine."""

    async def remove(self, container_id: str, *, force: bool = True) -> None:
        """Remove a container (killing it when `force`); an absent one is fine."""

    async def inspect(self, container_id: str) -> ContainerInfo: ...

    async def list(self, labels: dict[str, str]) -> builtins.list[ContainerInfo]:
        """Containers in every state whose labels include all of `labels`.

        Cheap enough for a relist every second with ~100 containers.
        """

    def container_events(self, labels: dict[str, str]) -> AsyncIterator[str]:
        """Ids of containers whose labels include all of `labels`, as they stop or go.

        A hint, not the truth (the list is): it lets the agent see a crash,
        a `docker kill` or a `docker rm` at once instead of at its next
        relist. Ends or raises when the engine's stream breaks; a consumer
        that stops iterating releases the stream.
        """

    def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: datetime | None = None,
        timestamps: bool = False,
    ) -> AsyncIterator[bytes]:
        """stdout and stderr bytes in order of arrival (chunks, not lines).

        With `follow` it ends when the container stops; a consumer that
        stops iterating (or is cancelled) releases the stream.
        """

    async def exec(
        self,
        container_id: str,
        command: builtins.list[str],
        *,
        stdin: bool,
        tty: bool,
        env: dict[str, str] | None = None,
    ) -> ExecSession: ...

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> ExecSession:
        """The container's main process (kubectl attach): its output from now on and, with
        `stdin`, its standard input when the container keeps one open. `tty` is the
        container's own setting (it decides how the output is framed). The session ends
        when the container stops; ending stdin or closing the session detaches, and never
        stops the container; `wait` is 0 (the kubelet reports no exit code for attach)."""

    async def exec_run(
        self, container_id: str, command: builtins.list[str], *, timeout: float
    ) -> ExecResult:
        """Run a command to completion (exec probes, hooks), stdout+stderr together.

        After `timeout` seconds the command is killed (or, when that is not
        possible, abandoned) and `ExecTimedOut` is raised.
        """

    async def stats(self, container_id: str) -> ContainerStats:
        """One sample: cumulative CPU time and working-set memory (usage - inactive file)."""
