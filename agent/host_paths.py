"""Opening host paths without races, and telling what a bind of one would expose.

Docker resolves a bind mount's source path itself, when it creates the
container: a path the agent checked and then handed over by name can have
been swapped in between (a symlink flipped to /run/docker.sock). So the
agent pins what it checks. `open_host_path` opens a path once, component
by component, with `O_PATH|O_NOFOLLOW`, and follows symlinks itself (at
most 40, as the kernel): an absolute target starts again at `/`, a
relative one at the link's directory, component by component like the
rest. `open_beneath` does the same from a directory it already holds (a
volume, for a `subPath`) and refuses a result that is not inside it; the
kubelet resolves a subPath's links on the host the same way. What was
opened is then checked through its descriptor (`fstat`, and where the
kernel says it is) and bind-mounted by `agent.staging` from
`/proc/self/fd/N`, with mount(2) in the agent's own process: the
container gets exactly what was checked, whatever happens to the path
afterwards.

What is created on the way (the OrCreate types, a missing subPath
directory) is made through the same walk: never inside a path
`agent.protected.Protected` guards, its mode set on the descriptor that
made it. Every lineage (identity of what was opened, then its parents')
lets `Protected` judge by inode what a bind would expose.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.protected import Protected

OPEN_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_LINKS = 40
DIRECTORY_MODE = 0o755
FILE_MODE = 0o644

Ident = tuple[int, int]


class PathError(Exception):
    """A path cannot be opened as asked; the message says why, for the user."""


class Exposed(Exception):
    """A bind of `path` would hand over `what` (a protected path)."""

    def __init__(self, what: str, path: str) -> None:
        super().__init__(f"{path} exposes {what}")
        self.what = what
        self.path = path


@dataclass(frozen=True, slots=True)
class Opened:
    """An `O_PATH` descriptor of what a path led to, as it was when opened.

    `lineage` is its identity (device, inode) and then its parents' up to
    `/`, crossing mounts as `..` does.
    """

    fd: int
    path: str
    mode: int
    lineage: tuple[Ident, ...]

    @property
    def ident(self) -> Ident:
        return self.lineage[0]

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> Opened:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def kernel_path(fd: int) -> str:
    """Where the kernel says the descriptor's file is now."""
    path = os.readlink(f"/proc/self/fd/{fd}")
    if not path.startswith("/") or path.endswith(" (deleted)"):
        raise PathError(f"{path} went away while it was being opened")
    return path


def _open_root() -> int:
    return os.open("/", OPEN_FLAGS | os.O_DIRECTORY)


def _names(path: str) -> list[str]:
    return [name for name in path.split("/") if name not in ("", ".")]


def _ident(fd: int) -> Ident:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def dir_lineage(fd: int) -> tuple[Ident, ...]:
    """A directory's identity, then its parents' up to `/`."""
    chain = [_ident(fd)]
    current = os.open("..", OPEN_FLAGS | os.O_DIRECTORY, dir_fd=fd)
    try:
        while (ident := _ident(current)) != chain[-1]:
            chain.append(ident)
            parent = os.open("..", OPEN_FLAGS | os.O_DIRECTORY, dir_fd=current)
            os.close(current)
            current = parent
    finally:
        os.close(current)
    return tuple(chain)


def _opened(fd: int, parent: int) -> Opened:
    """`fd`, found in directory `parent`, as an `Opened` (which then owns `fd`)."""
    try:
        mode = os.fstat(fd).st_mode
        chain = dir_lineage(fd) if stat.S_ISDIR(mode) else (_ident(fd), *dir_lineage(parent))
        return Opened(fd, kernel_path(fd), mode, chain)
    except BaseException:
        os.close(fd)
        raise


class CreationRefused(PermissionError):
    """Something would be created inside a protected path; `strerror` says what it is."""


@dataclass(slots=True)
class _Create:
    """What a walk may create where a name is missing; `allowed` vets the directory, and
    nothing is created inside a `protected` path."""

    last: str = ""
    parents: bool = False
    mode: int = DIRECTORY_MODE
    allowed: Callable[[int], bool] = lambda fd: True
    protected: Protected | None = None


def _create(dir_fd: int, name: str, *, last: bool, create: _Create) -> int:
    """Create `name` in `dir_fd` (or take what appeared there meanwhile); its `O_PATH` fd.

    The mode is set on the descriptor that made the file (a directory:
    the one opened right after mkdir, without following a link), and the
    result must be that same file, so a name swapped meanwhile is neither
    chmodded nor used.
    """
    kind = create.last if last else ("Directory" if create.parents else "")
    if not kind or not create.allowed(dir_fd):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", name)
    if create.protected is not None and (what := create.protected.covering(dir_fd)):
        raise CreationRefused(errno.EPERM,
                              f"creating inside {what} requires a privileged container", name)
    mode = create.mode if kind == "Directory" else FILE_MODE
    try:
        if kind == "Directory":
            os.mkdir(name, mode, dir_fd=dir_fd)
            made = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                           dir_fd=dir_fd)
        else:
            made = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
                           | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    except FileExistsError:
        return os.open(name, OPEN_FLAGS, dir_fd=dir_fd)
    try:
        os.fchmod(made, mode)
        fd = os.open(name, OPEN_FLAGS, dir_fd=dir_fd)
        if _ident(fd) != _ident(made):
            os.close(fd)
            raise OSError(errno.EAGAIN, "it was replaced while it was being created", name)
        return fd
    finally:
        os.close(made)


