"""API server semantics, in process over HTTP with a memory store."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request

from minik.api.errors import ApiError
from minik.api.resources import REGISTRY
from minik.apiserver.app import FailureAccessLogger, create_app
from minik.apiserver.handlers import STORAGE_KEY
from minik.apiserver.lifecycle import DeleteOptions
from minik.apiserver.metrics import ApiMetrics
from minik.apiserver.server import bootstrap_namespaces
from minik.apiserver.storage import ObjectStorage, WriteOptions
from minik.store import MemoryStore, Record
from tests.unit.apitest import (
    bootstrapped,
    eventually,
    on_the_server_s_runner,
    poll,
    serving,
)

TOKEN = "test-token"
CM = "/api/v1/namespaces/default/configmaps"
DEPLOY = "/apis/apps/v1/namespaces/default/deployments"


@pytest.fixture
async def api() -> AsyncIterator[TestClient]:
    storage = ObjectStorage(MemoryStore())
    await bootstrap_namespaces(storage)
    async with serving(storage, TOKEN) as client:
        yield client


async def call(api: TestClient, method: str, path: str, body: Any = None, *,
               content_type: str = "application/json", expect: int | None = None,
               **params: str) -> Any:
    data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
    response = await api.request(method, path, data=data, params=params,
                                 headers={"Content-Type": content_type})
    payload = await response.json(content_type=None)
    if expect is not None:
        assert response.status == expect, payload
    return payload


def deployment(name: str = "web", image: str = "minik/web:v1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": image}]}}},
    }


async def test_create_sets_server_metadata_and_drops_client_status(api: TestClient) -> None:
    body = deployment()
    body["metadata"].update(uid="mine", resourceVersion="99", generation=7)
    body["status"] = {"replicas": 5}
    created = await call(api, "POST", DEPLOY, body, expect=201)
    md = created["metadata"]
    assert md["uid"] != "mine" and md["generation"] == 1 and md["namespace"] == "default"
    assert md["resourceVersion"] != "99" and md["creationTimestamp"].endswith("Z")
    assert "replicas" not in created.get("status", {})


async def test_generation_moves_on_spec_changes_only(api: TestClient) -> None:
    await call(api, "POST", DEPLOY, deployment(), expect=201)
    labelled = await call(api, "PATCH", f"{DEPLOY}/web", {"metadata": {"labels": {"a": "b"}}},
                          content_type="application/merge-patch+json", expect=200)
    assert labelled["metadata"]["generation"] == 1
    status = await call(api, "PATCH", f"{DEPLOY}/web/status", {"status": {"replicas": 1}},
                        content_type="application/merge-patch+json", expect=200)
    assert status["metadata"]["generation"] == 1 and status["status"]["replicas"] == 1
    scaled = await call(api, "PATCH", f"{DEPLOY}/web/scale", {"spec": {"replicas": 4}},
                        content_type="application/merge-patch+json", expect=200)
    assert scaled["kind"] == "Scale" and scaled["spec"]["replicas"] == 4
    assert scaled["status"]["selector"] == "app=web"
    current = await call(api, "GET", f"{DEPLOY}/web", expect=200)
    assert current["metadata"]["generation"] == 2 and current["status"]["replicas"] == 1


async def test_the_main_resource_cannot_change_status(api: TestClient) -> None:
    created = await call(api, "POST", DEPLOY, deployment(), expect=201)
    created["status"] = {"replicas": 9}
    updated = await call(api, "PUT", f"{DEPLOY}/web", created, expect=200)
    assert updated.get("status", {}).get("replicas") is None


async def test_an_unchanged_update_writes_nothing(api: TestClient) -> None:
    created = await call(api, "POST", CM, {"metadata": {"name": "c"}, "data": {"a": "1"}},
                         expect=201)
    same = await call(api, "PUT", f"{CM}/c", created, expect=200)
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_a_patch_carrying_a_stale_resource_version_conflicts(api: TestClient) -> None:
    created = await call(api, "POST", CM, {"metadata": {"name": "c"}, "data": {"a": "1"}},
                         expect=201)
    await call(api, "PATCH", f"{CM}/c", {"data": {"a": "2"}},
               content_type="application/merge-patch+json", expect=200)
    stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]},
             "data": {"a": "3"}}
    error = await call(api, "PATCH", f"{CM}/c", stale,
                       content_type="application/merge-patch+json", expect=409)
    assert error["reason"] == "Conflict"


async def test_dry_run_never_persists(api: TestClient) -> None:
    await call(api, "POST", CM, {"metadata": {"name": "dry"}}, expect=201, dryRun="All")
    await call(api, "GET", f"{CM}/dry", expect=404)
    await call(api, "POST", CM, {"metadata": {"name": "c"}, "data": {"a": "1"}}, expect=201)
    await call(api, "PATCH", f"{CM}/c", {"data": {"a": "2"}}, expect=200,
               content_type="application/merge-patch+json", dryRun="All")
    assert (await call(api, "GET", f"{CM}/c"))["data"] == {"a": "1"}
    await call(api, "DELETE", f"{CM}/c", expect=200, dryRun="All")
    await call(api, "GET", f"{CM}/c", expect=200)


async def test_finalizers_hold_an_object_until_removed(api: TestClient) -> None:
    await call(api, "POST", CM, {"metadata": {"name": "f", "finalizers": ["x/y"]}}, expect=201)
    marked = await call(api, "DELETE", f"{CM}/f", expect=200)
    assert marked["metadata"]["deletionTimestamp"]
    still = await call(api, "GET", f"{CM}/f", expect=200)
    assert still["metadata"]["finalizers"] == ["x/y"]
    await call(api, "PATCH", f"{CM}/f", {"metadata": {"finalizers": None}},
               content_type="application/merge-patch+json", expect=200)
    await call(api, "GET", f"{CM}/f", expect=404)


async def test_a_terminating_namespace_refuses_new_content_and_goes_once_unfinalized(
    api: TestClient
) -> None:
    await call(api, "POST", "/api/v1/namespaces", {"metadata": {"name": "gone"}}, expect=201)
    path = "/api/v1/namespaces/gone/configmaps"
    await call(api, "POST", path, {"metadata": {"name": "c"}}, expect=201)
    ns = await call(api, "DELETE", "/api/v1/namespaces/gone", expect=200)
    assert ns["status"]["phase"] == "Terminating"
    refused = await call(api, "POST", path, {"metadata": {"name": "d"}}, expect=403)
    assert refused["reason"] == "Forbidden"
    await call(api, "DELETE", f"{path}/c", expect=200)
    still = await call(api, "GET", "/api/v1/namespaces/gone", expect=200)
    assert still["spec"]["finalizers"] == ["kubernetes"], "emptying it is the controller's work"
    await call(api, "PATCH", "/api/v1/namespaces/gone", {"spec": {"finalizers": []}},
               content_type="application/merge-patch+json", expect=200)
    await call(api, "GET", "/api/v1/namespaces/gone", expect=404)


async def test_the_finalize_subresource_writes_spec_finalizers_and_keeps_the_status(
    api: TestClient
) -> None:
    ns_path = "/api/v1/namespaces/fin"
    await call(api, "POST", "/api/v1/namespaces", {"metadata": {"name": "fin"}}, expect=201)
    ns = await call(api, "GET", ns_path, expect=200)
    ns["spec"]["finalizers"] = ["kubernetes", "example.com/hold"]
    ns["status"] = {"phase": "Terminating"}
    held = await call(api, "PUT", f"{ns_path}/finalize", ns, expect=200)
    assert held["spec"]["finalizers"] == ["kubernetes", "example.com/hold"]
    assert held["status"] == {"phase": "Active"}, "finalize does not write the status"
    await call(api, "GET", f"{ns_path}/finalize", expect=405)
    await call(api, "PATCH", f"{ns_path}/finalize", {"spec": {"finalizers": []}},
               content_type="application/merge-patch+json", expect=405)
    held["spec"]["finalizers"] = ["unqualified"]
    refused = await call(api, "PUT", f"{ns_path}/finalize", held, expect=422)
    assert refused["details"]["causes"][0]["field"] == "spec.finalizers"
    await call(api, "DELETE", ns_path, expect=200)
    terminating = await call(api, "GET", ns_path, expect=200)
    terminating["spec"]["finalizers"] = []
    await call(api, "PUT", f"{ns_path}/finalize", terminating, expect=200)
    await call(api, "GET", ns_path, expect=404)


async def test_a_namespace_without_finalizers_goes_at_once(api: TestClient) -> None:
    body = {"metadata": {"name": "bare"}, "spec": {"finalizers": []}}
    await call(api, "POST", "/api/v1/namespaces", body, expect=201)
    await call(api, "DELETE", "/api/v1/namespaces/bare", expect=200)
    await call(api, "GET", "/api/v1/namespaces/bare", expect=404)


class RacingStore(MemoryStore):
    """Deletes namespace `race` just before the first object is written into it, as a
    client deleting the (still empty) namespace at that moment would."""

    def __init__(self) -> None:
        super().__init__()
        self.storage: ObjectStorage | None = None

    async def create(self, key: str, value: dict) -> Any:
        if key.startswith("/registry/configmaps/race/") and self.storage is not None:
            storage, self.storage = self.storage, None
            namespaces = REGISTRY.get("namespaces")
            assert namespaces is not None
            await storage.delete(namespaces, None, "race", DeleteOptions())
        return await super().create(key, value)


async def test_a_create_that_races_the_deletion_of_its_namespace_is_taken_back() -> None:
    store = RacingStore()
    storage = ObjectStorage(store)
    await bootstrap_namespaces(storage)
    namespaces, configmaps = REGISTRY.get("namespaces"), REGISTRY.get("configmaps")
    assert namespaces is not None and configmaps is not None
    await storage.create(namespaces, None, {"metadata": {"name": "race"}}, WriteOptions())
    store.storage = storage
    with pytest.raises(ApiError) as refused:
        await storage.create(configmaps, "race", {"metadata": {"name": "late"}},
                             WriteOptions())
    assert refused.value.code == 403
    assert await store.get(configmaps.key("race", "late")) is None, "an orphan was left"


async def test_orphan_deletion_only_marks_the_owner_for_the_garbage_collector(
    api: TestClient
) -> None:
    owner = await call(api, "POST", CM, {"metadata": {"name": "owner"}}, expect=201)
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
           "uid": owner["metadata"]["uid"], "controller": True}
    await call(api, "POST", CM, {"metadata": {"name": "dep", "ownerReferences": [ref]}},
               expect=201)
    marked = await call(api, "DELETE", f"{CM}/owner", {"propagationPolicy": "Orphan"},
                        expect=200)
    md = marked["metadata"]
    assert md["finalizers"] == ["orphan"] and md["deletionTimestamp"]
    assert md["deletionGracePeriodSeconds"] == 0
    dependent = await call(api, "GET", f"{CM}/dep", expect=200)
    assert dependent["metadata"]["ownerReferences"] == [ref]
    await call(api, "PATCH", f"{CM}/owner", {"metadata": {"finalizers": None}},
               content_type="application/merge-patch+json", expect=200)
    await call(api, "GET", f"{CM}/owner", expect=404)
    await call(api, "POST", CM, {"metadata": {"name": "alone"}}, expect=201)
    alone = await call(api, "DELETE", f"{CM}/alone", {"propagationPolicy": "Orphan"},
                       expect=200)
    assert alone["metadata"]["finalizers"] == ["orphan"], "dependents are the collector's to find"


async def test_foreground_deletion_only_marks_the_owner_for_the_garbage_collector(
    api: TestClient
) -> None:
    await call(api, "POST", CM, {"metadata": {"name": "owner", "finalizers": ["x/y"]}},
               expect=201)
    marked = await call(api, "DELETE", f"{CM}/owner", {"propagationPolicy": "Foreground"},
                        expect=200)
    assert marked["metadata"]["finalizers"] == ["x/y", "foregroundDeletion"]
    background = await call(api, "DELETE", f"{CM}/owner", {"propagationPolicy": "Background"},
                            expect=200)
    assert background["metadata"]["finalizers"] == ["x/y"], "the policy asked last decides"


async def test_without_a_garbage_collector_a_delete_leaves_no_finalizer_for_it() -> None:
    storage = ObjectStorage(MemoryStore(), garbage_collection=False)
    await bootstrap_namespaces(storage)
    async with serving(storage, TOKEN) as api:
        for policy in ("Orphan", "Foreground"):
            await call(api, "POST", CM, {"metadata": {"name": policy.lower()}}, expect=201)
            await call(api, "DELETE", f"{CM}/{policy.lower()}", {"propagationPolicy": policy},
                       expect=200)
            await call(api, "GET", f"{CM}/{policy.lower()}", expect=404)
        await call(api, "POST", CM, {"metadata": {"name": "held", "finalizers": ["orphan"]}},
                   expect=201)
        marked = await call(api, "DELETE", f"{CM}/held", {"propagationPolicy": "Background"},
                            expect=200)
        assert marked["metadata"]["finalizers"] == ["orphan"], "its own finalizers are kept"


async def test_the_deprecated_orphan_dependents_false_takes_back_an_orphan_finalizer(
    api: TestClient
) -> None:
    await call(api, "POST", CM, {"metadata": {"name": "o", "finalizers": ["orphan", "x/y"]}},
               expect=201)
    marked = await call(api, "DELETE", f"{CM}/o", {"orphanDependents": False}, expect=202)
    assert marked["metadata"]["finalizers"] == ["x/y"]


async def test_a_delete_answers_202_only_when_it_leaves_the_object_and_asked_to_cascade(
    api: TestClient
) -> None:
    """Kubernetes' delete handler: 202 Accepted iff the object is not gone yet and the
    request set orphanDependents=false; a graceful or finalizer-held delete is otherwise 200."""
    await call(api, "POST", CM, {"metadata": {"name": "held", "finalizers": ["x/y"]}},
               expect=201)
    await call(api, "DELETE", f"{CM}/held", expect=200)
    await call(api, "DELETE", f"{CM}/held", {"propagationPolicy": "Foreground"}, expect=200)
    accepted = await call(api, "DELETE", f"{CM}/held", orphanDependents="false", expect=202)
    assert accepted["metadata"]["deletionTimestamp"], "the answer is the object, still there"
    await call(api, "POST", CM, {"metadata": {"name": "free"}}, expect=201)
    await call(api, "DELETE", f"{CM}/free", {"orphanDependents": False}, expect=200)
    await call(api, "GET", f"{CM}/free", expect=404)


async def test_events_get_no_garbage_collector_finalizer(api: TestClient) -> None:
    events = "/api/v1/namespaces/default/events"
    body = {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"}}
    await call(api, "POST", events, body, expect=201)
    await call(api, "DELETE", f"{events}/e", {"propagationPolicy": "Foreground"}, expect=200)
    await call(api, "GET", f"{events}/e", expect=404)


async def test_deleting_an_object_already_marked_writes_nothing(api: TestClient) -> None:
    await call(api, "POST", CM, {"metadata": {"name": "f", "finalizers": ["x/y"]}}, expect=201)
    marked = await call(api, "DELETE", f"{CM}/f", expect=200)
    again = await call(api, "DELETE", f"{CM}/f", expect=200)
    assert again["metadata"]["resourceVersion"] == marked["metadata"]["resourceVersion"]


async def test_node_status_changes_only_through_the_status_subresource(api: TestClient) -> None:
    nodes = "/api/v1/nodes"
    body = {"metadata": {"name": "n"}, "status": {"capacity": {"cpu": "2"}}}
    created = await call(api, "POST", nodes, body, expect=201)
    assert created["status"]["capacity"] == {"cpu": "2"}
    created["status"] = {"capacity": {"cpu": "64"}}
    updated = await call(api, "PUT", f"{nodes}/n", created, expect=200)
    assert updated["status"]["capacity"] == {"cpu": "2"}
    patched = await call(api, "PATCH", f"{nodes}/n/status",
                         {"status": {"capacity": {"cpu": "4"}}},
                         content_type="application/merge-patch+json", expect=200)
    assert patched["status"]["capacity"] == {"cpu": "4"}


async def test_server_side_apply_creates_then_merges(api: TestClient) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"},
            "data": {"a": "1"}}
    ssa = "application/apply-patch+yaml"
    await call(api, "PATCH", f"{CM}/ssa", body, content_type=ssa, expect=201,
               fieldManager="kubectl")
    body["data"] = {"b": "2"}
    merged = await call(api, "PATCH", f"{CM}/ssa", body, content_type=ssa, expect=200,
                        fieldManager="kubectl")
    assert merged["data"] == {"a": "1", "b": "2"}


async def test_server_side_apply_that_loses_a_create_race_merges(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = api.server.app[STORAGE_KEY]
    create = storage.create

    async def racing(rt: Any, namespace: Any, obj: Any, options: Any) -> Any:
        rival = {**obj, "data": {"rival": "1"}}
        await create(rt, namespace, rival, options)
        return await create(rt, namespace, obj, options)

    monkeypatch.setattr(storage, "create", racing)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"},
            "data": {"a": "1"}}
    merged = await call(api, "PATCH", f"{CM}/ssa", body, expect=200,
                        content_type="application/apply-patch+yaml", fieldManager="kubectl")
    assert merged["data"] == {"rival": "1", "a": "1"}


async def test_bad_bodies_are_refused_and_store_nothing(api: TestClient) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n"
        for i in range(8)
    )
    cases = [
        ("{not json", "application/json", 400),
        ("[" * 60_000, "application/json", 400),
        ("[" * 60_000, "application/yaml", 400),
        (bomb, "application/yaml", 400),
        ("a: &a [*a]", "application/yaml", 400),
        ("x" * (3 * 1024 * 1024 + 1), "application/json", 413),
        ("k8s\x00binary", "application/vnd.kubernetes.protobuf", 400),
        ("k8s", "application/vnd.kubernetes.protobuf", 400),
    ]
    for body, content_type, code in cases:
        error = await call(api, "POST", CM, body, content_type=content_type, expect=code)
        assert error["kind"] == "Status"
    listed = await call(api, "GET", CM)
    assert listed["items"] == []


async def test_yaml_bodies_are_accepted(api: TestClient) -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  a: '1'\n"
    created = await call(api, "POST", CM, text, content_type="application/yaml", expect=201)
    assert created["data"] == {"a": "1"}


async def test_list_pages_with_continue_tokens_on_one_snapshot(api: TestClient) -> None:
    for i in range(5):
        await call(api, "POST", CM, {"metadata": {"name": f"p{i}"}}, expect=201)
    first = await call(api, "GET", CM, limit="2")
    await call(api, "DELETE", f"{CM}/p4", expect=200)
    names = [i["metadata"]["name"] for i in first["items"]]
    token = first["metadata"]["continue"]
    while token:
        page = await call(api, "GET", CM, limit="2", **{"continue": token})
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
    assert names == ["p0", "p1", "p2", "p3", "p4"]


async def test_label_and_field_selectors_filter_lists(api: TestClient) -> None:
    for name, tier in (("a", "web"), ("b", "db"), ("c", "web")):
        await call(api, "POST", CM, {"metadata": {"name": name, "labels": {"tier": tier}}},
                   expect=201)
    web = await call(api, "GET", CM, labelSelector="tier in (web)")
    assert [i["metadata"]["name"] for i in web["items"]] == ["a", "c"]
    not_a = await call(api, "GET", CM, labelSelector="tier=web", fieldSelector="metadata.name!=a")
    assert [i["metadata"]["name"] for i in not_a["items"]] == ["c"]
    error = await call(api, "GET", CM, fieldSelector="spec.nope=1", expect=400)
    assert "field label not supported" in error["message"]


async def test_requests_without_the_token_get_401_but_health_does_not(api: TestClient) -> None:
    response = await api.request("GET", CM, headers={"Authorization": "Bearer wrong"})
    assert response.status == 401
    assert (await response.json())["reason"] == "Unauthorized"
    health = await api.request("GET", "/readyz", headers={"Authorization": ""})
    assert health.status == 200


async def test_metrics_label_non_resource_paths_from_a_fixed_set(api: TestClient) -> None:
    for path in ("/no/such/path/abc123", "/secret-probe-xyz", "/apis/apps/v1"):
        await api.request("GET", path, headers={"Authorization": "Bearer wrong"})
    await api.request("GET", "/version")
    await api.request("GET", f"{CM}/anything", headers={"Authorization": "Bearer wrong"})
    text = await (await api.request("GET", "/metrics")).text()
    assert "abc123" not in text and "secret-probe" not in text and "anything" not in text
    assert 'resource="other"' in text and 'resource="/apis"' in text
    assert 'resource="/version"' in text and 'resource="configmaps"' in text


def test_the_access_log_leaves_out_queries_and_streaming_requests(
    caplog: pytest.LogCaptureFixture
) -> None:
    logger = FailureAccessLogger(logging.getLogger("access"), "")
    exec_path = "/api/v1/namespaces/default/pods/db/exec?command=mysql&command=-pSECRET"
    with caplog.at_level(logging.INFO, logger="access"):
        logger.log(make_mocked_request("POST", exec_path), web.Response(status=101), 30.0)
        logger.log(make_mocked_request("GET", "/api/v1/pods?labelSelector=pw%3DSECRET"),
                   web.Response(status=200), 5.0)
        logger.log(make_mocked_request("GET", exec_path), web.Response(status=403), 0.1)
    assert "SECRET" not in caplog.text
    assert "/api/v1/pods " in caplog.text and "/pods/db/exec " in caplog.text
    assert len(caplog.records) == 2


async def test_discovery_is_aggregated_when_asked_and_names_every_resource(
    api: TestClient
) -> None:
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    response = await api.request("GET", "/apis", headers={"Accept": accept})
    assert "as=APIGroupDiscoveryList" in response.headers["Content-Type"]
    body = await response.json(content_type=None)
    groups = {item["metadata"]["name"] for item in body["items"]}
    assert {"apps", "batch", "autoscaling", "coordination.k8s.io"} <= groups
    legacy = await call(api, "GET", "/apis/apps/v1")
    assert {r["name"] for r in legacy["resources"]} >= {"deployments", "deployments/scale"}
    v2 = await api.request("GET", "/openapi/v2", headers={
        "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert (await v2.read()).startswith(b"\n\x032.0\x12")
    assert (await call(api, "GET", "/openapi/v2"))["definitions"] == {}
    index = await call(api, "GET", "/openapi/v3")
    assert "apis/apps/v1" in index["paths"]


async def test_binding_assigns_a_node_once(api: TestClient) -> None:
    pods = "/api/v1/namespaces/default/pods"
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}
    await call(api, "POST", pods, pod, expect=201)
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"}}
    await call(api, "POST", f"{pods}/p/binding", binding, expect=201)
    bound = await call(api, "GET", f"{pods}/p", expect=200)
    assert bound["spec"]["nodeName"] == "node-a" and bound["status"]["phase"] == "Pending"
    scheduled = {c["type"]: c["status"] for c in bound["status"]["conditions"]}
    assert scheduled == {"PodScheduled": "True"}
    again = await call(api, "POST", f"{pods}/p/binding", binding, expect=409)
    assert "already assigned" in again["message"]


class GatedStore(MemoryStore):
    """Holds every ConfigMap create until the gate opens."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.gate = asyncio.Event(), asyncio.Event()

    async def create(self, key: str, value: dict) -> Record:
        if "/configmaps/" in key:
            self.entered.set()
            await self.gate.wait()
        return await super().create(key, value)


async def test_a_write_whose_client_goes_away_still_finishes() -> None:
    store = GatedStore()
    metrics = ApiMetrics()
    app = create_app(await bootstrapped(store), token=TOKEN, metrics=metrics)
    gone = metrics.requests.labels(verb="create", resource="configmaps", code="499")
    async with on_the_server_s_runner(app) as url, aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        posting = asyncio.create_task(client.post(f"{url}{CM}", json={"metadata": {"name": "a"}}))
        await store.entered.wait()
        posting.cancel()
        await eventually(lambda: gone._value.get() == 1)  # type: ignore[attr-defined]
        store.gate.set()
        await poll(lambda: store.get("/registry/configmaps/default/a"),
                   lambda record: record is not None)
