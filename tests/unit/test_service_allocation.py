"""Services get ClusterIPs and NodePorts as on Kubernetes: once each, freed on delete or
type change, requested ones honoured or refused with a 422 naming the field, rebuilt
from the stored Services at start, never leaked by a failed write."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from minik.api.errors import ApiError
from minik.api.resources import REGISTRY
from minik.apiserver.allocators import AllocationError, ClusterIPAllocator, NodePortAllocator
from minik.apiserver.kubernetes_service import KubernetesService
from minik.apiserver.lifecycle import DeleteOptions
from minik.apiserver.server import bootstrap_namespaces
from minik.apiserver.service_alloc import ServiceAllocator
from minik.apiserver.storage import ObjectStorage, WriteOptions
from minik.store import MemoryStore, Store

SERVICES = REGISTRY.get("services")
CIDR = "10.96.0.0/29"  # hosts .1-.6: .1 is the kubernetes Service's, .2-.6 for others


async def storage_on(store: Store, ports: tuple[int, int] = (30000, 30002)) -> ObjectStorage:
    storage = ObjectStorage(store, allocators={"Service": ServiceAllocator(CIDR, ports)})
    await bootstrap_namespaces(storage)
    return storage


@pytest.fixture
async def storage() -> ObjectStorage:
    return await storage_on(MemoryStore())


def service(name: str, kind: str = "ClusterIP", **spec: Any) -> dict[str, Any]:
    ports = spec.pop("ports", [{"port": 80}])
    return {"metadata": {"name": name}, "spec": {"type": kind, "ports": ports, **spec}}


async def create(storage: ObjectStorage, body: dict[str, Any]) -> dict[str, Any]:
    return (await storage.create(SERVICES, "default", body, WriteOptions())).obj


async def change(storage: ObjectStorage, name: str, **spec: Any) -> dict[str, Any]:
    def edit(obj: dict[str, Any]) -> dict[str, Any]:
        obj["spec"].update(spec)
        return obj
    return (await storage.mutate(SERVICES, "default", name, edit, WriteOptions())).obj


async def refused(write: Any) -> list[dict[str, str]]:
    with pytest.raises(ApiError) as caught:
        await write
    assert caught.value.code == 422
    return caught.value.details["causes"]


def test_the_ip_allocator_hands_out_each_address_once_and_keeps_the_first_back():
    ips = ClusterIPAllocator(CIDR)
    assert [ips.allocate_next() for _ in range(5)] == [f"10.96.0.{n}" for n in range(2, 7)]
    with pytest.raises(AllocationError, match="range is full"):
        ips.allocate_next()
    ips.release("10.96.0.4")
    assert ips.allocate_next() == "10.96.0.4"
    ips.allocate("10.96.0.1")
    with pytest.raises(AllocationError, match="already allocated"):
        ips.allocate("10.96.0.1")


def test_the_ip_allocator_refuses_addresses_outside_its_range():
    ips = ClusterIPAllocator(CIDR)
    for outside in ("10.96.0.0", "10.96.0.7", "10.97.0.2"):
        with pytest.raises(AllocationError, match="not in the valid range"):
            ips.allocate(outside)


def test_the_port_allocator_moves_on_before_reusing_a_freed_port():
    ports = NodePortAllocator(30000, 30002)
    first = ports.allocate_next()
    ports.release(first)
    assert ports.allocate_next() == 30001
    with pytest.raises(AllocationError, match="valid ports is 30000-30002"):
        ports.allocate(30003)


async def test_a_service_gets_a_cluster_ip_mirrored_in_cluster_ips(storage: ObjectStorage):
    spec = (await create(storage, service("a")))["spec"]
    assert spec["clusterIP"] == "10.96.0.2" and spec["clusterIPs"] == ["10.96.0.2"]
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert "nodePort" not in spec["ports"][0]


async def test_a_headless_service_and_an_external_name_take_no_address(storage: ObjectStorage):
    headless = (await create(storage, service("h", clusterIP="None")))["spec"]
    assert headless["clusterIP"] == "None" and headless["clusterIPs"] == ["None"]
    external = (await create(storage, {"metadata": {"name": "e"}, "spec": {
        "type": "ExternalName", "externalName": "example.com"}}))["spec"]
    assert "clusterIP" not in external and "ipFamilies" not in external
    assert (await create(storage, service("a")))["spec"]["clusterIP"] == "10.96.0.2"


async def test_a_requested_cluster_ip_is_honoured_and_a_taken_one_refused(
        storage: ObjectStorage):
    assert (await create(storage, service("a", clusterIP="10.96.0.5")))["spec"]["clusterIP"] \
        == "10.96.0.5"
    [cause] = await refused(create(storage, service("b", clusterIP="10.96.0.5")))
    assert cause["field"] == "spec.clusterIPs"
    assert cause["message"] == ('Invalid value: []string{"10.96.0.5"}: failed to allocate IP '
                                "10.96.0.5: provided IP is already allocated")
    [cause] = await refused(create(storage, service("c", clusterIP="10.0.0.1")))
    assert "is not in the valid range. The range of valid IPs is 10.96.0.0/29" in \
        cause["message"]


async def test_families_a_single_stack_ipv4_cluster_lacks_are_refused(storage: ObjectStorage):
    causes = await refused(create(storage, service("v6", ipFamilies=["IPv6"])))
    assert [c["field"] for c in causes] == ["spec.ipFamilies[0]"]
    causes = await refused(create(storage, service("dual", ipFamilyPolicy="RequireDualStack")))
    assert [c["field"] for c in causes] == ["spec.ipFamilyPolicy"]
    prefer = await create(storage, service("prefer", ipFamilyPolicy="PreferDualStack"))
    assert prefer["spec"]["ipFamilies"] == ["IPv4"]
    assert len(prefer["spec"]["clusterIPs"]) == 1
    await create(storage, service("external", clusterIP="None", ports=[],
                                  ipFamilyPolicy="RequireDualStack"))


async def test_node_ports_are_allocated_and_a_taken_one_is_refused(storage: ObjectStorage):
    ports = [{"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 30002}]
    spec = (await create(storage, service("np", "NodePort", ports=ports)))["spec"]
    assert [p["nodePort"] for p in spec["ports"]] == [30000, 30002]
    assert spec["externalTrafficPolicy"] == "Cluster"
    [cause] = await refused(create(storage, service("x", "NodePort",
                                                    ports=[{"port": 1, "nodePort": 30002}])))
    assert cause == {"field": "spec.ports[0].nodePort", "reason": "FieldValueInvalid",
                     "message": "Invalid value: 30002: provided port is already allocated"}
    [cause] = await refused(create(storage, service("y", "NodePort",
                                                    ports=[{"port": 1, "nodePort": 31000}])))
    assert cause["message"].endswith("The range of valid ports is 30000-30002")


async def test_a_refused_write_takes_nothing(storage: ObjectStorage):
    ports = [{"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 31000}]
    await refused(create(storage, service("x", "NodePort", ports=ports)))
    spec = (await create(storage, service("ok", "NodePort", clusterIP="10.96.0.2",
                                          ports=[{"port": 80, "nodePort": 30000}])))["spec"]
    assert spec["clusterIP"] == "10.96.0.2" and spec["ports"][0]["nodePort"] == 30000


async def test_a_delete_frees_the_address_and_ports(storage: ObjectStorage):
    for name in ("a", "b", "c"):
        await create(storage, service(name, "NodePort"))
    await refused(create(storage, service("d", "NodePort")))
    await storage.delete(SERVICES, "default", "b", DeleteOptions())
    spec = (await create(storage, service("d", "NodePort", clusterIP="10.96.0.3")))["spec"]
    assert spec["clusterIP"] == "10.96.0.3" and spec["ports"][0]["nodePort"] == 30001


async def test_type_changes_allocate_and_release_as_kubernetes_does(storage: ObjectStorage):
    ip = (await create(storage, service("s")))["spec"]["clusterIP"]
    node_port = (await change(storage, "s", type="NodePort"))["spec"]["ports"][0]["nodePort"]
    lb = (await change(storage, "s", type="LoadBalancer"))["spec"]
    assert lb["clusterIP"] == ip and lb["ports"][0]["nodePort"] == node_port
    assert lb["allocateLoadBalancerNodePorts"] is True
    back = (await change(storage, "s", type="ClusterIP"))["spec"]
    assert back["clusterIP"] == ip and "nodePort" not in back["ports"][0]
    assert "externalTrafficPolicy" not in back and "allocateLoadBalancerNodePorts" not in back
    external = (await change(storage, "s", type="ExternalName",
                             externalName="example.com"))["spec"]
    assert "clusterIP" not in external and "clusterIPs" not in external
    assert (await create(storage, service("t", "NodePort")))["spec"]["ports"][0]["nodePort"] \
        == 30001
    again = (await change(storage, "s", type="ClusterIP"))["spec"]
    assert again["clusterIP"] not in ("", ip)


async def test_the_cluster_ip_is_immutable_and_kept_when_left_out(storage: ObjectStorage):
    ip = (await create(storage, service("s")))["spec"]["clusterIP"]
    [cause] = await refused(change(storage, "s", clusterIP="10.96.0.6", clusterIPs=None))
    assert cause == {"field": "spec.clusterIP", "reason": "FieldValueInvalid",
                     "message": 'Invalid value: "10.96.0.6": field is immutable'}
    kept = await storage.update(SERVICES, "default", "s", service("s"), WriteOptions())
    assert kept.obj["spec"]["clusterIP"] == ip


async def test_allocations_are_rebuilt_from_the_stored_services(storage: ObjectStorage):
    await create(storage, service("a", "NodePort"))
    restarted = await storage_on(storage.store)
    spec = (await create(restarted, service("b", "NodePort")))["spec"]
    assert spec["clusterIP"] == "10.96.0.3" and spec["ports"][0]["nodePort"] == 30001
    [cause] = await refused(create(restarted, service("c", clusterIP="10.96.0.2")))
    assert cause["field"] == "spec.clusterIPs"


class FailingStore(MemoryStore):
    fail = False

    async def create(self, key: str, value: dict[str, Any]) -> Any:
        if self.fail and key.startswith("/registry/services/"):
            raise OSError("disk full")
        return await super().create(key, value)

    async def update(self, key: str, value: dict[str, Any], **kw: Any) -> Any:
        if self.fail and key.startswith("/registry/services/"):
            raise OSError("disk full")
        return await super().update(key, value, **kw)


async def test_a_failed_store_write_neither_leaks_nor_frees_a_value():
    store = FailingStore()
    storage = await storage_on(store)
    await create(storage, service("a", "NodePort"))
    store.fail = True
    with pytest.raises(OSError):
        await create(storage, service("b", "NodePort"))
    with pytest.raises(OSError):
        await change(storage, "a", type="ClusterIP")
    store.fail = False
    [cause] = await refused(create(storage, service("b", "NodePort",
                                                    ports=[{"port": 80, "nodePort": 30000}])))
    assert cause["field"] == "spec.ports[0].nodePort"
    spec = (await create(storage, service("b", "NodePort", clusterIP="10.96.0.3",
                                          ports=[{"port": 80, "nodePort": 30001}])))["spec"]
    assert spec["clusterIP"] == "10.96.0.3" and spec["ports"][0]["nodePort"] == 30001


async def test_a_dry_run_fills_in_values_but_keeps_none(storage: ObjectStorage):
    dry = await storage.create(SERVICES, "default", service("a"), WriteOptions(dry_run=True))
    assert dry.obj["spec"]["clusterIP"] == "10.96.0.2"
    assert (await create(storage, service("a")))["spec"]["clusterIP"] == "10.96.0.3"


async def test_the_kubernetes_service_is_kept_at_the_first_address(storage: ObjectStorage):
    kubernetes = KubernetesService(storage, cluster_ip="10.96.0.1", port=6443)
    await kubernetes.reconcile()
    svc = await storage.get(SERVICES, "default", "kubernetes")
    assert svc["spec"]["clusterIP"] == "10.96.0.1"
    assert svc["spec"]["ports"] == [{"name": "https", "protocol": "TCP", "port": 443,
                                     "targetPort": 6443}]
    assert svc["metadata"]["labels"] == {"component": "apiserver", "provider": "kubernetes"}
    kubernetes.set_node_address("172.18.0.1")
    await kubernetes.reconcile()
    endpoints = await storage.get(REGISTRY.get("endpoints"), "default", "kubernetes")
    assert endpoints["subsets"] == [{"addresses": [{"ip": "172.18.0.1"}], "ports": [
        {"name": "https", "port": 6443, "protocol": "TCP"}]}]
    slices = REGISTRY.get("endpointslices.discovery.k8s.io")
    endpoint_slice = await storage.get(slices, "default", "kubernetes")
    assert endpoint_slice["endpoints"] == [{"addresses": ["172.18.0.1"],
                                            "conditions": {"ready": True}}]
    await storage.delete(SERVICES, "default", "kubernetes", DeleteOptions())
    broken = copy.deepcopy(endpoints)
    broken["subsets"][0]["addresses"] = [{"ip": "10.0.0.9"}]
    await storage.update(REGISTRY.get("endpoints"), "default", "kubernetes", broken,
                         WriteOptions())
    await kubernetes.reconcile()
    assert (await storage.get(SERVICES, "default", "kubernetes"))["spec"]["clusterIP"] == \
        "10.96.0.1"
    assert (await storage.get(REGISTRY.get("endpoints"), "default", "kubernetes"))[
        "subsets"] == endpoints["subsets"]
