"""The node network process's services: the Service proxy, its metrics, and cluster DNS.

`NodeNetwork` runs what `python -m cni` runs, each under one supervisor:
the shared informers (one list+watch of Services and EndpointSlices for
the proxy and DNS alike), the Service proxy (`cni.proxy`), the metrics
endpoint and the cluster DNS server (`cni.dns`). `stop` cancels them, then
the proxy cuts its connections and removes its addresses from `lo`.

Metrics: the process serves its own `/metrics` (prometheus text, no
token: it listens on 127.0.0.1 only), on the port given (`--metrics-port`,
0 for any free one), and writes where in the home's `node-network.json`
(`{"pid": ..., "metrics": "http://127.0.0.1:PORT/metrics"}`), which is
where a Prometheus scrape config finds it. It is not merged into the API
server's `/metrics`: the data path stays out of the API server's process,
and so do its metrics.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from cni.dns.metrics import DnsMetrics
from cni.dns.server import ClusterDns, DnsConfig
from cni.proxy.addresses import LoopbackAddresses
from cni.proxy.metrics import ProxyMetrics
from cni.proxy.proxier import ProxyConfig, ServiceProxy
from minik.client.aio import AsyncClient
from minik.home import Home, write_private
from minik.kubeconfig import load_kubeconfig
from minik.machinery.clock import LoopClock
from minik.machinery.shared_informers import SharedInformers
from minik.machinery.supervisor import Supervisor

log = logging.getLogger(__name__)

METRICS_HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class NodeNetworkConfig:
    home: Home
    instance: str
    node_address: str = "127.0.0.1"
    loadbalancer_range: str = "127.0.1.0/24"
    node_ip: str | None = None
    """The node's address on the pod network (the bridge gateway), where cluster DNS listens."""
    metrics_port: int = 0
    dns_upstream: tuple[str, ...] = ()
    """Where cluster DNS forwards names outside the cluster (empty: the host's resolvers)."""


class NodeNetwork:
    def __init__(self, config: NodeNetworkConfig) -> None:
        self.config = config
        self.clock = LoopClock()
        self.client = AsyncClient(load_kubeconfig(config.home.kubeconfig),
                                  user_agent="minik-node-network")
        self.registry = CollectorRegistry()
        self.informers = SharedInformers(self.client, clock=self.clock)
        self.proxy = ServiceProxy(
            self.client, self.informers,
            ProxyConfig(config.instance, node_address=config.node_address,
                        loadbalancer_range=config.loadbalancer_range),
            addresses=LoopbackAddresses(config.instance), metrics=ProxyMetrics(self.registry),
            clock=self.clock)
        self.dns = (ClusterDns(self.client, DnsConfig.of(config.dns_upstream), config.node_ip,
                               informers=self.informers, metrics=DnsMetrics(self.registry))
                    if config.node_ip else None)
        self.supervisor = Supervisor(clock=self.clock)
        self._metrics_runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Serve metrics, then start the informers, the proxy and DNS."""
        await self._serve_metrics()
        self.informers.start(self.supervisor)
        self.supervisor.start("service-proxy", self.proxy.run)
        if self.dns is not None:
            await self.dns.start()

    async def _serve_metrics(self) -> None:
        async def metrics(_: web.Request) -> web.Response:
            return web.Response(body=generate_latest(self.registry),
                                headers={"Content-Type": CONTENT_TYPE_LATEST})

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, METRICS_HOST, self.config.metrics_port)
        await site.start()
        self._metrics_runner = runner
        port = runner.addresses[0][1]
        info = {"pid": os.getpid(), "metrics": f"http://{METRICS_HOST}:{port}/metrics"}
        write_private(self.config.home.node_network_file,
                      (json.dumps(info, indent=2) + "\n").encode())
        log.info("node network: metrics on %s", info["metrics"])

    async def stop(self) -> None:
        """Stop everything; the proxy cuts its connections and removes its addresses."""
        if self.dns is not None:
            await self.dns.stop()
        await self.supervisor.stop()
        await self.proxy.shutdown()
        if self._metrics_runner is not None:
            await self._metrics_runner.cleanup()
        self.config.home.node_network_file.unlink(missing_ok=True)
        await self.client.close()
