"""Staged bind mounts: what the agent opened and checked, pinned where Docker can bind it.

Handing Docker a host path lets dockerd resolve it again, after the
agent's checks (see `agent.host_paths`). Instead, as the kubelet does for
a subPath, the agent bind-mounts the descriptor it opened —
`/proc/self/fd/N`, a link the kernel follows to exactly that file, not a
path looked up again — onto a staging path of its own,
`<pods>/<uid>/staged/<container>/<mount index>`, and gives Docker that.
The staging directories are the agent's, mode 0700, in its private state
directory: no other party can swap anything there. Directories are bound
recursively (what Docker would have done with the path itself).

Each staged copy is a slave of what it binds (`agent.mounts.bind`): the
host's later mounts reach it, its own unmount never reaches the host.
Docker then binds the staged path into the container with its default
`rprivate` propagation, so a running container's view is fixed at its
start, as with a direct bind, and a container started later (a restart)
sees what the host mounted meanwhile, as Docker binding the path itself
would. (Private copies would freeze the host's view at the first staging.)

A staged mount stays while the pod's containers may start again; a
restart stages again and keeps the mount when it still holds the same
file. `unstage` detaches the mounts of the fixed layout, each with one
lazy unmount by descriptor (`agent.mounts.detach`), and removes the
entries with unlink and rmdir: it never descends into an entry, so a
mount that would not go makes rmdir fail (EBUSY) instead of removing the
host's files through it. It works from the layout on disk, so the
leftovers of an agent that was killed are found and removed the same way.

Staging needs the agent to bind-mount (root) in the mount namespace the
engine uses; `staging_problem` tells, at start, when it cannot.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

from agent.host_paths import Exposed, Opened, open_beneath
from agent.mounts import (
    ENTRY_FLAGS,
    MountError,
    MountInside,
    bind,
    detach,
    is_mounted_at,
    make_slave,
    open_dir,
    remove_tree,
)
from agent.protected import Protected

log = logging.getLogger(__name__)

STAGED = "staged"
PROBE = ".staging-probe"


class StagingError(Exception):
    """A bind mount could not be made; the message says why (without the path: a subPath
    expanded from a Secret must not reach events)."""


def _holds(dir_fd: int, name: str, opened: Opened) -> bool:
    """The entry is a mount of exactly the file `opened` holds (then made a slave, in
    case an older agent left it a peer of the host's mount)."""
    if not is_mounted_at(dir_fd, name):
        return False
    fd = os.open(name, ENTRY_FLAGS, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != opened.ident:
            return False
        make_slave(fd)
    finally:
        os.close(fd)
    return True


def _make_target(dir_fd: int, name: str, *, directory: bool) -> None:
    """An empty directory or file to mount on, whatever a previous staging left there
    (nothing is mounted there now)."""
    with contextlib.suppress(FileNotFoundError):
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode) == directory and (directory or stat.S_ISREG(mode)):
            return
        if stat.S_ISDIR(mode):
            os.rmdir(name, dir_fd=dir_fd)
        else:
            os.unlink(name, dir_fd=dir_fd)
    if directory:
        os.mkdir(name, 0o700, dir_fd=dir_fd)
    else:
        os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=dir_fd))


