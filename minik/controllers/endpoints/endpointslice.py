"""The EndpointSlice controller: discovery.k8s.io/v1 slices of each selected Service's pods.

Kubernetes' `pkg/controller/endpointslice`. Handlers only compute keys: a
Service change queues the Service, a pod change every Service selecting the
pod (before or after), and a change to a slice this controller manages its
Service (so that a slice someone edited or deleted is put back).

`sync(key)` is level-triggered. A Service that is gone, has no selector or
is an ExternalName needs nothing here (the garbage collector removes the
slices of a deleted Service through their ownerReference; a Service without
a selector has its user's Endpoints mirrored by the mirroring controller).
Otherwise every selected pod that should be an endpoint (terminating pods
included) becomes one endpoint: its address, `conditions` (`serving` from
readiness, `terminating` from its deletionTimestamp, `ready` when serving and
not terminating, or always with `publishNotReadyAddresses`), `nodeName`,
`targetRef`, and `hostname` when its subdomain is the Service; with the
ports it serves (a named targetPort resolved per pod). `slices.plan_slices`
turns that into writes, carried out by `writer.SliceWriter`; while the cache
has not seen this controller's previous writes (`tracker`), the sync is
retried rather than planned on stale data.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging

from minik.api.meta import (
    format_time,
    is_being_deleted,
    is_pod_ready,
    labels_of,
    name_of,
    namespace_of,
    new_controller_ref,
)
from minik.api.objects import Endpoint, EndpointPort, EndpointSlice, Pod, Service
from minik.api.resources import ENDPOINTSLICES, PODS, SERVICES
from minik.controllers.context import ControllerContext
from minik.controllers.endpoints.endpoints import TRIGGER_TIME_ANNOTATION
from minik.controllers.endpoints.pods import (
    find_port,
    hostname_for,
    is_headless,
    last_change_time,
    pod_ip,
    pod_reference,
    protocol_of,
    should_be_endpoint,
)
from minik.controllers.endpoints.services import (
    PodServiceMap,
    is_external_name,
    selected_pods,
    service_selector,
)
from minik.controllers.endpoints.slices import (
    EndpointGroup,
    SliceMeta,
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
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
HEADLESS_LABEL = "service.kubernetes.io/headless"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
SERVICE_INDEX = "service"
"""Slices by `namespace/service-name` key, whoever manages them."""


def service_index(slice_: EndpointSlice) -> list[str]:
    service = labels_of(slice_).get(SERVICE_NAME_LABEL)
    return [f"{namespace_of(slice_)}/{service}"] if service else []


def address_type_of(ip: str) -> str:
    return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"


def pod_endpoint(pod: Pod, service: Service) -> Endpoint:
    serving = is_pod_ready(pod)
    terminating = is_being_deleted(pod)
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    endpoint: Endpoint = {
        "addresses": [pod_ip(pod)],
        "conditions": {"ready": publish or (serving and not terminating), "serving": serving,
                       "terminating": terminating},
        "targetRef": pod_reference(pod),
    }
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        endpoint["nodeName"] = node
    hostname = hostname_for(pod, service)
    if hostname:
        endpoint["hostname"] = hostname
    return endpoint


def endpoint_ports(pod: Pod, service: Service) -> list[EndpointPort]:
    """The Service's ports this pod serves, with their numbers in this pod."""
    ports: list[EndpointPort] = []
    for service_port in (service.get("spec") or {}).get("ports") or []:
        number = find_port(pod, service_port)
        if number is None:
            continue
        port: EndpointPort = {"name": service_port.get("name") or "", "port": number,
                              "protocol": protocol_of(service_port)}
        if service_port.get("appProtocol"):
            port["appProtocol"] = service_port["appProtocol"]
        ports.append(port)
    return ports


def desired_groups(service: Service, pods: list[Pod]) -> list[EndpointGroup]:
    """The endpoints a Service's slices should hold, grouped by address type and ports."""
    families = (service.get("spec") or {}).get("ipFamilies") or []
    entries: list[tuple[str, list[EndpointPort], Endpoint]] = []
    for pod in pods:
        if not should_be_endpoint(pod, include_terminating=True):
            continue
        address_type = address_type_of(pod_ip(pod))
        if families and address_type not in families:
            continue
        entries.append((address_type, endpoint_ports(pod, service), pod_endpoint(pod, service)))
    return group_endpoints(entries)


