"""The EndpointSlice mirroring controller: a selectorless Service's Endpoints, as slices.

Kubernetes' `pkg/controller/endpointslicemirroring`. A Service without a
selector has Endpoints written by its user (or, for `default/kubernetes`,
by the API server); consumers read EndpointSlices, so this controller
mirrors those Endpoints into slices managed by
`endpointslicemirroring-controller.k8s.io`. Handlers queue the
`namespace/name` shared by an Endpoints and its Service on a change to
either, and on a change to a mirrored slice.

`sync(key)` is level-triggered: the slices are removed when the Endpoints
or the Service is gone, when the Service has a selector (the EndpointSlice
controller serves it), or when the Endpoints carry
`endpointslice.kubernetes.io/skip-mirror: "true"` (as the API server marks
the `kubernetes` Endpoints it mirrors itself). Otherwise every address of
each subset becomes an endpoint (`ready` true under `addresses`, false
under `notReadyAddresses`, with its hostname, nodeName and targetRef) with
the subset's ports, an address that is not an IP is skipped, and at most
1000 endpoints are mirrored. The slices carry the Endpoints' labels and
annotations (but the last-applied configuration) and are owned by the
Service.
"""

from __future__ import annotations

import ipaddress
import logging

from minik.api.errors import ApiError
from minik.api.meta import annotations_of, labels_of, name_of, namespace_of, new_controller_ref
from minik.api.objects import (
    Endpoint,
    EndpointAddress,
    EndpointPort,
    Endpoints,
    EndpointSlice,
    Service,
)
from minik.api.resources import ENDPOINTS, ENDPOINTSLICES, SERVICES
from minik.controllers.context import ControllerContext
from minik.controllers.endpoints.endpointslice import (
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    add_service_index,
    managed_slices,
    service_index,
)
from minik.controllers.endpoints.services import service_selector
from minik.controllers.endpoints.slices import (
    EndpointGroup,
    SliceMeta,
    SlicePlan,
    group_endpoints,
    plan_slices,
)
from minik.controllers.endpoints.tracker import SliceTracker
from minik.controllers.endpoints.writer import SliceWriter
from minik.machinery.informer import Informer, key_of
from minik.machinery.requeue import Requeue
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 5
CONTROLLER_NAME = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MAX_MIRRORED_ENDPOINTS = 1000


def _address_type(ip: str) -> str | None:
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return None


def address_endpoint(address: EndpointAddress, *, ready: bool) -> Endpoint:
    """`addressToEndpoint`: one mirrored address, with only its `ready` condition."""
    endpoint: Endpoint = {"addresses": [address["ip"]], "conditions": {"ready": ready}}
    if address.get("targetRef"):
        endpoint["targetRef"] = address["targetRef"]
    if address.get("nodeName"):
        endpoint["nodeName"] = address["nodeName"]
    if address.get("hostname"):
        endpoint["hostname"] = address["hostname"]
    return endpoint


def mirrored_groups(endpoints: Endpoints) -> list[EndpointGroup]:
    """The endpoints of every subset, grouped by address type and the subset's ports."""
    entries: list[tuple[str, list[EndpointPort], Endpoint]] = []
    for subset in endpoints.get("subsets") or []:
        ports: list[EndpointPort] = [
            {**p, "name": p.get("name") or "", "protocol": p.get("protocol") or "TCP"}
            for p in subset.get("ports") or []]
        addresses = [(a, True) for a in subset.get("addresses") or []]
        addresses += [(a, False) for a in subset.get("notReadyAddresses") or []]
        for address, ready in addresses:
            address_type = _address_type(address.get("ip", ""))
            if address_type is None or len(entries) >= MAX_MIRRORED_ENDPOINTS:
                continue
            entries.append((address_type, ports, address_endpoint(address, ready=ready)))
    return group_endpoints(entries)


def mirror_meta(endpoints: Endpoints, service: Service) -> SliceMeta:
    labels = {k: v for k, v in labels_of(endpoints).items() if k != SKIP_MIRROR_LABEL}
    labels[SERVICE_NAME_LABEL] = name_of(service)
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    annotations = {k: v for k, v in annotations_of(endpoints).items() if k != LAST_APPLIED}
    return SliceMeta(namespace=namespace_of(service) or "",
                     generate_name=f"{name_of(service)}-", labels=labels,
                     annotations=annotations,
                     owner=new_controller_ref(service, api_version="v1", kind="Service"))


def should_mirror(endpoints: Endpoints | None, service: Service | None) -> bool:
    return (endpoints is not None and service is not None
            and service_selector(service) is None
            and labels_of(endpoints).get(SKIP_MIRROR_LABEL) != "true")


class EndpointSliceMirroringController:
    """Mirrors the Endpoints of Services without a selector into EndpointSlices."""

    name = "endpointslicemirroring"

    def __init__(self, ctx: ControllerContext, *, workers: int = DEFAULT_WORKERS) -> None:
        self.client = ctx.client
        self.informers = ctx.informers
        self.metrics = ctx.metrics
        self.workers = workers
        self.services: Informer[Service] = ctx.informers.get(SERVICES)
        self.endpoints: Informer[Endpoints] = ctx.informers.get(ENDPOINTS)
        self.slices: Informer[EndpointSlice] = ctx.informers.get(ENDPOINTSLICES)
        add_service_index(self.slices)
        self.tracker = SliceTracker(ctx.clock)
        self.writer = SliceWriter(ctx.client, self.tracker)
        self.queue = WorkQueue(self.name, metrics=ctx.metrics, clock=ctx.clock)
        for informer in (self.services, self.endpoints):
            informer.add_handler(self._changed, lambda _old, new: self._changed(new),
                                 self._changed)
        self.slices.add_handler(self._slice_changed, lambda _old, new: self._slice_changed(new),
                                self._slice_changed)

    async def run(self) -> None:
        """Wait for the caches, then sync every Endpoints and follow changes until cancelled."""
        await self.informers.wait_synced(SERVICES, ENDPOINTS, ENDPOINTSLICES)
        for endpoints in self.endpoints.indexer.list():
            self.queue.add(key_of(endpoints))
        await run_workers(self.queue, self.sync, workers=self.workers, metrics=self.metrics)

    def _changed(self, obj: Service | Endpoints) -> None:
        self.queue.add(key_of(obj))

    def _slice_changed(self, slice_: EndpointSlice) -> None:
        if labels_of(slice_).get(MANAGED_BY_LABEL) == CONTROLLER_NAME:
            for key in service_index(slice_):
                self.queue.add(key)

    async def sync(self, key: str) -> None:
        """Mirror one Endpoints into slices, or remove the slices it no longer needs."""
        existing = managed_slices(self.slices, key, CONTROLLER_NAME)
        if self.tracker.stale(key, existing):
            raise Requeue("the endpointslice cache has not seen this controller's writes")
        endpoints, service = self.endpoints.indexer.get(key), self.services.indexer.get(key)
        if endpoints is None or service is None or not should_mirror(endpoints, service):
            if existing:
                await self._remove(key, existing)
            return
        meta = mirror_meta(endpoints, service)
        plan = plan_slices(mirrored_groups(endpoints), existing, meta)
        if plan:
            await self.writer.apply(key, meta.namespace, plan)

    async def _remove(self, key: str, slices: list[EndpointSlice]) -> None:
        try:
            await self.writer.apply(key, namespace_of(slices[0]) or "",
                                    SlicePlan(delete=slices))
        except ApiError as e:
            if e.code != 404:
                raise
        if self.services.indexer.get(key) is None:
            self.tracker.forget(key)
