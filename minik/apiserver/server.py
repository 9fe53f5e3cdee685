"""The API server: HTTPS over a store, with the API's own background work.

`ApiServer.start()` makes sure the CA and the serving certificate exist,
builds the application (`app.create_app`, with the proxy to kubelets and
the Services' ClusterIP and NodePort allocator), creates the system
namespaces and the default StorageClass (`storage_admission` says when),
serves on the configured address and runs, supervised, the
store's compaction, the scrape of the nodes' resource metrics
(`resourcemetrics`), the return of freed heap memory to the system (`heap`)
and the `kubernetes` Service's reconciler; `stop()` ends them and stops
serving. Once the pod network exists, `serve_node_address` also serves on
the node's address there, where pods reach the API. Serving TLS, it
keeps asyncio's per-connection read buffer small (`tls.limit_read_buffers`).

It serves HTTP and nothing else: which components run beside it, in what
order, and when the process is "up" is the process wiring's
(`minik.server`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging

from aiohttp import web

from minik.api import errors
from minik.api.names import CLUSTER_DOMAIN
from minik.api.resources import REGISTRY, STORAGECLASSES
from minik.apiserver import kubelet_client
from minik.apiserver.app import READY_KEY, FailureAccessLogger, create_app
from minik.apiserver.heap import trim_forever
from minik.apiserver.kubernetes_service import KubernetesService
from minik.apiserver.metrics import ApiMetrics
from minik.apiserver.plugins import default_admission
from minik.apiserver.rbac.bootstrap import ensure_bootstrap_policy
from minik.apiserver.rbac.escalation import RBAC_ADMISSION
from minik.apiserver.resourcemetrics.api import METRICS_STORE_KEY
from minik.apiserver.resourcemetrics.scraper import MetricsScraper
from minik.apiserver.resourcemetrics.store import METRIC_RESOLUTION
from minik.apiserver.service_alloc import ServiceAllocator
from minik.apiserver.serviceaccount_admission import ServiceAccountAdmission
from minik.apiserver.serviceaccount_tokens import (
    TokenSigner,
    load_or_create_key,
    max_expiration_for_tests,
)
from minik.apiserver.storage import ObjectStorage, WriteOptions
from minik.apiserver.storage_admission import default_storage_class
from minik.apiserver.tls import ensure_certificates, limit_read_buffers, server_ssl_context
from minik.home import Home
from minik.kubeconfig import server_url
from minik.machinery.supervisor import Supervisor
from minik.store.protocol import Store

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
COMPACT_INTERVAL = 60.0
COMPACT_KEEP = 1000
KUBERNETES_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                    f"kubernetes.default.svc.{CLUSTER_DOMAIN}")


async def bootstrap_namespaces(storage: ObjectStorage) -> None:
    ns_type = REGISTRY.get("namespaces")
    for name in SYSTEM_NAMESPACES:
        with contextlib.suppress(errors.ApiError):
            await storage.create(ns_type, None, {"metadata": {"name": name}},
                                 WriteOptions(trusted=True))


async def ensure_default_storage_class(storage: ObjectStorage) -> None:
    """Create the class `standard` when there is no StorageClass at all."""
    records, _ = await storage.list_records(STORAGECLASSES, None, limit=1)
    if not records:
        log.info("creating the default StorageClass")
        with contextlib.suppress(errors.ApiError):
            await storage.create(STORAGECLASSES, None, default_storage_class(),
                                 WriteOptions(trusted=True))


async def compact_forever(storage: ObjectStorage) -> None:
    while True:
        await asyncio.sleep(COMPACT_INTERVAL)
        await storage.store.compact(keep=COMPACT_KEEP)


def make_runner(app: web.Application) -> web.AppRunner:
    """The API's runner. A client that goes away cancels its request's handler.

    aiohttp leaves a handler running after its client disconnects unless
    asked; Kubernetes cancels the request's context. Without it an idle watch,
    log or exec stream whose client is gone lives on, with its connection's
    memory, until its next write fails - for a quiet watch, possibly never.
    """
    return web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0,
                         access_log_class=FailureAccessLogger, handler_cancellation=True)


def _everywhere(bind: str) -> bool:
    """`bind` (an address or a host name) is the unspecified address: every interface."""
    try:
        return ipaddress.ip_address(bind).is_unspecified
    except ValueError:
        return False


class ApiServer:
    """Serves the Kubernetes API of one store on `bind`:`port` with the instance's keys."""

    def __init__(self, home: Home, store: Store, metrics: ApiMetrics, *, token: str,
                 bind: str, port: int, service_cidr: str = "10.96.0.0/16",
                 node_port_range: tuple[int, int] = (30000, 32767),
                 garbage_collection: bool = True,
                 metric_resolution: float = METRIC_RESOLUTION) -> None:
        self.home = home
        self.bind = bind
        self.port = port
        services = ServiceAllocator(service_cidr, node_port_range)
        self.storage = ObjectStorage(store, allocators={"Service": services},
                                     admission=default_admission(
                                         strategies=RBAC_ADMISSION,
                                         service_accounts=ServiceAccountAdmission()),
                                     garbage_collection=garbage_collection)
        self.kubernetes = KubernetesService(self.storage,
                                            cluster_ip=services.ips.kubernetes_address, port=port)
        self.supervisor = Supervisor()
        self.names = (*KUBERNETES_NAMES, services.ips.kubernetes_address)
        ensure_certificates(home, bind=bind, extra=self.names)
        self.ssl = server_ssl_context(home)
        self.node_address: str | None = None
        limit_read_buffers()
        self.signer = TokenSigner(load_or_create_key(home),
                                  max_expiration=max_expiration_for_tests())
        self.app = create_app(self.storage, token=token, metrics=metrics, signer=self.signer)
        kubelet_client.install(self.app, ca_file=home.ca_cert, token=token)
        self.scraper = MetricsScraper(self.storage, self.app[kubelet_client.KUBELET_KEY],
                                      self.app[METRICS_STORE_KEY], resolution=metric_resolution)
        self.runner = make_runner(self.app)

    async def start(self) -> str:
        """Serve, and say where (the URL clients use)."""
        await bootstrap_namespaces(self.storage)
        await ensure_default_storage_class(self.storage)
        await ensure_bootstrap_policy(self.storage)
        await self.kubernetes.reconcile()
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.bind, self.port, ssl_context=self.ssl)
        await site.start()
        self.supervisor.start("store-compaction", lambda: compact_forever(self.storage))
        self.supervisor.start("heap-trim", trim_forever)
        self.supervisor.start("kubernetes-service", self.kubernetes.run)
        self.supervisor.start("resource-metrics", self.scraper.run)
        self.app[READY_KEY].append(True)
        return server_url(self.bind, self.port)

    async def serve_node_address(self, address: str) -> None:
        """Serve on the node's address on the pod network too (TLS, the same token and
        port), its certificate naming it, and point the `kubernetes` Endpoints there."""
        if address == self.node_address:
            return
        if ensure_certificates(self.home, bind=self.bind, extra=(*self.names, address)):
            self.ssl.load_cert_chain(self.home.server_cert, self.home.server_key)
        if not _everywhere(self.bind) and address != self.bind:
            site = web.TCPSite(self.runner, address, self.port, ssl_context=self.ssl)
            await site.start()
        self.node_address = address
        self.kubernetes.set_node_address(address)
        log.info("serving the API on the node's pod network address %s:%d", address, self.port)

    async def stop(self) -> None:
        await self.supervisor.stop()
        await self.runner.cleanup()
