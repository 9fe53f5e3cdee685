"""The Endpoints controller: one core/v1 Endpoints per Service with a selector.

Kubernetes' `pkg/controller/endpoint`. Handlers only compute keys: a Service
change queues the Service, a pod change every Service selecting the pod
(before or after the change), and a deleted Endpoints its Service, so that it
comes back. At start every Endpoints is queued too, so that one left behind
by a Service deleted while the controller was down is removed.

`sync(key)` is level-triggered. A Service that is gone takes its Endpoints
with it (Endpoints carry no ownerReference: this controller deletes them). A
Service without a selector keeps the Endpoints its user writes, and an
ExternalName Service has none: both are left alone. Otherwise each selected
pod that should be an endpoint (`pods.should_be_endpoint`; a terminating
pod only with `publishNotReadyAddresses`) gives one address per Service port
it serves, under `addresses` when it is ready (or the Service publishes
not-ready addresses) and under `notReadyAddresses` otherwise; a headless
Service without ports lists its pods' addresses without ports. The subsets
are then repacked as `endpoints.RepackSubsets` does: one subset per set of
ports that share the same addresses. The Endpoints is written only when its
subsets or labels (the Service's, plus `service.kubernetes.io/headless` for
a headless Service and `endpoints.kubernetes.io/managed-by:
endpoint-controller`, as Kubernetes 1.33 writes) differ, with the
`last-change-trigger-time` annotation.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable

from minik.api.errors import ApiError
from minik.api.meta import format_time, is_pod_ready, labels_of, name_of, namespace_of
from minik.api.objects import (
    EndpointAddress,
    EndpointPort,
    Endpoints,
    EndpointSubset,
    Pod,
    Service,
)
from minik.api.resources import ENDPOINTS, PODS, SERVICES
from minik.controllers.context import ControllerContext
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
from minik.machinery.informer import Informer, key_of, split_key
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 5
HEADLESS_LABEL = "service.kubernetes.io/headless"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
MANAGED_BY_LABEL, MANAGED_BY = "endpoints.kubernetes.io/managed-by", "endpoint-controller"

AddressEntry = tuple[EndpointAddress, EndpointPort | None, bool]
"""One address of a pod, for one Service port (None: a headless Service without ports),
and whether it is ready."""


def endpoint_address(pod: Pod, service: Service) -> EndpointAddress:
    address: EndpointAddress = {"ip": pod_ip(pod), "targetRef": pod_reference(pod)}
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        address["nodeName"] = node
    hostname = hostname_for(pod, service)
    if hostname:
        address["hostname"] = hostname
    return address


def address_entries(service: Service, pods: Iterable[Pod]) -> list[AddressEntry]:
    """Each pod's address for each Service port it serves, and whether it is ready."""
    spec = service.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    entries: list[AddressEntry] = []
    for pod in pods:
        if not should_be_endpoint(pod, include_terminating=publish):
            continue
        address = endpoint_address(pod, service)
        ready = publish or is_pod_ready(pod)
        ports = spec.get("ports") or []
        if not ports and is_headless(service):
            entries.append((address, None, ready))
        for service_port in ports:
            number = find_port(pod, service_port)
            if number is None:
                log.debug("pod %s/%s does not serve port %s of service %s", namespace_of(pod),
                          name_of(pod), service_port.get("name"), name_of(service))
                continue
            port: EndpointPort = {"name": service_port.get("name") or "", "port": number,
                                  "protocol": protocol_of(service_port)}
            if service_port.get("appProtocol"):
                port["appProtocol"] = service_port["appProtocol"]
            entries.append((address, port, ready))
    return entries


def _address_key(address: EndpointAddress) -> tuple[str, str]:
    return address["ip"], address.get("targetRef", {}).get("uid", "")


def _port_key(port: EndpointPort | None) -> tuple[str, int, str, str]:
    if port is None:
        return "", 0, "", ""
    return (port.get("name", ""), port.get("port", 0), port.get("protocol", ""),
            port.get("appProtocol", ""))


