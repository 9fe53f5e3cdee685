"""Scraping every node's `/metrics/resource`, as metrics-server does, every metric resolution.

Each round lists the Nodes from the API's storage and asks every node's
kubelet endpoint at once (through the API server's kubelet client, the way
`nodes/proxy` reaches it), each within `SCRAPE_TIMEOUT`; a node that fails
keeps what it said last and is logged once until it answers again. Nodes
deleted since are forgotten. The first round runs at once, so usage is
there one resolution after start (a rate needs two samples).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from minik.api import errors
from minik.api.resources import NODES
from minik.apiserver.kubelet_client import KubeletClient, kubelet_base
from minik.apiserver.listing import Selection, list_page
from minik.apiserver.listoptions import ListOptions
from minik.apiserver.resourcemetrics.samples import DecodeError, NodeScrape, decode
from minik.apiserver.resourcemetrics.store import METRIC_RESOLUTION, MetricsStore
from minik.apiserver.storage import ObjectStorage
from minik.machinery.clock import Clock, LoopClock, sleep

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT = 10.0
RESOURCE_PATH = "/metrics/resource"


class ScrapeFailed(Exception):
    """A node's kubelet endpoint did not give its resource metrics."""


class MetricsScraper:
    """Feeds a `MetricsStore` from the nodes' kubelet endpoints."""

    def __init__(self, storage: ObjectStorage, kubelet: KubeletClient, store: MetricsStore, *,
                 resolution: float = METRIC_RESOLUTION, clock: Clock | None = None) -> None:
        self.storage = storage
        self.kubelet = kubelet
        self.store = store
        self.resolution = resolution
        self.clock: Clock = clock or LoopClock()
        self._failing: set[str] = set()

    async def run(self) -> None:
        """Scrape every resolution; a resolution of 0 means no scraping at all (the
        nodes then collect no stats either: `minik up --metric-resolution 0`)."""
        if self.resolution <= 0:
            return
        while True:
            await self.scrape_all()
            await sleep(self.clock, self.resolution)

    async def scrape_all(self) -> None:
        """One round: every node at once."""
        page = await list_page(self.storage, NODES, Selection(None), ListOptions())
        names = {node["metadata"]["name"] for node in page.items}
        self.store.keep_nodes(names)
        await asyncio.gather(*(self._scrape_node(node) for node in page.items))

    async def _scrape_node(self, node: dict[str, Any]) -> None:
        name = node["metadata"]["name"]
        try:
            scrape = await self.scrape(node)
        except ScrapeFailed as e:
            if name not in self._failing:
                log.warning("resource metrics of node %s: %s", name, e)
            self._failing.add(name)
            return
        if name in self._failing:
            log.info("resource metrics of node %s are back", name)
            self._failing.discard(name)
        self.store.store(name, scrape, resolution=self.resolution)

    async def scrape(self, node: dict[str, Any]) -> NodeScrape:
        """The node's `/metrics/resource`, decoded."""
        try:
            url = kubelet_base(node).with_path(RESOURCE_PATH)
        except errors.ApiError as e:
            raise ScrapeFailed(e.message) from e
        try:
            async with asyncio.timeout(SCRAPE_TIMEOUT):
                async with await self.kubelet.get(url) as response:
                    body = await response.text()
                    if response.status != 200:
                        raise ScrapeFailed(f"{url} answered {response.status}: {body[:200]}")
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise ScrapeFailed(f"{url} is not reachable: {e!r}") from e
        try:
            return decode(body, now=self.clock.wall().timestamp())
        except DecodeError as e:
            raise ScrapeFailed(f"{url}: {e}") from e
