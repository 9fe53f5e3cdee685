"""Port-forward on the node: the kubelet's end of `pods/{name}/portforward`.

The API server relays the client's SPDY/3.1 session here unchanged (from
a raw upgrade, or out of its WebSocket tunnel), so only the agent speaks
SPDY. Which side opens the TCP connection: the agent, as the kubelet (its
container runtime) does — the API server never touches the pod network,
which another node's pods would not share with it. Where the kubelet
enters the pod's network namespace and dials `localhost:PORT`, the agent
dials the pod's IP on the pod network (127.0.0.1 for a hostNetwork pod):
a process in a pod that listens on 127.0.0.1 only is therefore not
reachable by port-forward on minik.

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
  written on the error stream as the kubelet writes it (`error forwarding
  port 80 to pod default/web, uid ...: ...`), and kubectl prints it.

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
import logging
import os
from collections.abc import Awaitable, Callable

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


def dialer(host: str, *, timeout: float = DIAL_TIMEOUT) -> Callable[[int], Awaitable[Pipe]]:
    """Connect to `host:port`; a failure is an OSError worded as Go's dialer words it."""

    async def dial(port: int) -> Pipe:
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.open_connection(host, port, limit=CHUNK)
        except TimeoutError as e:
            raise OSError(errno.ETIMEDOUT, f"dial tcp4 {host}:{port}: i/o timeout") from e
        except OSError as e:
            reason = os.strerror(e.errno).lower() if e.errno else str(e)
            raise OSError(e.errno, f"dial tcp4 {host}:{port}: connect: {reason}") from e

    return dial


class PortForwardSession:
    """One client's port-forward session: stream pairs in, connections to the pod out."""

    def __init__(self, upgraded: Upgraded, *, pod: str, uid: str, address: str,
                 dial: Callable[[int], Awaitable[Pipe]] | None = None) -> None:
        self._upgraded = upgraded
        self._pod, self._uid, self._address = pod, uid, address
        self._dial = dial or dialer(address)
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
                await self._fail(pair, f"failed to connect to {self._address}:{pair.port}: "
                                       f"{e.strerror or e}")
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
        to_client = asyncio.create_task(self._to_client(pair, reader),
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

    async def _to_client(self, pair: StreamPair[Stream], reader: asyncio.StreamReader) -> None:
        """The pod's bytes to the data stream; at its EOF a FIN on both streams."""
        assert pair.data is not None and pair.error is not None
        try:
            while chunk := await reader.read(CHUNK):
                await pair.data.write(chunk)
        except ConnectionResetError as e:
            if not pair.data.open:
                return  # the client reset the stream
            await self._fail(pair, f"read tcp4 {self._address}:{pair.port}: "
                                   f"{e.strerror or 'connection reset by peer'}")
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