def repack_subsets(entries: Iterable[AddressEntry]) -> list[EndpointSubset]:
    """`endpoints.RepackSubsets`: ports that share the same addresses share one subset.

    Addresses are sorted by IP (then pod uid), ports by name and number, subsets by
    their first port, so that equal inputs always give equal subsets.
    """
    ports: dict[tuple[str, int, str, str], EndpointPort | None] = {}
    by_port: dict[tuple[str, int, str, str], dict[tuple[str, str], tuple[EndpointAddress,
                                                                         bool]]] = {}
    for address, port, ready in entries:
        key = _port_key(port)
        ports[key] = port
        by_port.setdefault(key, {})[_address_key(address)] = (address, ready)
    groups: dict[tuple[tuple[tuple[str, str], bool], ...], list[tuple[str, int, str, str]]] = {}
    for key, addresses in by_port.items():
        signature = tuple(sorted((a, ready) for a, (_, ready) in addresses.items()))
        groups.setdefault(signature, []).append(key)
    subsets: list[EndpointSubset] = []
    for port_keys in sorted(groups.values(), key=min):
        addresses = by_port[port_keys[0]]
        subset: EndpointSubset = {}
        ordered = [addresses[k] for k in sorted(addresses)]
        if ready_addresses := [a for a, ready in ordered if ready]:
            subset["addresses"] = ready_addresses
        if not_ready := [a for a, ready in ordered if not ready]:
            subset["notReadyAddresses"] = not_ready
        subset_ports = [p for k in sorted(port_keys) if (p := ports[k]) is not None]
        if subset_ports:
            subset["ports"] = subset_ports
        subsets.append(subset)
    return subsets


def endpoints_labels(service: Service) -> dict[str, str]:
    labels = dict(labels_of(service))
    labels[MANAGED_BY_LABEL] = MANAGED_BY
    if is_headless(service):
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    return labels


class EndpointsController:
    """Keeps the Endpoints of every Service with a selector listing its pods."""

    name = "endpoint"

    def __init__(self, ctx: ControllerContext, *, workers: int = DEFAULT_WORKERS) -> None:
        self.client = ctx.client
        self.informers = ctx.informers
        self.metrics = ctx.metrics
        self.workers = workers
        self.services: Informer[Service] = ctx.informers.get(SERVICES)
        self.pods: Informer[Pod] = ctx.informers.get(PODS)
        self.endpoints: Informer[Endpoints] = ctx.informers.get(ENDPOINTS)
        self.queue = WorkQueue(self.name, metrics=ctx.metrics, clock=ctx.clock)
        membership = PodServiceMap(self.services, self.queue.add)
        self.services.add_handler(self._service_changed,
                                  lambda _old, new: self._service_changed(new),
                                  self._service_changed)
        self.pods.add_handler(membership.added, membership.updated, membership.deleted)
        self.endpoints.add_handler(on_delete=self._service_changed)

    async def run(self) -> None:
        """Wait for the caches, then sync every Service (and leftover Endpoints) until
        cancelled."""
        await self.informers.wait_synced(SERVICES, PODS, ENDPOINTS)
        for obj in [*self.services.indexer.list(), *self.endpoints.indexer.list()]:
            self.queue.add(key_of(obj))
        await run_workers(self.queue, self.sync, workers=self.workers, metrics=self.metrics)

    def _service_changed(self, obj: Service | Endpoints) -> None:
        self.queue.add(key_of(obj))

    async def sync(self, key: str) -> None:
        """Bring the Endpoints of one Service in line with its pods."""
        namespace, name = split_key(key)
        service = self.services.indexer.get(key)
        if service is None:
            await self._delete(namespace, name)
            return
        if is_external_name(service) or service_selector(service) is None:
            return
        pods = selected_pods(service, self.pods)
        subsets = repack_subsets(address_entries(service, pods))
        current = self.endpoints.indexer.get(key)
        labels = endpoints_labels(service)
        if current is not None and (current.get("subsets") or []) == subsets \
                and labels_of(current) == labels:
            return
        wanted: Endpoints = copy.deepcopy(current) if current is not None else {
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": name, "namespace": namespace or ""}}
        md = wanted["metadata"]
        md["labels"] = labels
        changed = last_change_time(service, pods)
        annotations = dict(md.get("annotations") or {})
        if changed is not None:
            annotations[TRIGGER_TIME_ANNOTATION] = format_time(changed)
        else:
            annotations.pop(TRIGGER_TIME_ANNOTATION, None)
        md["annotations"] = annotations
        wanted["subsets"] = subsets
        if current is None:
            await self.client.create(ENDPOINTS, namespace, wanted)
        else:
            await self.client.replace(ENDPOINTS, namespace, name, wanted)

    async def _delete(self, namespace: str | None, name: str) -> None:
        if self.endpoints.indexer.get_by(namespace, name) is None:
            return
        try:
            await self.client.delete(ENDPOINTS, namespace, name)
        except ApiError as e:
            if e.code != 404:
                raise
        log.info("%s: deleted endpoints %s/%s of a deleted service", self.name, namespace,
                 name)

