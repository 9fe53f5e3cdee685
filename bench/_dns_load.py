"""DNS load for bench/proxy.py: queries per second and latency of one name, and their floor.

`load` keeps `concurrency` queries in flight, each client on a UDP socket
of its own, for a bounded time and count: the query is built once with
dnspython and only its id changes, and a response counts when it carries
the query's id and rcode NOERROR with an answer (the first one is parsed
whole with dnspython and must hold the expected address), so the client
costs as little as it can and the server is what is measured. A query
unanswered within the timeout is counted as lost, not retried.

`CannedResponder` runs, in a process of its own on uvloop as the node
network process runs, the least a DNS server written in Python can do:
an asyncio DatagramProtocol answering every datagram with one prepared
answer, the query's id copied in. Measured with the same client in the
same run, it is the floor the cluster DNS is compared with.

    .venv/bin/python bench/_dns_load.py --canned NAME   (prints its port, serves until stdin closes)
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from dataclasses import dataclass, field

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import uvloop

TIMEOUT = 1.0
CANNED_ADDRESS = "10.96.0.10"


@dataclass
class DnsLoad:
    latencies: list[float] = field(default_factory=list)
    """Seconds per answered query."""
    seconds: float = 0.0
    lost: int = 0
    wrong: int = 0
    """Answers with another rcode, or no answer record."""

    @property
    def qps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.expected = b""
        self.waiter: asyncio.Future[bytes] | None = None

    def datagram_received(self, data: bytes, addr: object) -> None:
        if self.waiter is not None and not self.waiter.done() and data[:2] == self.expected:
            self.waiter.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)


def _answers(data: bytes) -> bool:
    """NOERROR with at least one answer record (header: rcode in byte 3, ANCOUNT in 6..8)."""
    return len(data) > 12 and data[3] & 0x0F == 0 and int.from_bytes(data[6:8], "big") > 0


async def _run(server: str, port: int, name: str, *, seconds: float, concurrency: int,
               limit: int, expect: str | None) -> DnsLoad:
    loop = asyncio.get_running_loop()
    wire = bytearray(dns.message.make_query(name, "A").to_wire())
    result = DnsLoad()
    first = await _ask(loop, server, port, bytes(wire))
    response = dns.message.from_wire(first)
    addresses = [r.address for rrset in response.answer for r in rrset
                 if r.rdtype == dns.rdatatype.A]
    if response.rcode() != dns.rcode.NOERROR or (expect and expect not in addresses):
        raise RuntimeError(f"{name} @{server}:{port}: {dns.rcode.to_text(response.rcode())} "
                           f"{addresses}, expected {expect}")
    sent = 0
    end = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal sent
        transport, protocol = await loop.create_datagram_endpoint(
            _Client, remote_addr=(server, port))
        query = bytearray(wire)
        qid = n * 4096
        try:
            while sent < limit and time.perf_counter() < end:
                sent += 1
                qid = (qid + 1) & 0xFFFF
                query[:2] = protocol.expected = qid.to_bytes(2, "big")
                protocol.waiter = loop.create_future()
                started = time.perf_counter()
                transport.sendto(bytes(query))
                try:
                    data = await asyncio.wait_for(protocol.waiter, TIMEOUT)
                except TimeoutError:
                    result.lost += 1
                    continue
                result.latencies.append(time.perf_counter() - started)
                if not _answers(data):
                    result.wrong += 1
        finally:
            transport.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


async def _ask(loop: asyncio.AbstractEventLoop, server: str, port: int, query: bytes) -> bytes:
    transport, protocol = await loop.create_datagram_endpoint(_Client, remote_addr=(server, port))
    try:
        protocol.expected = query[:2]
        protocol.waiter = loop.create_future()
        transport.sendto(query)
        return await asyncio.wait_for(protocol.waiter, 5)
    finally:
        transport.close()


def load(server: str, port: int, name: str, *, seconds: float = 5.0, concurrency: int = 8,
         limit: int = 200_000, expect: str | None = None) -> DnsLoad:
    """Query `name` (A) at server:port for `seconds` or `limit` queries, whichever ends first."""
    return uvloop.run(_run(server, port, name, seconds=seconds, concurrency=concurrency,
                           limit=limit, expect=expect))


class CannedResponder:
    """The canned-answer responder in a child process (`with` starts and stops it)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> CannedResponder:
        self._process = subprocess.Popen([sys.executable, __file__, "--canned", self.name],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        self.port = int(self._process.stdout.readline())
        return self

    def __exit__(self, *_: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait()


class _Canned(asyncio.DatagramProtocol):
    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data[:2] + self.answer[2:], addr)


async def _serve_canned(name: str) -> None:
    query = dns.message.make_query(name, "A")
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text(name, 5, "IN", "A", CANNED_ADDRESS))
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Canned(response.to_wire()), local_addr=("127.0.0.1", 0))
    print(transport.get_extra_info("sockname")[1], flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the bench closes stdin or ends


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--canned", metavar="NAME", required=True)
    uvloop.run(_serve_canned(parser.parse_args().canned))
