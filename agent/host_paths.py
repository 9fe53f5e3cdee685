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

`Protected` holds what no unprivileged pod may be handed: the engine's
socket and the instance's home (its store, keys and token) with the
agent's own state. A bind exposes a protected path when it is that path,
lies inside it, or is a directory above it. That is judged by inode along
the chain of parents (`..` from the descriptor), so a bind mount or a
hard link of a protected path elsewhere is caught as well as the path
itself. (A bind mount of a protected directory that the node's admin made
*below* a hostPath is not looked for.) The paths are given, not built in,
so tests protect a socket of their own and never go near the real one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

OPEN_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_LINKS = 40
DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
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


@dataclass(slots=True)
class _Create:
    """What a walk may create where a name is missing; `allowed` vets the directory."""

    last: str = ""
    parents: bool = False
    mode: int = DIRECTORY_MODE
    allowed: Callable[[int], bool] = lambda fd: True


def _create(dir_fd: int, name: str, *, last: bool, create: _Create) -> int:
    kind = create.last if last else ("Directory" if create.parents else "")
    if not kind or not create.allowed(dir_fd):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", name)
    made = False
    with contextlib.suppress(FileExistsError):
        if kind == "Directory":
            os.mkdir(name, create.mode, dir_fd=dir_fd)
        else:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
                             | os.O_CLOEXEC, FILE_MODE, dir_fd=dir_fd))
        made = True
    fd = os.open(name, OPEN_FLAGS, dir_fd=dir_fd)
    try:
        if made and not stat.S_ISLNK(os.fstat(fd).st_mode):
            os.chmod(f"/proc/self/fd/{fd}", create.mode if kind == "Directory" else FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


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
            mode = os.fstat(step).st_mode
            if stat.S_ISLNK(mode):
                links += 1
                target = os.readlink("", dir_fd=step)
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


def open_host_path(path: str, *, create: str = "") -> Opened:
    """Open an absolute host path; `create` "Directory" makes what is missing (0755, as
    DirectoryOrCreate), "File" an empty 0644 file where only the file is missing."""
    if not os.path.isabs(path):
        raise PathError(f'"{path}" is not an absolute path')
    root = _open_root()
    try:
        return _walk(root, path, _Create(last=create, parents=create == "Directory"))
    except OSError as e:
        raise PathError(f"{path}: {e.strerror}") from e
    finally:
        os.close(root)


def open_beneath(top: Opened, sub: str, *, dir_mode: int | None = None) -> Opened:
    """Open `sub` inside the directory `top`; with a `dir_mode`, missing directories are
    made with it (only inside `top`).

    Links are followed as the kernel would, but the result must be inside
    `top`: a link that leads out, or `..` above it, is a `PathError` (its
    message completes "subPath ...").
    """
    def inside(fd: int) -> bool:
        return top.ident in dir_lineage(fd)

    create = _Create(parents=dir_mode is not None, mode=dir_mode or DIRECTORY_MODE,
                     last="Directory" if dir_mode is not None else "", allowed=inside)
    try:
        opened = _walk(top.fd, sub, create)
    except FileNotFoundError as e:
        raise PathError("does not exist") from e
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


def open_host_path_volume(path: str, kind: str, *, create: bool) -> Opened:
    """A hostPath volume's path, opened and checked against its `type` as the kubelet does.

    With `create`, the OrCreate types (and no type: a bind mount needs a
    source, as Docker-based Kubernetes always made it) create what is
    missing. Raises `PathError` with the kubelet's message.
    """
    if kind not in _TYPES:
        raise PathError(f'unsupported hostPath type "{kind}"')
    is_kind, noun, makes = _TYPES[kind]
    try:
        opened = open_host_path(path, create=makes if create else "")
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


ENGINE_SOCKET = "the Docker socket"


def engine_sockets() -> list[str]:
    """The Docker engine's sockets: the usual places and DOCKER_HOST's."""
    sockets = list(DOCKER_SOCKETS)
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        sockets.append(host[len("unix://"):])
    return sockets


class Protected:
    """Paths no unprivileged pod may be handed, each with what it is (for messages).

    A bind exposes one when it is that path, lies inside it, or is a
    directory above it.
    """

    def __init__(self, paths: Mapping[str | Path, str], *, engine: bool = False) -> None:
        self._paths = {str(path): what for path, what in paths.items()}
        self._engine = engine

    @classmethod
    def for_node(cls, others: Mapping[str | Path, str] | None = None) -> Protected:
        """The engine's sockets (as DOCKER_HOST says now), and `others` (the home, say)."""
        return cls(others or {}, engine=True)

    @property
    def paths(self) -> dict[str, str]:
        engine = dict.fromkeys(engine_sockets(), ENGINE_SOCKET) if self._engine else {}
        return {**engine, **self._paths}

    def with_paths(self, others: Mapping[str | Path, str]) -> Protected:
        return Protected({**self._paths, **others}, engine=self._engine)

    def exposed_by(self, opened: Opened) -> str | None:
        """What protected thing a bind of `opened` would hand over, or None."""
        for path, what in self.paths.items():
            try:
                with open_host_path(path) as protected:
                    if protected.ident in opened.lineage or (
                            opened.is_dir and opened.ident in protected.lineage):
                        return what
            except PathError:
                continue
        return None
