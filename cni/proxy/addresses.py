"""The node's ClusterIPs: /32 addresses on `lo`, labelled with the instance, via netlink.

The kernel has no dummy interfaces here; `lo` works: pods (whose default
route is the bridge gateway) and the host both reach a socket bound to an
address on it. Each address carries the label `lo:mk<10 hex of
sha1(instance)>` (a label starts with its interface's name and has at most
15 characters), which says whose it is: a restarted proxy takes over the
addresses with its label (`adopt`) and, once it knows what it wants,
removes those it no longer wants; `minik down` removes them all
(`remove_all`). Another instance's or the host's own addresses are never
touched. Netlink is spoken through pyroute2, never by
shelling out to `ip`; its errors are mapped here to `AddressError`.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
from typing import Protocol

from pyroute2 import IPRoute
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
    """This instance's addresses on `lo`.

    pyroute2's asyncio client cannot run on uvloop (which opens no netlink
    socket), so its blocking client runs in a worker thread: a netlink
    request takes well under a millisecond, and a sync makes a handful.
    """

    def __init__(self, instance: str) -> None:
        self.label = address_label(instance)

    async def adopt(self) -> set[str]:
        return await asyncio.to_thread(self._adopt)

    async def apply(self, *, add: set[str], remove: set[str]) -> None:
        if add or remove:
            await asyncio.to_thread(self._apply, add, remove)

    async def remove_all(self) -> set[str]:
        """Remove every address with this instance's label; the ones removed."""
        owned = await self.adopt()
        await self.apply(add=set(), remove=owned)
        return owned

    def _adopt(self) -> set[str]:
        try:
            with IPRoute() as ipr:
                return {str(msg.get_attr("IFA_ADDRESS"))
                        for msg in ipr.get_addr(index=self._index(ipr), family=AF_INET)
                        if msg.get_attr("IFA_LABEL") == self.label}
        except (NetlinkError, OSError) as e:
            raise AddressError(f"listing the addresses of {INTERFACE}: {e}") from e

    def _apply(self, add: set[str], remove: set[str]) -> None:
        try:
            with IPRoute() as ipr:
                index = self._index(ipr)
                for address in sorted(add):
                    self._change(ipr, index, "add", address, tolerate=errno.EEXIST)
                for address in sorted(remove):
                    self._change(ipr, index, "del", address, tolerate=errno.EADDRNOTAVAIL)
        except OSError as e:
            raise AddressError(f"changing the addresses of {INTERFACE}: {e}") from e

    def _change(self, ipr: IPRoute, index: int, command: str, address: str, *,
                tolerate: int) -> None:
        try:
            ipr.addr(command, index=index, address=address, prefixlen=32, label=self.label)
        except NetlinkError as e:
            if e.code != tolerate:
                raise AddressError(f"{command} {address}/32 on {INTERFACE}: {e}") from e

    @staticmethod
    def _index(ipr: IPRoute) -> int:
        found = ipr.link_lookup(ifname=INTERFACE)
        if not found:
            raise AddressError(f"no interface {INTERFACE}")
        return int(found[0])
