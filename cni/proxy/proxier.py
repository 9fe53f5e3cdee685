"""`ServiceProxy`: the node's userspace Service proxy, driven by informers, synced in batches.

Handlers on the Service and EndpointSlice informers only mark the proxy
dirty. One loop syncs: it reads both caches, computes the plan
(`model.desired_state`) and applies the difference, in this order:

1. the ClusterIPs newly wanted are added to `lo` (`addresses`), so that
   their listeners can bind;
2. each service port's `Balancer` gets its new endpoints (or is made),
   and every listener that stays is pointed at its rule's balancer and
   stats; new frontends start listening, gone ones stop (their
   connections drain). A frontend with no endpoint has no listener, so
   a client is refused at once (ECONNREFUSED, or ICMP port unreachable
   for UDP), as kube-proxy's REJECT rule does;
3. ClusterIPs no longer wanted leave `lo` — except while a closed
   listener on one still has connections draining (a deleted Service's
   established connections keep working, as conntrack keeps them on
   Kubernetes): the sync looks again every `DRAIN_CHECK` seconds;
4. LoadBalancer Services whose `status.loadBalancer` is not the address
   they were given get it written through the status subresource (and
   Services that stopped being LoadBalancers have theirs cleared).

After a sync the loop waits `min_sync_interval` before the next, so a
burst of changes (a rollout, a relist) is applied in one batch, as
kube-proxy's `minSyncPeriod` does; the first change after a quiet spell
is applied at once. A step that fails (an address netlink refused, a port
another program holds, a status write the API did not take) is logged,
counted and retried by a later sync after a growing delay; the rest of the
sync goes on. The sync is level-triggered: it never trusts what it did
last time over what the caches say now.

At start the proxy adopts the addresses its instance's label marks on
`lo` (a restarted proxy takes over its predecessor's) and removes the ones
no Service wants at its first sync; `shutdown` stops every listener and
removes every address.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable
from dataclasses import dataclass

from cni.proxy.addresses import AddressError, NodeAddresses
from cni.proxy.balancer import Balancer
from cni.proxy.loadbalancer import LoadBalancerAllocator, status_patch
from cni.proxy.metrics import ProxyMetrics
from cni.proxy.model import (
    Frontend,
    ServicePortName,
    ServicePortRule,
    desired_state,
    load_balancer_ip,
    service_key,
    service_type,
)
from cni.proxy.target import CONNECT_TIMEOUT, UDP_IDLE_TIMEOUT, Listener, Target
from cni.proxy.tcp import TcpListener
from cni.proxy.udp import UdpListener
from minik.api.errors import ApiError
from minik.api.meta import name_of, namespace_of
from minik.api.objects import Service
from minik.api.resources import ENDPOINTSLICES, SERVICES
from minik.client.aio import ApiUnavailable, AsyncClient
from minik.machinery.backoff import Backoff
from minik.machinery.clock import Clock, LoopClock, sleep
from minik.machinery.shared_informers import SharedInformers

log = logging.getLogger(__name__)

RETRY_BASE = 0.5
DRAIN_CHECK = 1.0
RETRY_CAP = 30.0


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    instance: str
    node_address: str = "127.0.0.1"
    loadbalancer_range: str = "127.0.1.0/24"
    min_sync_interval: float = 0.02
    connect_timeout: float = CONNECT_TIMEOUT
    udp_idle_timeout: float = UDP_IDLE_TIMEOUT


ListenerFactory = Callable[[Frontend, Target], Listener]


class ServiceProxy:
    def __init__(self, client: AsyncClient, informers: SharedInformers, config: ProxyConfig, *,
                 addresses: NodeAddresses, metrics: ProxyMetrics, clock: Clock | None = None,
                 listener_factory: ListenerFactory | None = None) -> None:
        self.client = client
        self.informers = informers
        self.config = config
        self.addresses = addresses
        self.metrics = metrics
        self.clock: Clock = clock or LoopClock()
        self.listener_factory = listener_factory or self._listener
        self.load_balancers = LoadBalancerAllocator(config.loadbalancer_range)
        self.services = informers.get(SERVICES)
        self.slices = informers.get(ENDPOINTSLICES)
        for informer in (self.services, self.slices):
            informer.add_handler(on_add=self._on_event, on_update=self._on_update,
                                 on_delete=self._on_event)
        self.listeners: dict[Frontend, Listener] = {}
        self.draining: set[Listener] = set()
        """Closed listeners whose connections are still open: their address stays on `lo`."""
        self.balancers: dict[ServicePortName, Balancer] = {}
        self.owned: set[str] = set()
        self.syncs = 0
        self._dirty = asyncio.Event()
        self._retry = Backoff(base=RETRY_BASE, cap=RETRY_CAP, clock=self.clock)

    def _on_event(self, _: object) -> None:
        self._dirty.set()

    def _on_update(self, old: object, new: object) -> None:
        if old is not new:
            self._dirty.set()

    def _listener(self, frontend: Frontend, target: Target) -> Listener:
        if frontend.protocol == "UDP":
            return UdpListener(frontend, target, idle_timeout=self.config.udp_idle_timeout,
                               clock=self.clock)
        return TcpListener(frontend, target, connect_timeout=self.config.connect_timeout)

    async def run(self) -> None:
        """Adopt this instance's addresses, then sync whenever something changed."""
        await self.informers.wait_synced(SERVICES, ENDPOINTSLICES)
        self.owned |= await self.addresses.adopt()
        self._dirty.set()
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self.sync()
            await sleep(self.clock, self.config.min_sync_interval)

    async def sync(self) -> None:
        started = self.clock.now()
        services = self.services.indexer.list()
        assigned, starved = self.load_balancers.assign(services)
        for key in starved:
            log.warning("no LoadBalancer address left in %s for Service %s",
                        self.config.loadbalancer_range, key)
        state = desired_state(services, self.slices.indexer.list(),
                              node_address=self.config.node_address, load_balancers=assigned)
        ok = await self._apply_addresses(add=state.cluster_ips - self.owned, remove=set())
        ok = await self._apply_listeners(
            {f: rule for f, rule in state.frontends.items() if rule.endpoints}) and ok
        self.draining = {listener for listener in self.draining if listener.open_connections()}
        keep = state.cluster_ips | {listener.frontend.address for listener in self.draining}
        ok = await self._apply_addresses(add=set(), remove=self.owned - keep) and ok
        if self.draining:
            self.clock.call_later(DRAIN_CHECK, self._dirty.set)
        ok = await self._write_statuses(services, assigned) and ok
        self.metrics.retain({rule.name for rule in state.frontends.values()})
        self.metrics.sync_duration.observe(self.clock.now() - started)
        self.syncs += 1
        if ok:
            self._retry.reset()
        else:
            delay = self._retry.next()
            log.info("service proxy: retrying the failed steps in %.1fs", delay)
            self.clock.call_later(delay, self._dirty.set)

    async def _apply_addresses(self, *, add: set[str], remove: set[str]) -> bool:
        try:
            await self.addresses.apply(add=add, remove=remove)
        except AddressError as e:
            log.error("service proxy: %s", e)
            return False
        self.owned = (self.owned | add) - remove
        return True

    async def _apply_listeners(self, frontends: dict[Frontend, ServicePortRule]) -> bool:
        targets = self._targets(frontends)
        for frontend in [f for f in self.listeners if f not in frontends]:
            closed = self.listeners.pop(frontend)
            closed.close()
            if closed.open_connections():
                self.draining.add(closed)
            log.info("service proxy: stopped listening on %s", frontend)
        ok = True
        for frontend, rule in sorted(frontends.items()):
            target = targets[rule.name]
            listener = self.listeners.get(frontend)
            if listener is not None:
                listener.target = target
                continue
            listener = self.listener_factory(frontend, target)
            try:
                await listener.start()
            except OSError as e:
                ok = False
                target.stats.errors["listen"] += 1
                log.error("service proxy: cannot listen on %s for %s: %s", frontend, rule.name, e)
                if e.errno == errno.EADDRINUSE and self.load_balancers.contains(frontend.address):
                    self.load_balancers.taken(frontend.address)
                continue
            self.listeners[frontend] = listener
            log.info("service proxy: listening on %s for %s (%d endpoints)", frontend,
                     rule.name, len(rule.endpoints))
        return ok

    def _targets(self, frontends: dict[Frontend, ServicePortRule]) -> dict[ServicePortName, Target]:
        """Each service port's balancer (updated, or new) and stats; the others forgotten."""
        rules = {rule.name: rule for rule in frontends.values()}
        for name in [n for n in self.balancers if n not in rules]:
            del self.balancers[name]
        targets: dict[ServicePortName, Target] = {}
        for name, rule in rules.items():
            balancer = self.balancers.get(name)
            if balancer is None:
                balancer = self.balancers[name] = Balancer(
                    rule.endpoints, affinity_timeout=rule.affinity_timeout, now=self.clock.now)
            else:
                balancer.update(rule.endpoints, affinity_timeout=rule.affinity_timeout)
            targets[name] = Target(balancer, self.metrics.port(name))
        return targets

    async def _write_statuses(self, services: list[Service], assigned: dict[str, str]) -> bool:
        ok = True
        for service in services:
            current = load_balancer_ip(service)
            wanted = assigned.get(service_key(service))
            if service_type(service) != "LoadBalancer":
                if not self.load_balancers.contains(current):
                    continue
                wanted = None
            if wanted == current or (wanted is None and service_type(service) == "LoadBalancer"):
                continue
            try:
                await self.client.patch(SERVICES, namespace_of(service), name_of(service),
                                        status_patch(wanted), subresource="status")
            except ApiError as e:
                if e.code != 404:
                    ok = False
                    log.warning("service proxy: writing the load balancer status of %s: %s",
                                service_key(service), e)
            except ApiUnavailable as e:
                ok = False
                log.warning("service proxy: writing the load balancer status of %s: %s",
                            service_key(service), e)
        return ok

    async def shutdown(self) -> None:
        """Cut every connection, stop every listener, remove every address of this instance."""
        for listener in [*self.listeners.values(), *self.draining]:
            listener.abort()
        self.listeners.clear()
        self.draining.clear()
        await asyncio.sleep(0)
        try:
            await self.addresses.apply(add=set(), remove=self.owned | await self.addresses.adopt())
        except AddressError as e:
            log.error("service proxy: removing the node's ClusterIPs: %s", e)
        self.owned.clear()
