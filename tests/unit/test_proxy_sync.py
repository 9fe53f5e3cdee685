"""The Service proxy's plan and sync, with fake addresses, fake listeners and a real
in-process API server (for the informers and the LoadBalancer status writes)."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from prometheus_client import CollectorRegistry

from cni.proxy.loadbalancer import LoadBalancerAllocator
from cni.proxy.metrics import ProxyMetrics
from cni.proxy.model import Endpoint, Frontend, desired_state
from cni.proxy.proxier import ProxyConfig, ServiceProxy
from cni.proxy.target import Target
from minik.api.resources import ENDPOINTSLICES, SERVICES
from minik.machinery.clock import ManualClock
from minik.machinery.shared_informers import SharedInformers
from minik.machinery.supervisor import Supervisor
from tests.unit.apitest import Api, eventually, start_api


def service(name: str, *, ip: str = "10.96.0.10", kind: str = "ClusterIP",
            ports: list[dict] | None = None, **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": kind, "clusterIP": ip, "clusterIPs": [ip],
                     "ports": ports or [{"name": "http", "port": 80, "protocol": "TCP"}],
                     **spec}}


def endpoint_slice(service_name: str, *endpoints: tuple[str, dict], port: int = 8080,
                   port_name: str = "http") -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service_name}-x", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": conditions}
                          for ip, conditions in endpoints],
            "ports": [{"name": port_name, "port": port, "protocol": "TCP"}]}


READY = {"ready": True}


def test_the_plan_listens_on_clusterip_nodeport_and_loadbalancer_addresses() -> None:
    svc = service("web", kind="LoadBalancer",
                  ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    state = desired_state([svc], [endpoint_slice("web", ("10.244.0.5", READY))],
                          node_address="127.0.0.9", load_balancers={"default/web": "127.0.1.1"})
    assert sorted(state.frontends) == [Frontend("10.96.0.10", 80, "TCP"),
                                       Frontend("127.0.0.9", 30080, "TCP"),
                                       Frontend("127.0.1.1", 80, "TCP")]
    rule = state.frontends[Frontend("10.96.0.10", 80, "TCP")]
    assert rule.endpoints == (Endpoint("10.244.0.5", 8080),)
    assert state.cluster_ips == {"10.96.0.10"}


def test_only_ready_endpoints_at_the_port_of_the_same_name_are_targets() -> None:
    svc = service("web")
    slices = [endpoint_slice("web", ("10.244.0.5", READY), ("10.244.0.6", {"ready": False}),
                             ("10.244.0.7", {})),
              endpoint_slice("web", ("10.244.0.8", READY), port_name="metrics", port=9090),
              endpoint_slice("other", ("10.244.0.9", READY))]
    state = desired_state([svc], slices, node_address="127.0.0.1", load_balancers={})
    assert state.frontends[Frontend("10.96.0.10", 80, "TCP")].endpoints == (
        Endpoint("10.244.0.5", 8080), Endpoint("10.244.0.7", 8080))


def test_serving_terminating_endpoints_are_used_only_when_none_is_ready() -> None:
    terminating = {"ready": False, "serving": True, "terminating": True}
    plan = desired_state([service("web")], [endpoint_slice("web", ("10.244.0.5", terminating))],
                         node_address="127.0.0.1", load_balancers={})
    assert plan.frontends[Frontend("10.96.0.10", 80, "TCP")].endpoints == (
        Endpoint("10.244.0.5", 8080),)
    plan = desired_state([service("web")], [endpoint_slice(
        "web", ("10.244.0.5", terminating), ("10.244.0.6", READY))],
        node_address="127.0.0.1", load_balancers={})
    assert plan.frontends[Frontend("10.96.0.10", 80, "TCP")].endpoints == (
        Endpoint("10.244.0.6", 8080),)


def test_headless_and_external_name_services_get_no_frontend() -> None:
    headless = service("db", ip="None")
    external = service("ext", kind="ExternalName", externalName="example.com")
    state = desired_state([headless, external], [], node_address="127.0.0.1",
                          load_balancers={})
    assert state.frontends == {} and state.cluster_ips == set()


def test_load_balancer_addresses_are_kept_when_free_and_never_shared() -> None:
    def lb(name: str, created: str, ip: str | None = None) -> dict:
        svc = service(name, kind="LoadBalancer")
        svc["metadata"]["creationTimestamp"] = created
        if ip:
            svc["status"] = {"loadBalancer": {"ingress": [{"ip": ip}]}}
        return svc

    allocator = LoadBalancerAllocator("127.0.1.0/30")
    assigned, starved = allocator.assign([
        lb("new", "2025-01-02T00:00:00Z"), lb("kept", "2025-01-03T00:00:00Z", "127.0.1.2"),
        lb("clash", "2025-01-04T00:00:00Z", "127.0.1.2")])
    assert assigned == {"default/kept": "127.0.1.2", "default/new": "127.0.1.1"}
    assert starved == ["default/clash"]
    allocator.taken("127.0.1.1")
    assigned, _ = allocator.assign([lb("new", "2025-01-02T00:00:00Z")])
    assert assigned == {"default/new": "127.0.1.2"}


class FakeAddresses:
    def __init__(self, present: set[str]) -> None:
        self.present = set(present)
        self.calls: list[tuple[set[str], set[str]]] = []

    async def adopt(self) -> set[str]:
        return set(self.present)

    async def apply(self, *, add: set[str], remove: set[str]) -> None:
        self.calls.append((add, remove))
        self.present = (self.present | add) - remove


class FakeListener:
    busy: set[Frontend] = set()

    def __init__(self, frontend: Frontend, target: Target) -> None:
        self.frontend = frontend
        self.target = target
        self.state = "new"
        self.connections = 0

    async def start(self) -> None:
        if self.frontend in self.busy:
            raise OSError(errno.EADDRINUSE, "Address already in use")
        self.state = "listening"

    def close(self) -> None:
        self.state = "closed"

    def abort(self) -> None:
        self.state = "aborted"

    def open_connections(self) -> int:
        return self.connections


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    api = await start_api()
    try:
        yield api
    finally:
        await api.close()


async def running_proxy(api: Api, addresses: FakeAddresses, clock: ManualClock,
                        lb_range: str = "127.0.1.0/30") -> ServiceProxy:
    informers = SharedInformers(api.client)
    proxy = ServiceProxy(api.client, informers,
                         ProxyConfig("unit", node_address="127.0.0.9",
                                     loadbalancer_range=lb_range, min_sync_interval=1.0),
                         addresses=addresses, metrics=ProxyMetrics(CollectorRegistry()),
                         clock=clock, listener_factory=FakeListener)
    supervisor = Supervisor()
    informers.start(supervisor)
    supervisor.start("proxy", proxy.run)
    api.start(_stop_at_end(supervisor), "stop-proxy")
    return proxy


async def _stop_at_end(supervisor: Supervisor) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        await supervisor.stop()


async def syncing(clock: ManualClock, until: Callable[[], Awaitable[bool]],
                  timeout: float = 5.0) -> None:
    """Move the proxy's clock on, a minimum sync interval at a time, until `until()` holds."""
    async with asyncio.timeout(timeout):
        while not await until():
            clock.advance(1.0)
            await asyncio.sleep(0.01)


