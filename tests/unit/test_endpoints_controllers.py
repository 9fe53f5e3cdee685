"""The Endpoints, EndpointSlice and mirroring controllers.

The pure parts (which pods are endpoints and with which ports, the repacking
of subsets, the slice plan, the tracker) are tested alone; the controllers run
together with the garbage collector against a real in-process API server, pod
status simulated by patching the `status` subresource.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from minik.api.errors import ApiError
from minik.api.meta import format_time
from minik.api.resources import ENDPOINTS, ENDPOINTSLICES, PODS, SERVICES
from minik.api.validation import validate
from minik.client.aio import AsyncClient
from minik.controllers.endpoints.endpoints import (
    EndpointsController,
    address_entries,
    repack_subsets,
)
from minik.controllers.endpoints.endpointslice import (
    EndpointSliceController,
    desired_groups,
    pod_endpoint,
)
from minik.controllers.endpoints.mirroring import EndpointSliceMirroringController
from minik.controllers.endpoints.pods import find_port, should_be_endpoint
from minik.controllers.endpoints.slices import SliceMeta, group_endpoints, plan_slices
from minik.controllers.endpoints.tracker import SliceTracker
from minik.controllers.garbagecollector import GarbageCollector
from minik.machinery.clock import ManualClock
from tests.unit.apitest import Api, poll, running_controllers

T0 = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def a_pod(name: str, ip: str = "", *, ready: bool = True, labels: dict | None = None,
          ports: list[dict] | None = None, **spec: object) -> dict:
    container = {"name": "c", "image": "minik/web:v1", "ports": ports or []}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}",
                         "labels": labels if labels is not None else {"app": "web"}},
            "spec": {"containers": [container], "nodeName": "node-1", **spec},
            "status": {"phase": "Running", "podIP": ip, "conditions": [
                {"type": "Ready", "status": "True" if ready else "False",
                 "lastTransitionTime": format_time(T0)}]}}


def a_service(name: str = "web", *, selector: dict | None = None, ports: list | None = None,
              **spec: object) -> dict:
    body: dict = {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]
                  if ports is None else ports, **spec}
    if selector is not None:
        body["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}",
                         "labels": {"tier": "front"}},
            "spec": body}


NAMED = [{"name": "web", "containerPort": 8080}]


# --------------------------------------------------------------- pure parts


def test_a_named_target_port_is_resolved_in_each_pod_with_the_same_protocol():
    port = {"name": "http", "port": 80, "targetPort": "web"}
    assert find_port(a_pod("a", ports=[{"name": "web", "containerPort": 8080}]), port) == 8080
    assert find_port(a_pod("b", ports=[{"name": "web", "containerPort": 9090}]), port) == 9090
    assert find_port(a_pod("c", ports=[{"name": "web", "containerPort": 53,
                                        "protocol": "UDP"}]), port) is None
    assert find_port(a_pod("d"), {"port": 80, "targetPort": 8080}) == 8080
    assert find_port(a_pod("d"), {"port": 80}) == 80


def test_a_named_target_port_is_found_in_sidecars_but_not_in_plain_init_containers():
    port = {"name": "http", "port": 80, "targetPort": "web"}
    init = {"name": "i", "image": "minik/web:v1", "ports": [{"name": "web", "containerPort": 81}]}
    assert find_port(a_pod("a", initContainers=[init]), port) is None
    sidecar = {**init, "restartPolicy": "Always"}
    assert find_port(a_pod("b", initContainers=[sidecar]), port) == 81


def test_pods_without_an_ip_finished_or_terminating_are_left_out_as_kubernetes_does():
    assert not should_be_endpoint(a_pod("a"), include_terminating=True)
    done = a_pod("b", "10.0.0.2", restartPolicy="Never")
    done["status"]["phase"] = "Succeeded"
    assert not should_be_endpoint(done, include_terminating=True)
    terminating = a_pod("c", "10.0.0.3")
    terminating["metadata"]["deletionTimestamp"] = format_time(T0)
    assert should_be_endpoint(terminating, include_terminating=True)
    assert not should_be_endpoint(terminating, include_terminating=False)


def test_a_terminating_pod_is_terminating_and_serving_from_its_readiness_but_not_ready():
    service = a_service(selector={"app": "web"})
    pod = a_pod("a", "10.0.0.1")
    pod["metadata"]["deletionTimestamp"] = format_time(T0)
    assert pod_endpoint(pod, service)["conditions"] == {
        "ready": False, "serving": True, "terminating": True}
    service["spec"]["publishNotReadyAddresses"] = True
    assert pod_endpoint(pod, service)["conditions"]["ready"] is True


def test_subsets_are_repacked_by_shared_addresses_with_ready_and_not_ready_apart():
    service = a_service(selector={"app": "web"}, ports=[
        {"name": "http", "port": 80, "targetPort": "web"},
        {"name": "metrics", "port": 9100, "targetPort": 9100}])
    pods = [a_pod("a", "10.0.0.2", ports=NAMED), a_pod("b", "10.0.0.1", ports=NAMED),
            a_pod("c", "10.0.0.3", ready=False,
                  ports=[{"name": "web", "containerPort": 9090}])]
    subsets = repack_subsets(address_entries(service, pods))
    ips = [([a["ip"] for a in s.get("addresses", [])],
            [a["ip"] for a in s.get("notReadyAddresses", [])],
            [(p["name"], p["port"]) for p in s["ports"]]) for s in subsets]
    assert ips == [
        (["10.0.0.1", "10.0.0.2"], [], [("http", 8080)]),
        ([], ["10.0.0.3"], [("http", 9090)]),
        (["10.0.0.1", "10.0.0.2"], ["10.0.0.3"], [("metrics", 9100)]),
    ]
    assert subsets[0]["addresses"][0] == {
        "ip": "10.0.0.1", "nodeName": "node-1",
        "targetRef": {"kind": "Pod", "namespace": "default", "name": "b", "uid": "uid-b"}}


def slice_meta() -> SliceMeta:
    return SliceMeta(namespace="default", generate_name="web-", labels={"l": "v"},
                     annotations={}, owner={"apiVersion": "v1", "kind": "Service",
                                            "name": "web", "uid": "u", "controller": True})


def endpoints_of(n: int, start: int = 1) -> list[tuple[str, list, dict]]:
    ports = [{"name": "", "port": 80, "protocol": "TCP"}]
    return [("IPv4", ports, {"addresses": [f"10.0.0.{i}"], "conditions": {"ready": True}})
            for i in range(start, start + n)]


def test_the_plan_fills_slices_up_to_their_size_and_keeps_endpoints_where_they_are():
    meta = slice_meta()
    plan = plan_slices(group_endpoints(endpoints_of(5)), [], meta, max_endpoints=2)
    assert [len(s["endpoints"]) for s in plan.create] == [2, 2, 1]
    assert not plan.update and not plan.delete
    existing = [{**s, "metadata": {**s["metadata"], "name": f"web-{i}"}}
                for i, s in enumerate(plan.create)]
    again = plan_slices(group_endpoints(endpoints_of(5)), existing, meta, max_endpoints=2)
    assert not again
    fewer = plan_slices(group_endpoints(endpoints_of(2, start=4)), existing, meta,
                        max_endpoints=2)
    assert [s["metadata"]["name"] for s in fewer.delete] == ["web-0"]
    assert [(s["metadata"]["name"], [e["addresses"][0] for e in s["endpoints"]])
            for s in fewer.update] == [("web-1", ["10.0.0.4"])]
    assert not fewer.create


def test_a_service_without_endpoints_keeps_one_empty_placeholder_slice():
    meta = slice_meta()
    plan = plan_slices([], [], meta)
    assert [(s["addressType"], s["endpoints"], s["ports"]) for s in plan.create] == [
        ("IPv4", [], [])]
    existing = [{**s, "metadata": {**s["metadata"], "name": f"web-{i}"}} for i, s in
                enumerate(plan_slices(group_endpoints(endpoints_of(3)), [], meta,
                                      max_endpoints=2).create)]
    emptied = plan_slices([], existing, meta)
    assert [s["metadata"]["name"] for s in emptied.delete] == ["web-1"]
    assert [(s["metadata"]["name"], s["endpoints"]) for s in emptied.update] == [("web-0", [])]


def test_pods_whose_named_port_differs_land_in_slices_of_their_own():
    service = a_service(selector={"app": "web"},
                        ports=[{"name": "http", "port": 80, "targetPort": "web"}])
    pods = [a_pod("a", "10.0.0.1", ports=NAMED),
            a_pod("b", "10.0.0.2", ports=[{"name": "web", "containerPort": 9090}])]
    groups = desired_groups(service, pods)
    assert [(g.ports[0]["port"], [e["addresses"][0] for e in g.endpoints]) for g in groups] == [
        (8080, ["10.0.0.1"]), (9090, ["10.0.0.2"])]


def test_the_tracker_holds_a_sync_back_until_the_cache_has_seen_its_writes():
    clock = ManualClock()
    tracker = SliceTracker(clock, patience=30)
    written = {"metadata": {"name": "web-abc", "resourceVersion": "7"}}
    tracker.wrote("default/web", written)
    assert tracker.stale("default/web", [])
    assert tracker.stale("default/web", [{"metadata": {"name": "web-abc",
                                                       "resourceVersion": "6"}}])
    assert not tracker.stale("default/web", [written])
    tracker.deleted("default/web", written)
    assert tracker.stale("default/web", [written])
    clock.advance(31)
    assert not tracker.stale("default/web", [written])


# ------------------------------------------------------------ with a server


@dataclass
class Cluster:
    api: Api
    client: AsyncClient

    async def create(self, rt, body: dict) -> dict:
        body = {**body, "metadata": {k: v for k, v in body["metadata"].items() if k != "uid"}}
        status = body.pop("status", None)
        created = await self.client.create(rt, "default", body)
        if status is not None:
            created = await self.client.patch(rt, "default", body["metadata"]["name"],
                                              {"status": status}, subresource="status")
        return created

    async def set_ready(self, name: str, ready: bool) -> None:
        condition = {"type": "Ready", "status": "True" if ready else "False",
                     "lastTransitionTime": format_time(T0)}
        await self.client.patch(PODS, "default", name, {"status": {"conditions": [condition]}},
                                subresource="status")

    async def endpoints(self, name: str = "web") -> dict:
        return await self.client.get(ENDPOINTS, "default", name)

    async def slices(self, name: str = "web") -> list[dict]:
        found = await self.client.list(ENDPOINTSLICES, "default",
                                       label_selector=f"kubernetes.io/service-name={name}")
        return found["items"]

    async def wait_endpoints(self, until, name: str = "web") -> dict:
        return await poll(lambda: self.endpoints(name), until)

    async def wait_slices(self, until, name: str = "web") -> list[dict]:
        return await poll(lambda: self.slices(name), until)


def ips(subsets: list[dict] | None, field: str = "addresses") -> list[str]:
    return [a["ip"] for s in subsets or [] for a in s.get(field) or []]


def slice_ips(slices: list[dict], *, ready: bool | None = None) -> list[str]:
    return sorted(e["addresses"][0] for s in slices for e in s.get("endpoints") or []
                  if ready is None or e["conditions"].get("ready") is ready)


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async with running_controllers({
            "endpoint": EndpointsController, "endpointslice": EndpointSliceController,
            "endpointslicemirroring": EndpointSliceMirroringController,
            "garbagecollector": GarbageCollector}) as (api, client):
        yield Cluster(api, client)


async def test_a_service_lists_its_ready_pods_and_its_not_ready_pods_apart(cluster: Cluster):
    await cluster.create(PODS, a_pod("a", "10.244.0.5"))
    await cluster.create(PODS, a_pod("b", "10.244.0.6", ready=False))
    await cluster.create(PODS, a_pod("other", "10.244.0.7", labels={"app": "db"}))
    service = await cluster.create(SERVICES, a_service(selector={"app": "web"}))
    endpoints = await cluster.wait_endpoints(lambda e: len(ips(e.get("subsets"))) == 1)
    assert ips(endpoints["subsets"]) == ["10.244.0.5"]
    assert ips(endpoints["subsets"], "notReadyAddresses") == ["10.244.0.6"]
    assert endpoints["subsets"][0]["ports"] == [{"name": "http", "port": 8080,
                                                 "protocol": "TCP"}]
    assert endpoints["metadata"]["labels"] == {
        "tier": "front", "endpoints.kubernetes.io/managed-by": "endpoint-controller"}
    assert "endpoints.kubernetes.io/last-change-trigger-time" in endpoints["metadata"][
        "annotations"]
    slices = await cluster.wait_slices(lambda s: len(slice_ips(s)) == 2)
    assert len(slices) == 1
    slice_ = slices[0]
    assert slice_["metadata"]["name"].startswith("web-")
    assert slice_["metadata"]["labels"] == {
        "tier": "front", "kubernetes.io/service-name": "web",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    assert slice_["metadata"]["ownerReferences"] == [{
        "apiVersion": "v1", "kind": "Service", "name": "web",
        "uid": service["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    assert slice_["addressType"] == "IPv4"
    assert slice_["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    by_ip = {e["addresses"][0]: e for e in slice_["endpoints"]}
    assert by_ip["10.244.0.5"]["conditions"] == {"ready": True, "serving": True,
                                                 "terminating": False}
    assert by_ip["10.244.0.6"]["conditions"] == {"ready": False, "serving": False,
                                                 "terminating": False}
    assert by_ip["10.244.0.5"]["nodeName"] == "node-1"
    assert by_ip["10.244.0.5"]["targetRef"]["name"] == "a"


async def test_endpoints_follow_pods_as_they_come_go_and_change_readiness(cluster: Cluster):
    await cluster.create(SERVICES, a_service(selector={"app": "web"}))
    await cluster.wait_slices(lambda s: len(s) == 1 and not slice_ips(s))
    await cluster.create(PODS, a_pod("a", "10.244.0.5"))
    await cluster.create(PODS, a_pod("b", "10.244.0.6"))
    await cluster.wait_endpoints(lambda e: ips(e.get("subsets")) == ["10.244.0.5", "10.244.0.6"])
    await cluster.set_ready("a", False)
    await cluster.wait_endpoints(lambda e: ips(e.get("subsets")) == ["10.244.0.6"]
                                 and ips(e["subsets"], "notReadyAddresses") == ["10.244.0.5"])
    await cluster.wait_slices(lambda s: slice_ips(s, ready=True) == ["10.244.0.6"])
    await cluster.client.delete(PODS, "default", "b", grace_period_seconds=0)
    await cluster.wait_endpoints(lambda e: not ips(e.get("subsets")))
    slices = await cluster.wait_slices(lambda s: slice_ips(s) == ["10.244.0.5"])
    assert len(slices) == 1
    await cluster.client.patch(PODS, "default", "a", {"metadata": {"labels": {"app": "x"}}})
    await cluster.wait_endpoints(lambda e: not e.get("subsets"))
    await cluster.wait_slices(lambda s: len(s) == 1 and not slice_ips(s))


async def test_a_headless_service_carries_hostnames_of_pods_in_its_subdomain(cluster: Cluster):
    await cluster.create(PODS, a_pod("a", "10.244.0.5", hostname="web-0", subdomain="web"))
    await cluster.create(PODS, a_pod("b", "10.244.0.6", hostname="other", subdomain="x"))
    await cluster.create(SERVICES, a_service(selector={"app": "web"}, ports=[],
                                             clusterIP="None"))
    endpoints = await cluster.wait_endpoints(lambda e: len(ips(e.get("subsets"))) == 2)
    assert [(a["ip"], a.get("hostname")) for a in endpoints["subsets"][0]["addresses"]] == [
        ("10.244.0.5", "web-0"), ("10.244.0.6", None)]
    assert "ports" not in endpoints["subsets"][0]
    assert endpoints["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    slices = await cluster.wait_slices(lambda s: len(slice_ips(s)) == 2)
    assert {e["addresses"][0]: e.get("hostname") for e in slices[0]["endpoints"]} == {
        "10.244.0.5": "web-0", "10.244.0.6": None}
    assert slices[0]["metadata"]["labels"]["service.kubernetes.io/headless"] == ""


async def test_publish_not_ready_addresses_lists_every_pod_as_ready(cluster: Cluster):
    await cluster.create(PODS, a_pod("a", "10.244.0.5", ready=False))
    await cluster.create(SERVICES, a_service(selector={"app": "web"},
                                             publishNotReadyAddresses=True))
    await cluster.wait_endpoints(lambda e: ips(e.get("subsets")) == ["10.244.0.5"])
    slices = await cluster.wait_slices(lambda s: slice_ips(s) == ["10.244.0.5"])
    assert slices[0]["endpoints"][0]["conditions"] == {"ready": True, "serving": False,
                                                       "terminating": False}


async def test_user_endpoints_of_a_service_without_selector_are_kept_and_mirrored(
        cluster: Cluster):
    service = await cluster.create(SERVICES, a_service(ports=[{"port": 80}]))
    await cluster.create(ENDPOINTS, {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "web", "labels": {"mine": "yes"}},
        "subsets": [{"addresses": [{"ip": "192.0.2.10"}],
                     "notReadyAddresses": [{"ip": "192.0.2.11"}],
                     "ports": [{"port": 8080}]}]})
    slices = await cluster.wait_slices(lambda s: len(slice_ips(s)) == 2)
    assert slices[0]["metadata"]["labels"] == {
        "mine": "yes", "kubernetes.io/service-name": "web",
        "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io"}
    assert slices[0]["metadata"]["ownerReferences"][0]["uid"] == service["metadata"]["uid"]
    assert slices[0]["ports"] == [{"name": "", "port": 8080, "protocol": "TCP"}]
    assert slice_ips(slices, ready=False) == ["192.0.2.11"]
    endpoints = await cluster.endpoints()
    assert ips(endpoints["subsets"]) == ["192.0.2.10"]
    assert "annotations" not in endpoints["metadata"]
    await cluster.client.patch(ENDPOINTS, "default", "web", {"metadata": {"labels": {
        "endpointslice.kubernetes.io/skip-mirror": "true"}}})
    await cluster.wait_slices(lambda s: not s)
    assert ips((await cluster.endpoints())["subsets"]) == ["192.0.2.10"]


async def test_an_external_name_service_gets_no_endpoints(cluster: Cluster):
    await cluster.create(PODS, a_pod("a", "10.244.0.5"))
    await cluster.create(SERVICES, a_service("ext", selector={"app": "web"}, ports=[],
                                             type="ExternalName",
                                             externalName="example.com"))
    await cluster.create(SERVICES, a_service(selector={"app": "web"}))
    await cluster.wait_slices(lambda s: slice_ips(s) == ["10.244.0.5"])
    assert await cluster.slices("ext") == []
    with pytest.raises(ApiError) as e:
        await cluster.endpoints("ext")
    assert e.value.code == 404


async def test_deleting_a_service_removes_its_endpoints_and_its_slices(cluster: Cluster):
    await cluster.create(PODS, a_pod("a", "10.244.0.5"))
    await cluster.create(SERVICES, a_service(selector={"app": "web"}))
    await cluster.wait_slices(lambda s: slice_ips(s) == ["10.244.0.5"])
    await cluster.wait_endpoints(lambda e: ips(e.get("subsets")) == ["10.244.0.5"])
    await cluster.client.delete(SERVICES, "default", "web")
    await cluster.wait_slices(lambda s: not s)

    async def endpoints_gone() -> bool:
        try:
            await cluster.endpoints()
        except ApiError as e:
            return e.code == 404
        return False

    await poll(endpoints_gone, bool)


# ---------------------------------------------------------------- validation


def causes_of(rt, body: dict) -> list[tuple[str, str]]:
    with pytest.raises(ApiError) as e:
        validate(rt, body)
    assert e.value.code == 422
    return [(c["field"], c["message"]) for c in (e.value.details or {})["causes"]]


def test_the_api_refuses_slices_with_no_wrong_family_or_special_addresses():
    body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-x"}, "addressType": "IPv4",
            "endpoints": [{"addresses": []}, {"addresses": ["fd00::1"]},
                          {"addresses": ["127.0.0.1"]}],
            "ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}]}
    assert causes_of(ENDPOINTSLICES, body) == [
        ("endpoints[0].addresses", "Required value: must contain at least 1 address"),
        ("endpoints[1].addresses[0]", 'Invalid value: "fd00::1": must be a valid IPv4 address'),
        ("endpoints[2].addresses[0]", 'Invalid value: "127.0.0.1": may not be in the loopback '
                                      "range (127.0.0.0/8, ::1/128)"),
        ("ports[1].name", 'Duplicate value: "http"')]


def test_the_api_refuses_endpoints_without_addresses_or_with_unnamed_ports_among_several():
    body = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"},
            "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80},
                                                                       {"port": 81}]},
                        {"ports": [{"port": 80}]}]}
    assert causes_of(ENDPOINTS, body) == [
        ("subsets[0].ports[0].name", "Required value"),
        ("subsets[0].ports[1].name", "Required value"),
        ("subsets[1]", "Required value: must specify `addresses` or `notReadyAddresses`")]