def slice_labels(service: Service, *, managed_by: str) -> dict[str, str]:
    """The Service's labels, with the service name, manager and headless labels."""
    labels = dict(labels_of(service))
    labels[SERVICE_NAME_LABEL] = name_of(service)
    labels[MANAGED_BY_LABEL] = managed_by
    if is_headless(service):
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    return labels


def managed_slices(slices: Informer[EndpointSlice], key: str,
                   managed_by: str) -> list[EndpointSlice]:
    return [s for s in slices.indexer.by_index(SERVICE_INDEX, key)
            if labels_of(s).get(MANAGED_BY_LABEL) == managed_by]


def add_service_index(slices: Informer[EndpointSlice]) -> None:
    """The service index, once for both slice controllers on the shared informer."""
    with contextlib.suppress(ValueError):
        slices.indexer.add_index(SERVICE_INDEX, service_index)


class EndpointSliceController:
    """Keeps the EndpointSlices of every Service with a selector listing its pods."""

    name = "endpointslice"

    def __init__(self, ctx: ControllerContext, *, workers: int = DEFAULT_WORKERS) -> None:
        self.client = ctx.client
        self.informers = ctx.informers
        self.metrics = ctx.metrics
        self.workers = workers
        self.clock = ctx.clock
        self.services: Informer[Service] = ctx.informers.get(SERVICES)
        self.pods: Informer[Pod] = ctx.informers.get(PODS)
        self.slices: Informer[EndpointSlice] = ctx.informers.get(ENDPOINTSLICES)
        add_service_index(self.slices)
        self.tracker = SliceTracker(ctx.clock)
        self.writer = SliceWriter(ctx.client, self.tracker)
        self.queue = WorkQueue(self.name, metrics=ctx.metrics, clock=ctx.clock)
        membership = PodServiceMap(self.services, self.queue.add)
        self.services.add_handler(self._service_changed,
                                  lambda _old, new: self._service_changed(new),
                                  self._service_deleted)
        self.pods.add_handler(membership.added, membership.updated, membership.deleted)
        self.slices.add_handler(self._slice_changed, lambda _old, new: self._slice_changed(new),
                                self._slice_changed)

    async def run(self) -> None:
        """Wait for the caches, then sync every Service and follow changes until cancelled."""
        await self.informers.wait_synced(SERVICES, PODS, ENDPOINTSLICES)
        for service in self.services.indexer.list():
            self.queue.add(key_of(service))
        await run_workers(self.queue, self.sync, workers=self.workers, metrics=self.metrics)

    def _service_changed(self, service: Service) -> None:
        self.queue.add(key_of(service))

    def _service_deleted(self, service: Service) -> None:
        self.tracker.forget(key_of(service))

    def _slice_changed(self, slice_: EndpointSlice) -> None:
        if labels_of(slice_).get(MANAGED_BY_LABEL) == CONTROLLER_NAME:
            for key in service_index(slice_):
                self.queue.add(key)

    async def sync(self, key: str) -> None:
        """Bring the slices of one Service in line with its pods."""
        service = self.services.indexer.get(key)
        if service is None or is_external_name(service) or service_selector(service) is None:
            return
        existing = managed_slices(self.slices, key, CONTROLLER_NAME)
        if self.tracker.stale(key, existing):
            raise Requeue("the endpointslice cache has not seen this controller's writes")
        pods = selected_pods(service, self.pods)
        changed = last_change_time(service, pods)
        meta = SliceMeta(
            namespace=namespace_of(service) or "", generate_name=f"{name_of(service)}-",
            labels=slice_labels(service, managed_by=CONTROLLER_NAME), annotations={},
            owner=new_controller_ref(service, api_version="v1", kind="Service"),
            on_write={TRIGGER_TIME_ANNOTATION: format_time(changed)} if changed else {})
        plan = plan_slices(desired_groups(service, pods), existing, meta)
        if plan:
            await self.writer.apply(key, meta.namespace, plan)
