"""The agent's mount primitives: binding, unmounting, and removing trees that may hold mounts.

Three rules keep the agent's mounts from reaching the host's own:

- **A copy is a slave.** A bind of a shared mount (systemd makes `/`
  shared) joins that mount's peer group, and from then on every mount and
  unmount under the copy propagates to the original: unmounting a staged
  copy of `/` would unmount the host's /dev/pts, /sys/fs/cgroup and
  Docker's netns mounts. So `bind` makes its copy a slave (`MS_REC |
  MS_SLAVE`) at once: the host's later mounts still reach it (as they
  would a direct bind), nothing done to it reaches the host. `detach`
  makes a mount a slave again before unmounting it, so a copy left by an
  older agent (a peer) is cut off first, and a mount it cannot cut off is
  left mounted rather than unmounted into the host.
- **A mount is named by a descriptor, not a path.** `detach` opens the
  entry (`O_PATH | O_NOFOLLOW`, from the directory the agent holds),
  checks that it is a mount (its mount id differs from its directory's,
  from `/proc/self/fdinfo`) and unmounts `/proc/self/fd/N`, the kernel's
  link to exactly that mount: no link and no rename can redirect it to
  another place (`UMOUNT_NOFOLLOW` would guard only the last component).
  One `MNT_DETACH` takes the mount and everything mounted below it, so
  nothing is looked up again by the path strings of /proc/self/mountinfo.
- **A removal never crosses a mount.** `remove_tree` walks by directory
  descriptors and refuses (`MountInside`) the first directory on another
  mount, before reading anything in it; unlink and rmdir fail with EBUSY on
  a mount point. What cannot be removed is left, never what is behind it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

MS_BIND = 0x1000
MS_REC = 0x4000
MS_SLAVE = 1 << 19
MNT_DETACH = 2
MAX_STACKED = 64
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
ENTRY_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_ESCAPE = re.compile(r"\\([0-7]{3})")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


class MountError(OSError):
    """A mount call failed; `strerror` says why."""


class MountInside(Exception):
    """A tree to remove holds a mount at `path`; nothing below it was touched."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} is a mount point")
        self.path = path


def _fd_path(fd: int) -> bytes:
    return f"/proc/self/fd/{fd}".encode()


def _mount(source: bytes | None, target: bytes, flags: int) -> None:
    if _libc.mount(source, target, None, flags, None) != 0:
        error = ctypes.get_errno()
        raise MountError(error, os.strerror(error))


def mount_id(fd: int) -> int:
    """The id of the mount the descriptor's file is on."""
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            if line.startswith("mnt_id:"):
                return int(line.split()[1])
    raise MountError(errno.ENOTSUP, "the kernel does not report mount ids")


@contextlib.contextmanager
def open_dir(path: str | Path, *, dir_fd: int | None = None) -> Iterator[int]:
    """A directory's descriptor (not through a symlink), closed after the block."""
    fd = os.open(path, DIR_FLAGS, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def bind(source_fd: int, target: str | bytes, *, recursive: bool) -> None:
    """Bind the file `source_fd` holds onto `target` (a path of the agent's own), as a slave.

    If the copy cannot be made a slave it stays mounted (unmounting a peer
    would propagate) and `MountError` says so; `detach` tries again.
    """
    target = os.fsencode(target)
    _mount(_fd_path(source_fd), target, MS_BIND | (MS_REC if recursive else 0))
    try:
        _mount(None, target, MS_REC | MS_SLAVE)
    except MountError as e:
        raise MountError(e.errno, f"the bind cannot be made a slave: {e.strerror}") from e


def make_slave(fd: int) -> None:
    """Make the mount whose root `fd` holds, and every mount below it, a slave."""
    _mount(None, _fd_path(fd), MS_REC | MS_SLAVE)


def is_mounted_at(dir_fd: int, name: str) -> bool:
    """Whether a mount covers the entry `name` of the directory `dir_fd`."""
    try:
        fd = os.open(name, ENTRY_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    try:
        return mount_id(fd) != mount_id(dir_fd)
    finally:
        os.close(fd)


def detach(dir_fd: int, name: str) -> int:
    """Unmount whatever is mounted on the entry `name` of `dir_fd` (stacked mounts too,
    each with what is below it), each made a slave first; how many there were."""
    for count in range(MAX_STACKED):
        try:
            fd = os.open(name, ENTRY_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            return count
        try:
            if mount_id(fd) == mount_id(dir_fd):
                return count
            make_slave(fd)
            if _libc.umount2(_fd_path(fd), MNT_DETACH) != 0:
                error = ctypes.get_errno()
                raise MountError(error, os.strerror(error))
        finally:
            os.close(fd)
    raise MountError(errno.ELOOP, f"more than {MAX_STACKED} mounts stacked on {name}")


def remove_tree(path: Path) -> None:
    """Remove `path` and everything below it, crossing no mount: `MountInside` names the
    first mount met (left with what it holds); a missing `path` is fine."""
    with contextlib.ExitStack() as scope:
        try:
            parent = scope.enter_context(open_dir(path.parent))
        except FileNotFoundError:
            return
        mnt = mount_id(parent)
        try:
            top = os.open(path.name, DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise
            _unlink(parent, path.name, path)
            return
        if mount_id(top) != mnt:
            os.close(top)
            raise MountInside(path)
        stack: list[tuple[int, Path, list[str]]] = [(top, path, [])]
        try:
            stack[0] = (top, path, os.listdir(top))
            while stack:
                fd, where, names = stack[-1]
                if not names:
                    stack.pop()
                    os.close(fd)
                    os.rmdir(where.name, dir_fd=stack[-1][0] if stack else parent)
                    continue
                name = names.pop()
                if not stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                    _unlink(fd, name, where / name)
                    continue
                child = os.open(name, DIR_FLAGS, dir_fd=fd)
                if mount_id(child) != mnt:
                    os.close(child)
                    raise MountInside(where / name)
                stack.append((child, where / name, os.listdir(child)))
        finally:
            for fd, _, _ in stack:
                os.close(fd)


def _unlink(dir_fd: int, name: str, where: Path) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    except OSError as e:
        if e.errno == errno.EBUSY:
            raise MountInside(where) from e
        raise


def mount_points_under(path: Path | str) -> list[str]:
    """Mount points at or below `path` as /proc/self/mountinfo lists them, deepest first
    (to report what is there; never to unmount by)."""
    top = os.path.realpath(path)
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if point == top or point.startswith(top.rstrip("/") + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


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
