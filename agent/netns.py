"""Running a blocking call inside a pod's network namespace, as the CRI runtime does.

The kubelet's runtime serves port-forward by entering the pod sandbox's
network namespace and dialing `localhost` there (containerd's
`NetNS.Do`), so a process listening on 127.0.0.1 only is reachable. The
agent does the same with the sandbox container's process: its namespace
is `/proc/<pid>/ns/net`, entered with setns(2) (through libc: Python 3.11
has no `os.setns`).

A network namespace belongs to a thread, not to the process, so the call
runs in a thread of its own, started for it and ended after it — never a
pool thread, which would carry the pod's namespace into whatever it ran
next. The thread opens its own namespace first, enters the pod's, runs
the call (a socket created there stays in that namespace for its whole
life, wherever it is used afterwards), and returns to its own namespace
in `finally`; should that fail, the thread simply ends with it. The event
loop only awaits a future the thread resolves.

A sandbox's PID may be reused once the sandbox is gone: `NetworkNamespace`
remembers the namespace's inode when it is found, and a namespace opened
later with another inode is reported closed rather than entered.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
OWN_NAMESPACE = "/proc/thread-self/ns/net"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]

T = TypeVar("T")


class NamespaceClosed(OSError):
    """The sandbox's network namespace is gone (its process ended)."""


class NamespaceNotEntered(OSError):
    """setns(2) refused (without CAP_SYS_ADMIN, say): nothing ran inside the namespace."""


@dataclass(frozen=True)
class NetworkNamespace:
    """The network namespace of a running process, by path and identity."""

    path: str
    inode: int

    @classmethod
    def of_process(cls, pid: int) -> NetworkNamespace:
        path = f"/proc/{pid}/ns/net"
        try:
            return cls(path, os.stat(path).st_ino)
        except (FileNotFoundError, ProcessLookupError) as e:
            raise NamespaceClosed(errno.ENOENT, f"network namespace {path} is closed") from e

    def open(self) -> int:
        """A descriptor of the namespace; NamespaceClosed if it is no longer this one."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, ProcessLookupError) as e:
            raise NamespaceClosed(errno.ENOENT, f"network namespace {self.path} is closed") from e
        if os.fstat(fd).st_ino != self.inode:
            os.close(fd)
            raise NamespaceClosed(errno.ENOENT, f"network namespace {self.path} is closed "
                                                "(its process is another one now)")
        return fd


def setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise NamespaceNotEntered(error, f"setns(CLONE_NEWNET): {os.strerror(error).lower()}")


def _call_inside(netns: NetworkNamespace | None, call: Callable[[], T], name: str) -> T:
    """`call` run in this (dedicated) thread inside `netns`; then back to the thread's own
    namespace, or, should that fail, the thread ends in the pod's one with nothing more to
    run there."""
    if netns is None:
        return call()
    own = os.open(OWN_NAMESPACE, os.O_RDONLY | os.O_CLOEXEC)
    try:
        pod = netns.open()
        try:
            setns(pod)
        finally:
            os.close(pod)
        try:
            return call()
        finally:
            try:
                setns(own)
            except OSError as e:
                log.warning("%s: cannot return to its own network namespace (the thread "
                            "ends anyway): %s", name, e)
    finally:
        os.close(own)


async def run_inside(netns: NetworkNamespace | None, call: Callable[[], T], *,
                     discard: Callable[[T], None], name: str = "netns") -> T:
    """`call` run inside `netns` (None: the agent's own) in a thread of its own; the event
    loop never blocks.

    The call cannot be interrupted: if the caller is cancelled (or the loop is closed)
    before it ends, its result is given to `discard` — a socket is closed, not leaked."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def succeed(result: T) -> None:
        if future.cancelled():
            discard(result)
        else:
            future.set_result(result)

    def fail(error: BaseException) -> None:
        if not future.cancelled():
            future.set_exception(error)

    def work() -> None:
        try:
            result = _call_inside(netns, call, name)
        except BaseException as e:  # handed to the awaiting task
            with contextlib.suppress(RuntimeError):  # a closed loop awaits nothing
                loop.call_soon_threadsafe(fail, e)
            return
        try:
            loop.call_soon_threadsafe(succeed, result)
        except RuntimeError:
            discard(result)

    threading.Thread(target=work, name=name, daemon=True).start()
    return await future
