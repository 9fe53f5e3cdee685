"""Port-forward on the node: the kubelet's end of `pods/{name}/portforward`.

The API server relays the client's SPDY/3.1 session here unchanged (from
a raw upgrade, or out of its WebSocket tunnel), so only the agent speaks
SPDY. Which side opens the TCP connection: the agent, as the kubelet (its
container runtime) does — the API server never touches the pod network,
which another node's pods would not share with it. As containerd does,
the agent dials `localhost:PORT` inside the pod sandbox's network
namespace (`agent.netns`: the sandbox container's process's, entered by a
thread of its own for each dial), IPv4 first and then IPv6, so a process
in a pod listening on 127.0.0.1 only is reachable; a hostNetwork pod's
`localhost` is the node's.

For every complete pair of streams (`minik.httpstream.portforward`) the
agent dials the pod's port and copies both ways:

- the client's bytes on the data stream go to the pod; the stream's FIN
  half-closes the pod connection (`write_eof`), and the pod's answer still
  flows back; a RST_STREAM (kubectl sends CANCEL when its local connection
  closes) ends the forwarding at once;
- the pod's bytes go out as DATA frames; at the pod's EOF the data stream
  and then the error stream get their FIN, which is when kubectl closes its
  local connection;
- a refused or unreachable port, or a connection the pod resets, is
  written on the error stream as the kubelet and containerd word it
  (`error forwarding port 80 to pod default/web, uid ...: failed to
  execute portforward in network namespace ...`), and kubectl prints it.

Memory stays bounded: each stream's inbox holds at most `INBOX_BYTES`,
and while one is full the session reads nothing more from the client
(TCP pushes back, as Go's spdystream does); bytes from the pod are read
only as fast as the session can send them. When the client goes (its
connection ends, or is found reset while held back), every pod connection
of the session is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable

from agent.netns import NamespaceClosed, NamespaceNotEntered, NetworkNamespace, run_inside
from minik.httpstream import liveness
from minik.httpstream.portforward import (
    STREAM_CREATION_TIMEOUT,
    StreamPair,
    StreamPairs,
    StreamRejected,
    classify,
)
from minik.httpstream.spdy_connection import CHUNK, Connection, Stream
from minik.httpstream.upgrade import Upgraded

log = logging.getLogger(__name__)

DIAL_TIMEOUT = 10.0
MAX_STREAMS = 256  # 128 forwarded connections at once
INBOX_BYTES = 256 * 1024

Pipe = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def localhost_dialer(netns: NetworkNamespace | None, *, sandbox: str,
                     timeout: float = DIAL_TIMEOUT) -> Callable[[int], Awaitable[Pipe]]:
    """Connect to `localhost:port` inside `netns` (None: the node's own, for a hostNetwork
    pod); a failure is an OSError worded as containerd words it for sandbox `sandbox`."""
    where = netns.path if netns is not None else "host"

    async def dial(port: int) -> Pipe:
        try:
            sock = await run_inside(netns, functools.partial(_connect_localhost, port, timeout),
                                    discard=socket.socket.close, name=f"portforward:{port}")
        except NamespaceClosed as e:
            raise OSError(e.errno, f'network namespace for sandbox "{sandbox}" is closed') from e
        except NamespaceNotEntered as e:
            raise OSError(e.errno, f'failed to execute portforward in network namespace '
                                   f'"{where}": {e.strerror}') from e
        except OSError as e:
            raise OSError(e.errno, f'failed to execute portforward in network namespace '
                                   f'"{where}": failed to connect to localhost:{port} inside '
                                   f'namespace "{sandbox}", {e.strerror}') from e
        try:
            return await asyncio.open_connection(sock=sock, limit=CHUNK)
        except BaseException:
            sock.close()
            raise

    return dial


def _connect_localhost(port: int, timeout: float) -> socket.socket:
    """A socket connected to localhost:port, made in the calling thread's network namespace:
    IPv4 first, then IPv6, one after the other as containerd dials (in parallel, Go's
    dialer would leave the namespace); the failures worded as Go's dialer words them."""
    deadline = time.monotonic() + timeout
    failures: list[tuple[int | None, str]] = []
    for family, network, host, target in (
            (socket.AF_INET, "tcp4", "127.0.0.1", f"127.0.0.1:{port}"),
            (socket.AF_INET6, "tcp6", "::1", f"[::1]:{port}")):
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as e:
            failures.append((e.errno, f"dial {network} {target}: socket: {_reason(e)}"))
            continue
        try:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            sock.connect((host, port))
        except TimeoutError:
            sock.close()
            failures.append((errno.ETIMEDOUT, f"dial {network} {target}: i/o timeout"))
        except OSError as e:
            sock.close()
            failures.append((e.errno, f"dial {network} {target}: connect: {_reason(e)}"))
        except BaseException:
            sock.close()
            raise
        else:
            sock.setblocking(False)
            return sock
    (code, ipv4), (_, ipv6) = failures
    raise OSError(code, f"IPv4: {ipv4} IPv6 {ipv6}")


def _connection_name(writer: asyncio.StreamWriter) -> str:
    """`tcp4 127.0.0.1:40000->127.0.0.1:80`: a connection as Go's errors name it."""
    def address(name: tuple[str, int]) -> str:
        return f"[{name[0]}]:{name[1]}" if ":" in name[0] else f"{name[0]}:{name[1]}"

    local, peer = writer.get_extra_info("sockname"), writer.get_extra_info("peername")
    if not local or not peer:
        return "tcp"
    return f"tcp{6 if ':' in peer[0] else 4} {address(local)}->{address(peer)}"


