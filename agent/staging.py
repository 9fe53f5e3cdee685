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

A staged mount stays while the pod's containers may start again; a
restart stages again and keeps the mount when it still holds the same
file. `unstage` unmounts a pod's mounts (deepest first, detaching lazily
what is busy) and removes only what it made, never recursively, so a
mount that would not go cannot take the host's files with it. It works
from what the kernel lists (`/proc/self/mountinfo`), so the leftovers of
an agent that was killed are found and removed the same way.

The agent's other host mounts (a tmpfs for memory-backed volumes) are
made and listed with the helpers here too.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import re
import subprocess
from pathlib import Path

from agent.host_paths import Exposed, Opened, Protected, open_beneath

log = logging.getLogger(__name__)

STAGED = "staged"
MS_BIND = 0x1000
MS_REC = 0x4000
MNT_DETACH = 2
_ESCAPE = re.compile(r"\\([0-7]{3})")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


class StagingError(Exception):
    """A bind mount could not be made; the message says why."""


def mount_points_under(path: Path | str) -> list[str]:
    """Mount points at or below `path`, deepest first."""
    top = os.path.realpath(path)
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if point == top or point.startswith(top.rstrip("/") + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def unmount(point: str) -> None:
    """Unmount `point`, detaching it lazily when it is busy."""
    if _libc.umount2(os.fsencode(point), 0) == 0:
        return
    error = ctypes.get_errno()
    if error == errno.EINVAL:
        return
    log.warning("umount %s failed (%s); detaching it lazily", point, os.strerror(error))
    if _libc.umount2(os.fsencode(point), MNT_DETACH) != 0:
        log.error("cannot detach %s: %s", point, os.strerror(ctypes.get_errno()))


def unmount_all(path: Path | str) -> None:
    """Unmount every mount at or below `path`, deepest first."""
    for point in mount_points_under(path):
        unmount(point)


def mount_tmpfs(path: Path, *, mode: int, size: int | None = None) -> bool:
    """Mount a tmpfs on `path` unless one is there; False (logged) when mounting fails."""
    if os.path.ismount(path):
        return True
    options = f"nosuid,nodev,mode={mode:04o}" + (f",size={size}" if size else "")
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                              capture_output=True, text=True, check=False)
    except OSError as e:
        log.warning("cannot mount a tmpfs on %s: %s", path, e)
        return False
    if done.returncode != 0:
        log.warning("cannot mount a tmpfs on %s: %s", path, done.stderr.strip())
        return False
    return True


def _bind(opened: Opened, target: Path) -> None:
    source = f"/proc/self/fd/{opened.fd}".encode()
    flags = MS_BIND | (MS_REC if opened.is_dir else 0)
    if _libc.mount(source, os.fsencode(target), None, flags, None) != 0:
        error = ctypes.get_errno()
        raise StagingError(f"cannot bind {opened.path} for the container: "
                           f"{os.strerror(error)}")


def _make_target(target: Path, *, directory: bool) -> None:
    """An empty directory or file to mount on, whatever a previous staging left there."""
    if target.is_dir() and not target.is_symlink():
        if directory:
            return
        target.rmdir()
    elif target.exists() or target.is_symlink():
        if not directory:
            return
        target.unlink()
    if directory:
        target.mkdir(mode=0o700)
    else:
        target.touch(mode=0o600)


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
        target = holder / str(index)
        if mount_points_under(target):
            with contextlib.suppress(OSError):
                st = target.stat()
                if (st.st_dev, st.st_ino) == opened.ident:
                    return str(target)
            unmount_all(target)
        try:
            _make_target(target, directory=opened.is_dir)
        except OSError as e:
            raise StagingError(f"cannot prepare {target}: {e.strerror}") from e
        _bind(opened, target)
        return str(target)

    def pin(self, uid: str, container: str, index: int, top: Opened, sub: str = "", *,
            dir_mode: int | None = None, protected: Protected | None = None) -> str:
        """Stage `sub` inside the directory `top` (or `top` itself) for mount `index`.

        Raises `PathError` when `sub` cannot be had inside `top`, `Exposed`
        when the bind would hand over something `protected`, `StagingError`
        when the bind fails.
        """
        opened = open_beneath(top, sub, dir_mode=dir_mode) if sub else top
        try:
            if protected is not None and (what := protected.exposed_by(opened)):
                raise Exposed(what, opened.path)
            return self.stage(uid, container, index, opened)
        finally:
            if opened is not top:
                opened.close()

    def unstage(self, uid: str) -> bool:
        """Unmount and remove the pod's staged mounts; False when some would not go."""
        staged = self._staged(uid)
        if not staged.exists():
            return True
        unmount_all(staged)
        if left := mount_points_under(staged):
            log.error("staged mounts of pod %s are still mounted, leaving them: %s", uid, left)
            return False
        try:
            for dirpath, dirnames, filenames in os.walk(staged, topdown=False):
                for name in filenames:
                    os.unlink(os.path.join(dirpath, name))
                for name in dirnames:
                    os.rmdir(os.path.join(dirpath, name))
            staged.rmdir()
        except OSError as e:
            log.error("cannot remove the staged mounts of pod %s: %s", uid, e)
            return False
        return True

    def pods(self) -> set[str]:
        """Uids of pods with staged mounts on disk (for cleanup after an agent restart)."""
        if not self._pods.is_dir():
            return set()
        return {d.name for d in self._pods.iterdir() if (d / STAGED).is_dir()}
