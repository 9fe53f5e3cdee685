"""Dialing inside a network namespace: against a namespace the test makes with `unshare -n`
(root only), whose server listens on its own 127.0.0.1, unreachable from the test's."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from agent import netns as netns_module
from agent.netns import NamespaceClosed, NamespaceNotEntered, NetworkNamespace, run_inside
from agent.portforward import localhost_dialer

SERVER = """
import socket, sys
server = socket.create_server(("127.0.0.1", 0))
print(server.getsockname()[1], flush=True)
while True:
    conn, _ = server.accept()
    conn.sendall(b"hello from the namespace")
    conn.close()
"""


def _own_namespace() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


@pytest.fixture(scope="module")
def namespace() -> Iterator[tuple[NetworkNamespace, int]]:
    """A new network namespace (lo up) with a server on its 127.0.0.1, and the server's port."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("making a network namespace needs root, unshare and ip")
    process = subprocess.Popen(
        ["unshare", "--net", "sh", "-c", f'ip link set lo up && exec "{sys.executable}" -c "$0"',
         SERVER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            pytest.skip(f"unshare --net failed: {process.communicate()[1]}")
        yield NetworkNamespace.of_process(process.pid), int(line)
    finally:
        process.kill()
        process.wait()


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _received(sock: socket.socket) -> bytes:
    with sock:
        sock.settimeout(5)
        return sock.recv(100)


async def test_a_call_run_inside_a_namespace_reaches_its_localhost_and_the_loop_thread_stays_out(
        namespace: tuple[NetworkNamespace, int]) -> None:
    netns, port = namespace
    outside = _own_namespace()
    with pytest.raises(ConnectionRefusedError):
        _connect(port).close()  # nothing listens on the test's own 127.0.0.1:port
    seen: list[tuple[int, int]] = []

    def call() -> socket.socket:
        seen.append((threading.get_ident(), _own_namespace()))
        return _connect(port)

    sock = await run_inside(netns, call, discard=socket.socket.close)
    assert _received(sock) == b"hello from the namespace"
    (thread, inside), = seen
    assert inside == netns.inode and thread != threading.get_ident()
    assert _own_namespace() == outside


async def test_the_dialer_connects_to_a_pods_localhost_and_words_a_refusal_as_containerd(
        namespace: tuple[NetworkNamespace, int]) -> None:
    netns, port = namespace
    dial = localhost_dialer(netns, sandbox="abc123")
    reader, writer = await dial(port)
    assert await reader.read() == b"hello from the namespace"
    writer.close()
    refused = port + 1 if port < 65535 else port - 1
    with pytest.raises(OSError) as failure:
        await dial(refused)
    assert failure.value.strerror == (
        f'failed to execute portforward in network namespace "{netns.path}": failed to connect '
        f'to localhost:{refused} inside namespace "abc123", IPv4: dial tcp4 '
        f"127.0.0.1:{refused}: connect: connection refused IPv6 dial tcp6 [::1]:{refused}: "
        "connect: connection refused")


async def test_a_result_that_arrives_after_the_caller_gave_up_is_discarded() -> None:
    if os.geteuid() != 0:
        pytest.skip("entering a network namespace (even one's own) needs CAP_SYS_ADMIN")
    netns = NetworkNamespace("/proc/self/ns/net", os.stat("/proc/self/ns/net").st_ino)
    release, discarded = threading.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def call() -> str:
        release.wait(10)
        return "result"

    task = asyncio.create_task(run_inside(
        netns, call, discard=lambda r: loop.call_soon_threadsafe(discarded.set)))
    await asyncio.sleep(0)
    task.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(10):
        await discarded.wait()


def test_a_namespace_whose_process_is_gone_or_replaced_is_closed() -> None:
    process = subprocess.Popen(["true"])
    process.wait()
    with pytest.raises(NamespaceClosed):
        NetworkNamespace.of_process(process.pid)
    replaced = NetworkNamespace("/proc/self/ns/net", inode=1)
    with pytest.raises(NamespaceClosed, match="another one now"):
        replaced.open()


async def test_a_namespace_that_cannot_be_entered_is_worded_as_such_and_nothing_is_dialed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(fd: int) -> None:
        raise NamespaceNotEntered(1, "setns(CLONE_NEWNET): operation not permitted")

    monkeypatch.setattr(netns_module, "setns", refuse)
    own = NetworkNamespace("/proc/self/ns/net", os.stat("/proc/self/ns/net").st_ino)
    with pytest.raises(OSError) as failure:
        await localhost_dialer(own, sandbox="abc123")(1)
    assert failure.value.strerror == (
        'failed to execute portforward in network namespace "/proc/self/ns/net": '
        "setns(CLONE_NEWNET): operation not permitted")
