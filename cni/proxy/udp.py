"""UDP forwarding: one flow per client address, forgotten after an idle timeout.

The listener's socket receives every client's datagrams. The first from a
client address opens a flow: a connected UDP socket to an endpoint the
balancer chooses (the client's sticky one under ClientIP affinity). The
client's datagrams go out through the flow's socket, and the endpoint's
answers come back through the listener's socket, so that the client sees
them from the address it sent to. Datagrams that arrive while the flow's
socket is being opened are queued and sent in order once it is. A flow
with no datagram either way for `idle_timeout` seconds is closed (on the
proxy's clock), so a client that returns later may land on another
endpoint; an endpoint that leaves the Service keeps its flows until then,
as TCP connections drain.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from cni.proxy.model import Endpoint, Frontend
from cni.proxy.target import UDP_IDLE_TIMEOUT, Target
from minik.machinery.clock import Clock, LoopClock, Timer

log = logging.getLogger(__name__)

Address = tuple[str, int]


class UdpListener(asyncio.DatagramProtocol):
    """One UDP frontend and its flows."""

    def __init__(self, frontend: Frontend, target: Target, *,
                 idle_timeout: float = UDP_IDLE_TIMEOUT, clock: Clock | None = None) -> None:
        self.frontend = frontend
        self.target = target
        self.idle_timeout = idle_timeout
        self.clock: Clock = clock or LoopClock()
        self.flows: dict[Address, _Flow] = {}
        self.transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(
            lambda: self, local_addr=(self.frontend.address, self.frontend.port),
            reuse_port=False)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's are not subclasses

    def datagram_received(self, data: bytes, addr: Address) -> None:
        client = (str(addr[0]), int(addr[1]))
        flow = self.flows.get(client)
        if flow is None:
            flow = self._open(client)
            if flow is None:
                return
        flow.send(data)

    def _open(self, client: Address) -> _Flow | None:
        stats = self.target.stats
        candidates = self.target.balancer.candidates(client[0])
        if not candidates:
            stats.errors["no_endpoints"] += 1
            return None
        endpoint = candidates[0]
        self.target.balancer.chose(client[0], endpoint)
        flow = self.flows[client] = _Flow(self, client, endpoint, self.target)
        stats.connections += 1
        stats.active += 1
        asyncio.get_running_loop().create_task(flow.connect())
        return flow

    def forget(self, flow: _Flow) -> None:
        if self.flows.get(flow.client) is flow:
            del self.flows[flow.client]
            flow.target.stats.active -= 1

    def close(self) -> None:
        """Stop receiving: the listener's socket is what answers clients, so its flows end too."""
        if self.transport is not None:
            self.transport.close()
        for flow in list(self.flows.values()):
            flow.close()

    def abort(self) -> None:
        self.close()

    def open_connections(self) -> int:
        return len(self.flows)


class _Flow(asyncio.DatagramProtocol):
    """One client's datagrams to and from one endpoint."""

    def __init__(self, listener: UdpListener, client: Address, endpoint: Endpoint,
                 target: Target) -> None:
        self.listener = listener
        self.client = client
        self.endpoint = endpoint
        self.target = target
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: list[bytes] | None = []
        self.last_active = listener.clock.now()
        self._timer: Timer | None = None
        self._closed = False

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_datagram_endpoint(
                lambda: self, remote_addr=(self.endpoint.ip, self.endpoint.port))
        except OSError as e:
            self.target.stats.errors["connect_failed"] += 1
            log.debug("UDP flow %s -> %s: %s", self.client, self.endpoint, e)
            self.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._closed:
            transport.close()
            return
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's: no subclass
        for data in self.pending or ():
            self._forward(data)
        self.pending = None
        self._arm(self.listener.idle_timeout)

    def send(self, data: bytes) -> None:
        self.last_active = self.listener.clock.now()
        if self.pending is not None:
            self.pending.append(data)
        else:
            self._forward(data)

    def _forward(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.sendto(data)
            self.target.stats.bytes_to_endpoint += len(data)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.last_active = self.listener.clock.now()
        listener = self.listener.transport
        if listener is not None and not listener.is_closing():
            listener.sendto(data, self.client)
            self.target.stats.bytes_to_client += len(data)

    def error_received(self, exc: Exception) -> None:
        """An ICMP error for a datagram sent: a refusing endpoint ends the flow, so that
        the client's next datagram opens one to the next endpoint."""
        if isinstance(exc, ConnectionRefusedError):
            self.target.stats.errors["connect_refused"] += 1
            self.close()
        else:
            self.target.stats.errors["reset"] += 1

    def _arm(self, delay: float) -> None:
        self._timer = self.listener.clock.call_later(delay, self._check_idle)

    def _check_idle(self) -> None:
        idle = self.listener.clock.now() - self.last_active
        if idle >= self.listener.idle_timeout:
            self.close()
        else:
            self._arm(self.listener.idle_timeout - idle)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self.transport is not None:
            self.transport.close()
        self.listener.forget(self)