async def test_a_restarted_proxy_adopts_its_addresses_and_removes_the_stale_ones(
        api: Api) -> None:
    await api.client.create(SERVICES, "default", service("web"))
    await api.client.create(ENDPOINTSLICES, "default",
                            endpoint_slice("web", ("10.244.0.5", READY)))
    addresses = FakeAddresses({"10.96.0.10", "10.96.0.99"})
    proxy = await running_proxy(api, addresses, ManualClock())
    await eventually(lambda: proxy.syncs == 1)
    assert addresses.present == {"10.96.0.10"}
    assert addresses.calls == [(set(), set()), (set(), {"10.96.0.99"})]
    assert proxy.listeners[Frontend("10.96.0.10", 80, "TCP")].state == "listening"  # type: ignore[attr-defined]


async def test_changes_within_the_minimum_interval_are_applied_in_one_batch(api: Api) -> None:
    clock = ManualClock()
    addresses = FakeAddresses(set())
    proxy = await running_proxy(api, addresses, clock)
    await eventually(lambda: proxy.syncs == 1)
    for n in range(5):
        await api.client.create(SERVICES, "default", service(f"s{n}", ip=f"10.96.0.{20 + n}"))
        await api.client.create(ENDPOINTSLICES, "default",
                                endpoint_slice(f"s{n}", (f"10.244.0.{n + 1}", READY)))
    await eventually(lambda: len(proxy.services.indexer) == 5 and len(proxy.slices.indexer) == 5)
    assert proxy.syncs == 1, "no sync before the minimum interval has passed"
    clock.advance(1.0)
    await eventually(lambda: proxy.syncs == 2)
    assert addresses.present == {f"10.96.0.{20 + n}" for n in range(5)}
    assert len(proxy.listeners) == 5


