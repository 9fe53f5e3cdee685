"""The root CA publisher: every active namespace holds the ConfigMap `kube-root-ca.crt`.

Kubernetes' `root-ca-cert-publisher` (`pkg/controller/certificates/rootcacertpublisher`):
pods verify the API server with its `ca.crt` (the projected token volume
mounts it), so each namespace gets the CA the controllers trust, and gets
it back if the ConfigMap is deleted or changed. Handlers compute keys only
(a namespace's name); `sync` is level-triggered, reads the caches, and
writes only when the ConfigMap is missing or holds other data.
"""

from __future__ import annotations

import logging

from minik.api.errors import ApiError
from minik.api.meta import meta_of, name_of
from minik.api.objects import AnyObject, JsonObject, Namespace
from minik.api.resources import CONFIGMAPS, NAMESPACES
from minik.controllers.context import ControllerContext
from minik.controllers.serviceaccount import NOTHING_LEFT_TO_DO, is_active
from minik.machinery.informer import Informer
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)

ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using "
               "internal endpoints such as the internal service IP or kubernetes.default.svc. "
               "No other usage is guaranteed across distributions of Kubernetes clusters.")


class RootCACertPublisher:
    """Creates and keeps `kube-root-ca.crt` (key `ca.crt`) in every active namespace."""

    name = "root-ca-cert-publisher"

    def __init__(self, ctx: ControllerContext, *, ca_pem: bytes | None = None) -> None:
        """`ca_pem`: the CA to publish; by default the one the controllers' client trusts."""
        self.client = ctx.client
        self.informers = ctx.informers
        self.metrics = ctx.metrics
        self.ca = (ca_pem or ctx.client.access.ca_pem or b"").decode()
        self.namespaces: Informer[Namespace] = ctx.informers.get(NAMESPACES)
        self.configmaps = ctx.informers.get(CONFIGMAPS)
        self.queue = WorkQueue(self.name, metrics=ctx.metrics, clock=ctx.clock)
        self.namespaces.add_handler(self._namespace_changed,
                                    lambda _old, new: self._namespace_changed(new))
        self.configmaps.add_handler(on_update=lambda _old, new: self._configmap_changed(new),
                                    on_delete=self._configmap_changed)

    async def run(self) -> None:
        await self.informers.wait_synced(NAMESPACES, CONFIGMAPS)
        for namespace in self.namespaces.indexer.list():
            self._namespace_changed(namespace)
        await run_workers(self.queue, self.sync, workers=1, metrics=self.metrics)

    def _namespace_changed(self, namespace: Namespace) -> None:
        self.queue.add(name_of(namespace))

    def _configmap_changed(self, configmap: AnyObject) -> None:
        md = meta_of(configmap)
        if md.get("name") == ROOT_CA_CONFIGMAP and md.get("namespace"):
            self.queue.add(md["namespace"])

    def _wanted(self, namespace: str) -> JsonObject:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": namespace,
                             "annotations": {"kubernetes.io/description": DESCRIPTION}},
                "data": {"ca.crt": self.ca}}

    async def sync(self, name: str) -> None:
        namespace = self.namespaces.indexer.get(name)
        if namespace is None or not is_active(namespace) or not self.ca:
            return
        current = self.configmaps.indexer.get_by(name, ROOT_CA_CONFIGMAP)
        try:
            if current is None:
                await self.client.create(CONFIGMAPS, name, self._wanted(name))
                log.info("%s: published the root CA in namespace %s", self.name, name)
            elif current.get("data") != {"ca.crt": self.ca}:
                await self.client.patch(CONFIGMAPS, name, ROOT_CA_CONFIGMAP,
                                        {"data": {"ca.crt": self.ca}}, patch_type="merge")
        except ApiError as e:
            if e.code not in NOTHING_LEFT_TO_DO:
                raise