def _reason(e: OSError) -> str:
    return os.strerror(e.errno).lower() if e.errno else str(e)


class PortForwardSession:
    """One client's port-forward session: stream pairs in, connections to the pod out."""

    def __init__(self, upgraded: Upgraded, *, pod: str, uid: str,
                 dial: Callable[[int], Awaitable[Pipe]]) -> None:
        self._upgraded = upgraded
        self._pod, self._uid = pod, uid
        self._dial = dial
        self._connection = Connection(upgraded.send, max_streams=MAX_STREAMS,
                                      inbox_bytes=INBOX_BYTES)
        self._pairs: StreamPairs[Stream] = StreamPairs()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Serve until the client closes the session or is found gone."""
        serving = asyncio.create_task(self._connection.serve(self._upgraded.receive),
                                      name="portforward:serve")
        accepting = asyncio.create_task(self._accept(), name="portforward:accept")
        gone = asyncio.create_task(
            liveness.watch(self._upgraded.transport, shut=False, keepalive=self._connection.ping),
            name="portforward:liveness")
        try:
            await asyncio.wait({serving, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            running = [serving, accepting, gone, *self._tasks]
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            if gone.done() and not gone.cancelled():
                self._upgraded.abort()
            else:
                await self._upgraded.close()

    async def _accept(self) -> None:
        while (stream := await self._connection.accept()) is not None:
            try:
                kind = classify(stream.id, stream.headers)
                pair, created = self._pairs.add(kind, stream)
            except StreamRejected as e:
                log.info("port-forward stream %d rejected: %s", stream.id, e)
                await stream.reset()
                continue
            if kind.type != "data":
                stream.discard()  # the client sends nothing on its error stream
            if pair.complete:
                self._spawn(self._forward(pair), f"portforward:{pair.request_id}")
            elif created:
                self._spawn(self._expire(pair.request_id), f"portforward:wait:{pair.request_id}")

    def _spawn(self, work: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _expire(self, request_id: str) -> None:
        await asyncio.sleep(STREAM_CREATION_TIMEOUT)
        pair = self._pairs.expire(request_id)
        if pair is None:
            return
        with contextlib.suppress(ConnectionError, OSError):
            if pair.error is not None:
                await pair.error.write(f"(request={request_id}) timed out waiting for streams"
                                       .encode())
                await pair.error.close()
            if pair.data is not None:
                await pair.data.reset()

    async def _forward(self, pair: StreamPair[Stream]) -> None:
        data, error = pair.data, pair.error
        assert data is not None and error is not None
        try:
            try:
                reader, writer = await self._dial(pair.port)
            except OSError as e:
                await self._fail(pair, e.strerror or str(e))
                return
            try:
                await self._copy(pair, reader, writer)
            finally:
                writer.transport.abort()
        except (ConnectionError, OSError):
            pass  # the session is ending: nothing more reaches the client
        finally:
            data.discard()  # whatever the client still sends has nowhere to go
            with contextlib.suppress(ConnectionError, OSError):
                await data.close()
                await error.close()

    async def _copy(self, pair: StreamPair[Stream], reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        assert pair.data is not None
        to_pod = asyncio.create_task(_to_pod(pair.data, writer), name="portforward:to-pod")
        to_client = asyncio.create_task(self._to_client(pair, reader, _connection_name(writer)),
                                        name="portforward:to-client")
        try:
            await asyncio.wait({to_pod, to_client}, return_when=asyncio.FIRST_COMPLETED)
            if to_pod.done() and not to_pod.result():
                return  # the client reset its stream, or the pod stopped reading
            await asyncio.gather(to_pod, to_client)
        finally:
            for task in (to_pod, to_client):
                task.cancel()
            await asyncio.gather(to_pod, to_client, return_exceptions=True)

    async def _to_client(self, pair: StreamPair[Stream], reader: asyncio.StreamReader,
                         connection: str) -> None:
        """The pod's bytes to the data stream; at its EOF a FIN on both streams."""
        assert pair.data is not None and pair.error is not None
        try:
            while chunk := await reader.read(CHUNK):
                await pair.data.write(chunk)
        except ConnectionResetError as e:
            if not pair.data.open:
                return  # the client reset the stream
            await self._fail(pair, f"read {connection}: read: "
                                   f"{_reason(e) if e.errno else 'connection reset by peer'}")
            return
        await pair.data.close()
        await pair.error.close()

    async def _fail(self, pair: StreamPair[Stream], reason: str) -> None:
        """Tell the client why, on the error stream, as the kubelet words it; end both."""
        assert pair.data is not None and pair.error is not None
        message = (f"error forwarding port {pair.port} to pod {self._pod}, "
                   f"uid {self._uid}: {reason}")
        log.info("%s", message)
        await pair.data.close()
        await pair.error.write(message.encode())
        await pair.error.close()


async def _to_pod(data: Stream, writer: asyncio.StreamWriter) -> bool:
    """The client's bytes to the pod: True after its FIN (the pod's side is then shut for
    writing), False when the stream was reset or the pod cannot be written to."""
    try:
        while chunk := await data.read():
            writer.write(chunk)
            await writer.drain()
        if not data.open:
            return False
        if writer.can_write_eof():
            writer.write_eof()
        return True
    except (ConnectionError, OSError):
        return False