async def test_endpoint_changes_reach_the_balancer_and_a_deleted_service_stops_listening(
        api: Api) -> None:
    clock = ManualClock()
    addresses = FakeAddresses(set())
    proxy = await running_proxy(api, addresses, clock)
    await api.client.create(SERVICES, "default", service("web"))
    await api.client.create(ENDPOINTSLICES, "default",
                            endpoint_slice("web", ("10.244.0.5", READY)))
    frontend = Frontend("10.96.0.10", 80, "TCP")

    def endpoints() -> tuple[Endpoint, ...]:
        listener = proxy.listeners.get(frontend)
        return listener.target.balancer.endpoints if listener else ()

    async def followed() -> bool:
        return endpoints() == (Endpoint("10.244.0.5", 8080),)

    async def stopped() -> bool:
        return frontend not in proxy.listeners

    await syncing(clock, followed)
    listener = proxy.listeners[frontend]
    await api.client.delete(SERVICES, "default", "web")
    await syncing(clock, stopped)
    assert listener.state == "closed"  # type: ignore[attr-defined]
    assert "10.96.0.10" not in addresses.present


async def test_load_balancer_status_is_written_and_a_taken_address_is_given_up(
        api: Api) -> None:
    FakeListener.busy = {Frontend("127.0.1.1", 80, "TCP")}
    try:
        clock = ManualClock()
        proxy = await running_proxy(api, FakeAddresses(set()), clock)
        await api.client.create(SERVICES, "default", service(
            "front", kind="LoadBalancer", ports=[{"name": "http", "port": 80,
                                                  "nodePort": 30080}]))
        await api.client.create(ENDPOINTSLICES, "default",
                                endpoint_slice("front", ("10.244.0.5", READY)))

        async def ingress() -> str | None:
            svc = await api.client.get(SERVICES, "default", "front")
            entries = (svc.get("status") or {}).get("loadBalancer", {}).get("ingress") or []
            return entries[0]["ip"] if entries else None

        async def moved() -> bool:
            return Frontend("127.0.1.2", 80, "TCP") in proxy.listeners and (
                await ingress() == "127.0.1.2")

        await syncing(clock, moved)
        assert Frontend("127.0.1.1", 80, "TCP") not in proxy.listeners
        assert Frontend("127.0.0.9", 30080, "TCP") in proxy.listeners
    finally:
        FakeListener.busy = set()


async def test_a_service_without_endpoints_has_its_address_but_no_listener(api: Api) -> None:
    clock = ManualClock()
    addresses = FakeAddresses(set())
    proxy = await running_proxy(api, addresses, clock)
    await api.client.create(SERVICES, "default", service("web"))
    frontend = Frontend("10.96.0.10", 80, "TCP")

    async def owned() -> bool:
        return "10.96.0.10" in addresses.present

    await syncing(clock, owned)
    assert frontend not in proxy.listeners, "refused, as kube-proxy's REJECT does"
    await api.client.create(ENDPOINTSLICES, "default",
                            endpoint_slice("web", ("10.244.0.5", READY)))

    async def listening() -> bool:
        return frontend in proxy.listeners

    await syncing(clock, listening)


async def test_a_deleted_service_keeps_its_address_while_its_connections_drain(
        api: Api) -> None:
    clock = ManualClock()
    addresses = FakeAddresses(set())
    proxy = await running_proxy(api, addresses, clock)
    await api.client.create(SERVICES, "default", service("web"))
    await api.client.create(ENDPOINTSLICES, "default",
                            endpoint_slice("web", ("10.244.0.5", READY)))
    frontend = Frontend("10.96.0.10", 80, "TCP")

    async def listening() -> bool:
        return frontend in proxy.listeners

    await syncing(clock, listening)
    listener = proxy.listeners[frontend]
    listener.connections = 1  # type: ignore[attr-defined]
    await api.client.delete(SERVICES, "default", "web")

    async def closed() -> bool:
        return listener.state == "closed"  # type: ignore[attr-defined]

    await syncing(clock, closed)
    syncs = proxy.syncs
    await syncing(clock, lambda: _true_after(proxy, syncs + 2))
    assert "10.96.0.10" in addresses.present, "the address stays while a connection is open"
    listener.connections = 0  # type: ignore[attr-defined]

    async def released() -> bool:
        return "10.96.0.10" not in addresses.present

    await syncing(clock, released)
    assert proxy.draining == set()


async def _true_after(proxy: ServiceProxy, syncs: int) -> bool:
    return proxy.syncs >= syncs
