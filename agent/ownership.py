"""A pod's `fsGroup` on its volume, as the kubelet's `SetVolumeOwnership` applies it.

Every file and directory of the volume gets the group `fsGroup` and group
read-write (read-only for a read-only mount); directories also get group
search and the setgid bit, so that what the pod's containers create later
inherits the group. With `fsGroupChangePolicy: OnRootMismatch` the walk is
skipped when the volume's root already has the group and the bits (a
volume that was set up before); the default, `Always`, walks it every time
a pod sets the volume up.

The tree is the containers' to change while the walk runs, so nothing is
followed: links are only `lchown`ed, directories are entered by
descriptor (`os.fwalk` checks that what it opened is what it listed), and
modes are set through a descriptor opened with `O_NOFOLLOW`. Devices,
sockets and FIFOs are not opened, only given the group.
"""

from __future__ import annotations

import os
import stat

from minik.api.objects import Pod

RW = 0o060
RO = 0o040
SEARCH = 0o010
ON_ROOT_MISMATCH = "OnRootMismatch"


def fs_group_of(pod: Pod) -> int | None:
    value = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
    return int(value) if value is not None else None


def _wanted(mode: int, *, directory: bool, read_only: bool) -> int:
    mask = RO if read_only else RW
    if directory:
        mask |= stat.S_ISGID | SEARCH
    return stat.S_IMODE(mode) | mask


def _root_matches(fd: int, group: int, read_only: bool) -> bool:
    st = os.fstat(fd)
    return st.st_gid == group and stat.S_IMODE(st.st_mode) == _wanted(
        st.st_mode, directory=True, read_only=read_only)


def _own(dir_fd: int, name: str, group: int, read_only: bool) -> None:
    os.chown(name, -1, group, dir_fd=dir_fd, follow_symlinks=False)
    kind = stat.S_IFMT(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    if kind not in (stat.S_IFREG, stat.S_IFDIR):
        return
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(name, flags | (os.O_DIRECTORY if kind == stat.S_IFDIR else 0),
                     dir_fd=dir_fd)
    except OSError:
        return
    try:
        st = os.fstat(fd)
        os.fchmod(fd, _wanted(st.st_mode, directory=stat.S_ISDIR(st.st_mode),
                              read_only=read_only))
    finally:
        os.close(fd)


def apply_fs_group(root: str, group: int, *, read_only: bool = False, policy: str = "") -> bool:
    """Give the volume at `root` to `group`; False when `policy` let it be as it was.
    Blocks: call it in a thread."""
    top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if policy == ON_ROOT_MISMATCH and _root_matches(top, group, read_only):
            return False
        os.fchown(top, -1, group)
        os.fchmod(top, _wanted(os.fstat(top).st_mode, directory=True, read_only=read_only))
        for _, dirs, files, dir_fd in os.fwalk(".", dir_fd=top, follow_symlinks=False):
            for name in [*dirs, *files]:
                try:
                    _own(dir_fd, name, group, read_only)
                except FileNotFoundError:
                    continue
    finally:
        os.close(top)
    return True
