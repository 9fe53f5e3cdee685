"""The `kubernetes` Service in `default`, and where it points: the API server itself.

As Kubernetes' bootstrap controller and endpoint reconciler
(`pkg/controlplane/controller/kubernetesservice`, `pkg/controlplane/reconcilers`)
do, the API server keeps three objects of its own:

- the Service `kubernetes` (labels `component: apiserver`, `provider:
  kubernetes`) at the service CIDR's first address, port 443 named `https`
  (TCP) to the API server's port;
- the Endpoints `kubernetes` (label `endpointslice.kubernetes.io/skip-mirror:
  "true"`): one subset, the node's address, the port `https`;
- the EndpointSlice `kubernetes` (label `kubernetes.io/service-name:
  kubernetes`, IPv4), that address `ready: true`, the same port.

The address is the node's address on the pod network (the bridge gateway),
where the API server also listens: pods cannot reach 127.0.0.1, and
Kubernetes refuses loopback endpoints. Until the pod network exists (or
with no node at all) there are no Endpoints. `reconcile` is level-triggered;
`run` repeats it every `INTERVAL` seconds (Kubernetes' endpoint reconciler
interval is 10 s), so an object deleted or changed by a client is back
within one interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from minik.api import errors
from minik.api.resources import REGISTRY, ResourceType
from minik.apiserver.storage import ObjectStorage, WriteOptions

log = logging.getLogger(__name__)

NAME, NAMESPACE = "kubernetes", "default"
INTERVAL = 5.0
SERVICE_LABELS = {"component": "apiserver", "provider": "kubernetes"}
ENDPOINTS_LABELS = {"endpointslice.kubernetes.io/skip-mirror": "true"}
SLICE_LABELS = {"kubernetes.io/service-name": NAME}
SERVICES = REGISTRY.get("services")
ENDPOINTS = REGISTRY.get("endpoints")
SLICES = REGISTRY.get("endpointslices.discovery.k8s.io")

JsonObject = dict[str, Any]
Fits = Callable[[JsonObject, JsonObject], bool]


def desired_service(cluster_ip: str, port: int) -> JsonObject:
    return {"metadata": {"name": NAME, "namespace": NAMESPACE, "labels": dict(SERVICE_LABELS)},
            "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "sessionAffinity": "None",
                     "ports": [{"name": "https", "protocol": "TCP", "port": 443,
                                "targetPort": port}]}}


def desired_endpoints(address: str, port: int) -> JsonObject:
    return {"metadata": {"name": NAME, "namespace": NAMESPACE, "labels": dict(ENDPOINTS_LABELS)},
            "subsets": [{"addresses": [{"ip": address}],
                         "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]}


def desired_slice(address: str, port: int) -> JsonObject:
    return {"metadata": {"name": NAME, "namespace": NAMESPACE, "labels": dict(SLICE_LABELS)},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}


class KubernetesService:
    """Keeps the `kubernetes` Service, Endpoints and EndpointSlice as they should be."""

    def __init__(self, storage: ObjectStorage, *, cluster_ip: str, port: int) -> None:
        self.storage = storage
        self.cluster_ip = cluster_ip
        self.port = port
        self.node_address: str | None = None
        self._wake = asyncio.Event()

    def set_node_address(self, address: str) -> None:
        """The node's address on the pod network is known: point the Endpoints there."""
        self.node_address = address
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.reconcile()
            except errors.ApiError as e:
                log.warning("cannot reconcile the kubernetes Service: %s", e)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), INTERVAL)

    async def reconcile(self) -> None:
        await self._ensure(SERVICES, desired_service(self.cluster_ip, self.port), _service_ok)
        if self.node_address is None:
            return
        await self._ensure(ENDPOINTS, desired_endpoints(self.node_address, self.port),
                           _same("subsets"))
        await self._ensure(SLICES, desired_slice(self.node_address, self.port),
                           _same("addressType", "endpoints", "ports"))

    async def _ensure(self, rt: ResourceType, want: JsonObject, fits: Fits) -> None:
        trusted = WriteOptions(trusted=True)
        try:
            current = await self.storage.get(rt, NAMESPACE, NAME)
        except errors.ApiError as e:
            if e.code != 404:
                raise
            log.info("creating the %s %s/%s", rt.kind, NAMESPACE, NAME)
            await self.storage.create(rt, NAMESPACE, want, trusted)
            return
        labels = (current.get("metadata") or {}).get("labels") or {}
        if fits(current, want) and all(labels.get(k) == v
                                       for k, v in want["metadata"]["labels"].items()):
            return
        log.info("resetting the %s %s/%s", rt.kind, NAMESPACE, NAME)

        def change(obj: JsonObject) -> JsonObject:
            obj.setdefault("metadata", {}).setdefault("labels", {}).update(
                want["metadata"]["labels"])
            obj.update({k: v for k, v in want.items() if k != "metadata"})
            return obj

        await self.storage.mutate(rt, NAMESPACE, NAME, change, trusted)


def _service_ok(current: JsonObject, want: JsonObject) -> bool:
    spec, wanted = current.get("spec") or {}, want["spec"]
    ports = [{k: p.get(k) for k in ("name", "protocol", "port", "targetPort")}
             for p in spec.get("ports") or []]
    return (spec.get("clusterIP") == wanted["clusterIP"] and ports == wanted["ports"]
            and spec.get("type") == "ClusterIP")


def _same(*keys: str) -> Fits:
    def fits(current: JsonObject, want: JsonObject) -> bool:
        return all(current.get(k) == want[k] for k in keys)
    return fits