def _remove_entry(dir_fd: int, name: str) -> None:
    """Unlink a file or remove an empty directory; never what is inside a directory."""
    if stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
        os.rmdir(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


class Staging:
    """Staged bind mounts of the pods under `pods` (`<pods>/<uid>/staged/...`)."""

    def __init__(self, pods: Path) -> None:
        self._pods = pods

    def _staged(self, uid: str) -> Path:
        return self._pods / uid / STAGED

    def stage(self, uid: str, container: str, index: int, opened: Opened) -> str:
        """Bind `opened` at the container's staging path for mount `index`; that path."""
        staged = self._staged(uid)
        staged.mkdir(mode=0o700, parents=True, exist_ok=True)
        staged.chmod(0o700)
        holder = staged / container
        holder.mkdir(mode=0o700, exist_ok=True)
        name = str(index)
        try:
            with open_dir(holder) as holder_fd:
                if not _holds(holder_fd, name, opened):
                    detach(holder_fd, name)
                    _make_target(holder_fd, name, directory=opened.is_dir)
                    bind(opened.fd, f"/proc/self/fd/{holder_fd}/{name}",
                         recursive=opened.is_dir)
        except OSError as e:
            raise StagingError(f"cannot bind-mount it for the container: {e.strerror}") from e
        return str(holder / name)

    def pin(self, uid: str, container: str, index: int, top: Opened, sub: str = "", *,
            dir_mode: int | None = None, protected: Protected | None = None) -> str:
        """Stage `sub` inside the directory `top` (or `top` itself) for mount `index`.

        Raises `PathError` when `sub` cannot be had inside `top` (or, with
        `protected`, would have to be created inside a protected path),
        `Exposed` when the bind would hand over something `protected`,
        `StagingError` when the bind fails.
        """
        opened = (open_beneath(top, sub, dir_mode=dir_mode, protected=protected)
                  if sub else top)
        try:
            if protected is not None and (what := protected.exposed_by(opened)):
                raise Exposed(what, opened.path)
            return self.stage(uid, container, index, opened)
        finally:
            if opened is not top:
                opened.close()

    def unstage(self, uid: str) -> bool:
        """Unmount and remove the pod's staged mounts; False (logged) when some would not go."""
        staged = self._staged(uid)
        try:
            with open_dir(staged) as staged_fd:
                for container in os.listdir(staged_fd):
                    detach(staged_fd, container)
                    with open_dir(container, dir_fd=staged_fd) as holder_fd:
                        for name in os.listdir(holder_fd):
                            detach(holder_fd, name)
                            _remove_entry(holder_fd, name)
                    os.rmdir(container, dir_fd=staged_fd)
            staged.rmdir()
        except FileNotFoundError:
            return not staged.exists()
        except OSError as e:
            log.error("cannot remove the staged mounts of pod %s, leaving them: %s", uid, e)
            return False
        return True

    def pods(self) -> set[str]:
        """Uids of pods with staged mounts on disk (for cleanup after an agent restart)."""
        if not self._pods.is_dir():
            return set()
        return {d.name for d in self._pods.iterdir() if (d / STAGED).is_dir()}

    def probe(self) -> str | None:
        """Why the agent cannot stage here (it may not bind-mount), or None."""
        probe = self._pods / PROBE
        try:
            remove_tree(probe)
            (probe / "source").mkdir(mode=0o700, parents=True)
            try:
                with open_dir(probe) as probe_fd, open_dir("source", dir_fd=probe_fd) as source:
                    os.mkdir("target", 0o700, dir_fd=probe_fd)
                    try:
                        bind(source, f"/proc/self/fd/{probe_fd}/target", recursive=False)
                    finally:
                        detach(probe_fd, "target")
            finally:
                remove_tree(probe)
        except MountError as e:
            return f"the agent cannot bind-mount ({e.strerror}): it must run as root"
        except (OSError, MountInside) as e:
            return f"the agent cannot use its staging directory {probe}: {e}"
        return None


def staging_problem(pods: Path, engine_pid: int | None) -> str | None:
    """Why hostPath and subPath mounts cannot be staged for the engine, or None.

    The engine must see the agent's mounts: dockerd in another mount
    namespace (the agent in a container, say) would bind the empty staging
    directory instead. `engine_pid` (None when unknown) is compared by
    its /proc/<pid>/ns/mnt with the agent's.
    """
    if engine_pid is not None:
        try:
            ours = os.readlink("/proc/self/ns/mnt")
            theirs = os.readlink(f"/proc/{engine_pid}/ns/mnt")
        except OSError as e:
            log.info("cannot compare the engine's mount namespace with the agent's: %s", e)
        else:
            if ours != theirs:
                return (f"the container engine (pid {engine_pid}) runs in another mount "
                        f"namespace ({theirs}, the agent in {ours}): it would not see "
                        f"the agent's staged mounts")
    return Staging(pods).probe()