def _walk(start: int, path: str, create: _Create) -> Opened:
    """Resolve `path` from directory `start`, following links ourselves."""
    pending = list(reversed(_names(path)))
    current = os.dup(start)
    links = 0
    try:
        while pending:
            name = pending.pop()
            try:
                step = os.open(name, OPEN_FLAGS, dir_fd=current)
            except FileNotFoundError:
                step = _create(current, name, last=not pending, create=create)
            try:
                mode = os.fstat(step).st_mode
                target = os.readlink("", dir_fd=step) if stat.S_ISLNK(mode) else None
            except BaseException:
                os.close(step)
                raise
            if target is not None:
                links += 1
                os.close(step)
                if links > MAX_LINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), name)
                if target.startswith("/"):
                    root = _open_root()
                    os.close(current)
                    current = root
                pending.extend(reversed(_names(target)))
                continue
            if pending and not stat.S_ISDIR(mode):
                os.close(step)
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), name)
            if not pending:
                return _opened(step, current)
            os.close(current)
            current = step
        return _opened(os.dup(current), current)
    finally:
        os.close(current)


def open_host_path(path: str, *, create: str = "", protected: Protected | None = None) -> Opened:
    """Open an absolute host path; `create` "Directory" makes what is missing (0755, as
    DirectoryOrCreate), "File" an empty 0644 file where only the file is missing, never
    inside a `protected` path."""
    if not os.path.isabs(path):
        raise PathError(f'"{path}" is not an absolute path')
    root = _open_root()
    try:
        return _walk(root, path, _Create(last=create, parents=create == "Directory",
                                         protected=protected))
    except OSError as e:
        raise PathError(f"{path}: {e.strerror}") from e
    finally:
        os.close(root)


def open_beneath(top: Opened, sub: str, *, dir_mode: int | None = None,
                 protected: Protected | None = None) -> Opened:
    """Open `sub` inside the directory `top`; with a `dir_mode`, missing directories are
    made with it (only inside `top`, never inside a `protected` path).

    Links are followed as the kernel would, but the result must be inside
    `top`: a link that leads out, or `..` above it, is a `PathError` (its
    message completes "subPath ...").
    """
    def inside(fd: int) -> bool:
        return top.ident in dir_lineage(fd)

    create = _Create(parents=dir_mode is not None, mode=dir_mode or DIRECTORY_MODE,
                     last="Directory" if dir_mode is not None else "", allowed=inside,
                     protected=protected)
    try:
        opened = _walk(top.fd, sub, create)
    except FileNotFoundError as e:
        raise PathError("does not exist") from e
    except CreationRefused as e:
        raise PathError(f"cannot be created: {e.strerror}") from e
    except OSError as e:
        raise PathError(f"cannot be opened: {e.strerror}") from e
    if top.ident not in opened.lineage:
        opened.close()
        raise PathError("resolves outside the volume")
    return opened


_TYPES: dict[str, tuple[Callable[[int], bool], str, str]] = {
    "": (lambda mode: True, "", "Directory"),
    "DirectoryOrCreate": (stat.S_ISDIR, "a directory", "Directory"),
    "Directory": (stat.S_ISDIR, "a directory", ""),
    "FileOrCreate": (stat.S_ISREG, "a file", "File"),
    "File": (stat.S_ISREG, "a file", ""),
    "Socket": (stat.S_ISSOCK, "a socket file", ""),
    "CharDevice": (stat.S_ISCHR, "a character device", ""),
    "BlockDevice": (stat.S_ISBLK, "a block device", ""),
}


def open_host_path_volume(path: str, kind: str, *, create: bool,
                          protected: Protected | None = None) -> Opened:
    """A hostPath volume's path, opened and checked against its `type` as the kubelet does.

    With `create`, the OrCreate types (and no type: a bind mount needs a
    source, as Docker-based Kubernetes always made it) create what is
    missing, but nothing inside a `protected` path. Raises `PathError` with
    the kubelet's message.
    """
    if kind not in _TYPES:
        raise PathError(f'unsupported hostPath type "{kind}"')
    is_kind, noun, makes = _TYPES[kind]
    try:
        opened = open_host_path(path, create=makes if create else "", protected=protected)
    except PathError as e:
        if create and makes:
            raise PathError(f"hostPath type check failed: cannot create {path}: "
                            f"{_reason(e)}") from e
        if noun:
            raise PathError(f"hostPath type check failed: {path} is not {noun}") from e
        raise
    if not is_kind(opened.mode):
        opened.close()
        raise PathError(f"hostPath type check failed: {path} is not {noun}")
    return opened


def _reason(error: PathError) -> str:
    cause = error.__cause__
    return cause.strerror if isinstance(cause, OSError) and cause.strerror else str(error)
