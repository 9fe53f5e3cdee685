"""Shared informers: one list+watch per resource type for all controllers.

Controllers ask `SharedInformers.get(PODS)` in their constructors and add
their handlers and indexes; the manager starts every informer that was
asked for once, and controllers wait for `wait_synced()` before syncing.
The informer has the shape its resource type names (`Informer[Pod]` for
`minik.api.resources.PODS`); two controllers that ask for one resource get
the same informer, whichever constant they name it by.
"""

from __future__ import annotations

import asyncio
from typing import Any

from minik.api.objects import ObjectT
from minik.api.resources import ResourceType
from minik.client.aio import AsyncClient
from minik.machinery.clock import Clock
from minik.machinery.informer import Informer
from minik.machinery.supervisor import Supervisor


class SharedInformers:
    """Creates each resource's informer once, with the built-in owner index."""

    def __init__(self, client: AsyncClient, *, resync_period: float = 300.0,
                 clock: Clock | None = None) -> None:
        self.client = client
        self.resync_period = resync_period
        self.clock = clock
        self._informers: dict[str, Informer[Any]] = {}
        """By resource: each informer of its resource's shape, which the key says only at
        run time (hence `Any`: `get` gives it back with its type's shape)."""
        self._started: set[str] = set()

    def get(self, rt: ResourceType[ObjectT]) -> Informer[ObjectT]:
        informer = self._informers.get(rt.qualified_name)
        if informer is None:
            informer = Informer(self.client, rt, resync_period=self.resync_period,
                                clock=self.clock)
            self._informers[rt.qualified_name] = informer
        return informer

    def start(self, supervisor: Supervisor) -> None:
        """Start every informer asked for so far (and not yet started)."""
        for name, informer in self._informers.items():
            if name not in self._started:
                self._started.add(name)
                supervisor.start(f"informer:{name}", informer.run)

    async def wait_synced(self, *types: ResourceType) -> None:
        """Until the informers of `types` (all asked for so far, when none) have listed."""
        informers = [self.get(rt) for rt in types] if types else self._informers.values()
        await asyncio.gather(*(i.wait_synced() for i in informers))
