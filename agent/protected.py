"""What no unprivileged pod may be handed: minik's secrets and the container engine.

`Protected` holds paths, each with what it is (for messages). A bind
exposes one when it is that path, lies inside it, or is a directory above
it (`/`, /var/run); nothing is created inside one either (a FileOrCreate
hostPath in the home must not plant a file there, even when the mount is
then refused). It is judged by inode along the chain of parents (`..`
from the descriptor, see `agent.host_paths`), so a bind mount or a hard
link of a protected path elsewhere is caught as well as the path itself.
(A bind mount of a protected directory that the node's admin made *below*
a hostPath is not looked for.) The paths are given, not built in, so
tests protect a socket of their own and never go near the real one; on a
node (`for_node`) they are the engine's sockets and state and every minik
home on the host, besides the instance's own home and the pods' volumes.

This guards minik's own secrets and the engine (its socket is root on the
host; /var/lib/docker holds every container's environment, Secrets
included), which would otherwise be one hostPath away from any pod. It is
not a sandbox: /proc, /sys and /dev stay allowed, as in Kubernetes, where
hostPath and privileged are features for trusted workloads (Pod Security
admission, which restricts them per namespace, comes later).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from agent.host_paths import Opened, PathError, dir_lineage, open_host_path
from minik.home import SERVER_MODULE, default_home

DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")

ENGINE_SOCKET = "the Docker socket"
ENGINE_STATE = "the container engine's state"
MINIK_HOME = "another minik's home"
ENGINE_DIRS = ("/run/docker", "/var/run/docker", "/run/containerd", "/var/run/containerd",
               "/var/lib/docker", "/var/lib/containerd")
"""Docker's exec-root (netns, containerd's socket), containerd's state and sockets, and the
engines' usual roots (Docker's own root, from the engine, is added at the agent's start)."""


def engine_sockets() -> list[str]:
    """The Docker engine's sockets: the usual places and DOCKER_HOST's."""
    sockets = list(DOCKER_SOCKETS)
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        sockets.append(host[len("unix://"):])
    return sockets


def minik_homes() -> list[str]:
    """The default minik home and those of the minik servers running on this host (from
    their command lines: `python -m minik.server --home DIR ...`)."""
    homes = [str(default_home())]
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            argv = Path(entry.path, "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if SERVER_MODULE.encode() in argv and b"--home" in argv[:-1]:
            homes.append(os.fsdecode(argv[argv.index(b"--home") + 1]))
    return homes


class Protected:
    """Paths no unprivileged pod may be handed, each with what it is (for messages)."""

    def __init__(self, paths: Mapping[str | Path, str], *, node: bool = False) -> None:
        self._paths = {str(path): what for path, what in paths.items()}
        self._node = node

    @classmethod
    def for_node(cls, others: Mapping[str | Path, str] | None = None) -> Protected:
        """The engine's sockets (as DOCKER_HOST says now) and state, minik's homes (as
        found now), and `others` (this instance's home, say)."""
        return cls(others or {}, node=True)

    @property
    def paths(self) -> dict[str, str]:
        node: dict[str, str] = {}
        if self._node:
            node = {**dict.fromkeys(engine_sockets(), ENGINE_SOCKET),
                    **dict.fromkeys(ENGINE_DIRS, ENGINE_STATE),
                    **dict.fromkeys(minik_homes(), MINIK_HOME)}
        return {**node, **self._paths}

    def with_paths(self, others: Mapping[str | Path, str]) -> Protected:
        paths: dict[str | Path, str] = {path: what for path, what in self._paths.items()}
        paths.update(others)
        return Protected(paths, node=self._node)

    def _first(self, hit: Callable[[Opened], bool]) -> str | None:
        """What the first protected path that exists and is `hit` is, or None."""
        for path, what in self.paths.items():
            try:
                protected = open_host_path(path)
            except PathError:
                continue
            with protected:
                if hit(protected):
                    return what
        return None

    def exposed_by(self, opened: Opened) -> str | None:
        """What protected thing a bind of `opened` would hand over, or None."""
        return self._first(lambda protected: protected.ident in opened.lineage or (
            opened.is_dir and opened.ident in protected.lineage))

    def covering(self, dir_fd: int) -> str | None:
        """What protected directory the directory `dir_fd` is or lies in, or None."""
        lineage = dir_lineage(dir_fd)
        return self._first(lambda protected: protected.ident in lineage)
