"""The two pools Services draw from: ClusterIPs from the service CIDR, NodePorts from a range.

Both hand out a value at most once until it is released. A requested value
is taken if it is in range and free; otherwise `allocate_next` scans on
from just after the last value it handed out, wrapping around, so that an
address or port freed a moment ago is not handed to the next Service at
once (a proxy or a DNS cache may still name it). Kubernetes picks at random
from a bitmap kept in etcd; minik keeps the pools in memory and rebuilds
them from the stored Services when the API server starts
(`service_alloc`), which one server per store makes safe.

The service CIDR's network and broadcast addresses are never handed out,
and neither is its first host address unless asked for by name: that one
is the `kubernetes` Service's.
"""

from __future__ import annotations

import ipaddress


class AllocationError(Exception):
    """A requested value cannot be had; the message is Kubernetes' wording."""


class RangeFull(AllocationError):
    """Every value of the range is taken."""


class _Pool:
    """Integers in [first, last], each held at most once."""

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last = first, last
        self.used: set[int] = set()
        self._cursor = first

    def take(self, value: int) -> bool:
        if value in self.used:
            return False
        self.used.add(value)
        return True

    def take_next(self) -> int | None:
        size = self.last - self.first + 1
        for step in range(size):
            value = self.first + (self._cursor - self.first + step) % size
            if value not in self.used:
                self.used.add(value)
                self._cursor = value + 1 if value < self.last else self.first
                return value
        return None

    def free(self, value: int) -> None:
        self.used.discard(value)


class ClusterIPAllocator:
    """IPv4 addresses of one service CIDR."""

    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.IPv4Network(cidr)
        first = int(self.network.network_address) + 1
        self.reserved = ipaddress.IPv4Address(first)
        self._pool = _Pool(first + 1, int(self.network.broadcast_address) - 1)

    @property
    def kubernetes_address(self) -> str:
        """The range's first host address: the `kubernetes` Service's."""
        return str(self.reserved)

    def in_range(self, ip: str) -> bool:
        try:
            address = ipaddress.IPv4Address(ip)
        except ValueError:
            return False
        return self._pool.first - 1 <= int(address) <= self._pool.last

    def allocate(self, ip: str) -> None:
        """Take `ip`; raise AllocationError (out of range, already allocated)."""
        if not self.in_range(ip):
            raise AllocationError(
                f"the provided IP ({ip}) is not in the valid range. The range of valid IPs "
                f"is {self.network}")
        value = int(ipaddress.IPv4Address(ip))
        if value == int(self.reserved):
            if value in self._pool.used:
                raise AllocationError("provided IP is already allocated")
            self._pool.used.add(value)
            return
        if not self._pool.take(value):
            raise AllocationError("provided IP is already allocated")

    def allocate_next(self) -> str:
        value = self._pool.take_next()
        if value is None:
            raise RangeFull(f"range is full: every address of {self.network} is allocated")
        return str(ipaddress.IPv4Address(value))

    def release(self, ip: str) -> None:
        try:
            self._pool.free(int(ipaddress.IPv4Address(ip)))
        except ValueError:
            return

    def has(self, ip: str) -> bool:
        try:
            return int(ipaddress.IPv4Address(ip)) in self._pool.used
        except ValueError:
            return False


class NodePortAllocator:
    """Ports of one NodePort range (`--service-node-port-range`)."""

    def __init__(self, first: int, last: int) -> None:
        self._pool = _Pool(first, last)

    @property
    def range_text(self) -> str:
        return f"{self._pool.first}-{self._pool.last}"

    def allocate(self, port: int) -> None:
        """Take `port`; raise AllocationError (out of range, already allocated)."""
        if not self._pool.first <= port <= self._pool.last:
            raise AllocationError(
                "provided port is not in the valid range. The range of valid ports is "
                f"{self.range_text}")
        if not self._pool.take(port):
            raise AllocationError("provided port is already allocated")

    def allocate_next(self) -> int:
        port = self._pool.take_next()
        if port is None:
            raise RangeFull(f"range is full: every port of {self.range_text} is allocated")
        return port

    def release(self, port: int) -> None:
        self._pool.free(port)

    def has(self, port: int) -> bool:
        return port in self._pool.used
