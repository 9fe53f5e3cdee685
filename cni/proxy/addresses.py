"""The node's ClusterIPs: /32 addresses on `lo`, labelled with the instance, via netlink.

The kernel has no dummy interfaces here; `lo` works: pods (whose default
route is the bridge gateway) and the host both reach a socket bound to an
address on it. Each address carries the label `lo:mk<10 hex of
sha1(instance)>` (a label starts with its interface's name and has at most
15 characters), which says whose it is: a restarted proxy takes over the
addresses with its label (`adopt`) and, once it knows what it wants,
removes those it no longer wants; `minik down` removes them all
(`remove_all`). Another instance's or the host's own addresses are never
touched. Netlink is spoken through pyroute2's asyncio client, never by
shelling out to `ip`; its errors are mapped here to `AddressError`.
"""

from __future__ import annotations

import errno
import hashlib
import logging
from typing import Protocol

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

log = logging.getLogger(__name__)

INTERFACE = "lo"
AF_INET = 2


class AddressError(Exception):
    """Adding, removing or listing a node address failed."""


def address_label(instance: str) -> str:
    return f"{INTERFACE}:mk{hashlib.sha1(instance.encode()).hexdigest()[:10]}"


class NodeAddresses(Protocol):
    """Where the ClusterIPs live (netlink on `lo`, or a fake in tests)."""

    async def adopt(self) -> set[str]:
        """The addresses that carry this instance's label now."""

    async def apply(self, *, add: set[str], remove: set[str]) -> None:
        """Add and remove these addresses (present or absent already is fine)."""


class LoopbackAddresses:
    """This instance's addresses on `lo`."""

    def __init__(self, instance: str) -> None:
        self.label = address_label(instance)

    async def adopt(self) -> set[str]:
        try:
            async with AsyncIPRoute() as ipr:
                index = await self._index(ipr)
                found: set[str] = set()
                async for msg in await ipr.get_addr(index=index, family=AF_INET):
                    if msg.get("label") == self.label:
                        found.add(str(msg.get("address")))
                return found
        except (NetlinkError, OSError) as e:
            raise AddressError(f"listing the addresses of {INTERFACE}: {e}") from e

    async def apply(self, *, add: set[str], remove: set[str]) -> None:
        if not add and not remove:
            return
        try:
            async with AsyncIPRoute() as ipr:
                index = await self._index(ipr)
                for address in sorted(add):
                    await self._change(ipr, index, "add", address, tolerate=errno.EEXIST)
                for address in sorted(remove):
                    await self._change(ipr, index, "del", address, tolerate=errno.EADDRNOTAVAIL)
        except OSError as e:
            raise AddressError(f"changing the addresses of {INTERFACE}: {e}") from e

    async def remove_all(self) -> set[str]:
        """Remove every address with this instance's label; the ones removed."""
        owned = await self.adopt()
        await self.apply(add=set(), remove=owned)
        return owned

    async def _change(self, ipr: AsyncIPRoute, index: int, command: str, address: str, *,
                      tolerate: int) -> None:
        try:
            await ipr.addr(command, index=index, address=address, prefixlen=32,
                           label=self.label)
        except NetlinkError as e:
            if e.code != tolerate:
                raise AddressError(f"{command} {address}/32 on {INTERFACE}: {e}") from e

    @staticmethod
    async def _index(ipr: AsyncIPRoute) -> int:
        found = await ipr.link_lookup(ifname=INTERFACE)
        if not found:
            raise AddressError(f"no interface {INTERFACE}")
        return int(found[0])
