"""The pods/ephemeralcontainers subresource, in process over HTTP with a memory store: it
adds ephemeral containers and changes nothing else, as Kubernetes' strategy does."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.unit.test_apiserver import api, call

__all__ = ["api"]

PODS = "/api/v1/namespaces/default/pods"
EPHEMERAL = f"{PODS}/web/ephemeralcontainers"
STRATEGIC = "application/strategic-merge-patch+json"


@pytest.fixture
async def web(api: TestClient) -> TestClient:
    """The API with a pod `web` whose one container is `web`."""
    await call(api, "POST", PODS, {"apiVersion": "v1", "kind": "Pod",
                                   "metadata": {"name": "web", "labels": {"app": "web"}},
                                   "spec": {"containers": [{"name": "web",
                                                            "image": "minik/web:v1"}]}},
               expect=201)
    return api


def debugger(name: str = "debugger", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "minik/busybox:1.35", "targetContainerName": "web",
            "stdin": True, "tty": True, **fields}


def _fields(status: dict[str, Any]) -> list[str]:
    return [c["field"] for c in status["details"]["causes"]]


async def test_a_patch_of_ephemeralcontainers_adds_a_container_and_changes_nothing_else(
        web: TestClient) -> None:
    patched = await call(web, "PATCH", EPHEMERAL, {
        "metadata": {"labels": {"app": "changed"}},
        "spec": {"ephemeralContainers": [debugger()],
                 "containers": [{"name": "web", "image": "minik/web:v2"}]}},
        content_type=STRATEGIC, expect=200)
    assert [c["name"] for c in patched["spec"]["ephemeralContainers"]] == ["debugger"]
    added = patched["spec"]["ephemeralContainers"][0]
    assert added["terminationMessagePolicy"] == "File" and added["targetContainerName"] == "web"
    assert patched["metadata"]["labels"] == {"app": "web"}
    assert patched["spec"]["containers"][0]["image"] == "minik/web:v1"
    got = await call(web, "GET", EPHEMERAL, expect=200)
    assert got["kind"] == "Pod" and got["spec"]["ephemeralContainers"] == [added]


async def test_existing_ephemeral_containers_can_be_neither_changed_nor_removed(
        web: TestClient) -> None:
    pod = await call(web, "PATCH", EPHEMERAL, {"spec": {"ephemeralContainers": [debugger()]}},
                     content_type=STRATEGIC, expect=200)
    changed = json.loads(json.dumps(pod))
    changed["spec"]["ephemeralContainers"][0]["image"] = "minik/debian:bookworm"
    refused = await call(web, "PUT", EPHEMERAL, changed, expect=422)
    assert _fields(refused) == ["spec.ephemeralContainers"]
    assert 'existing ephemeral containers "debugger" may not be changed' in refused["message"]
    pod["spec"]["ephemeralContainers"] = []
    removed = await call(web, "PUT", EPHEMERAL, pod, expect=422)
    assert 'existing ephemeral containers "debugger" may not be removed' in removed["message"]


@pytest.mark.parametrize(("extra", "field"), [
    ({"ports": [{"containerPort": 80}]}, "spec.ephemeralContainers[0].ports"),
    ({"resources": {"limits": {"cpu": "1"}}}, "spec.ephemeralContainers[0].resources"),
    ({"readinessProbe": {"tcpSocket": {"port": 80}}},
     "spec.ephemeralContainers[0].readinessProbe"),
    ({"lifecycle": {"preStop": {"exec": {"command": ["true"]}}}},
     "spec.ephemeralContainers[0].lifecycle"),
    ({"targetContainerName": "nope"}, "spec.ephemeralContainers[0].targetContainerName"),
    ({"name": "web"}, "spec.ephemeralContainers[0].name"),
    ({"volumeMounts": [{"name": "missing", "mountPath": "/data"}]},
     "spec.ephemeralContainers[0].volumeMounts[0].name"),
    ({"volumeMounts": [{"name": "missing", "mountPath": "/data", "subPath": "x"}]},
     "spec.ephemeralContainers[0].volumeMounts[0].subPath"),
])
async def test_an_ephemeral_container_with_a_field_it_may_not_have_is_refused_naming_it(
        web: TestClient, extra: dict[str, Any], field: str) -> None:
    refused = await call(web, "PATCH", EPHEMERAL,
                         {"spec": {"ephemeralContainers": [debugger(**extra)]}},
                         content_type=STRATEGIC, expect=422)
    assert refused["reason"] == "Invalid" and field in _fields(refused), refused
    pod = await call(web, "GET", f"{PODS}/web", expect=200)
    assert "ephemeralContainers" not in pod["spec"]


async def test_ephemeral_containers_are_set_neither_on_create_nor_by_a_pod_update(
        web: TestClient) -> None:
    created = await call(web, "POST", PODS, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "other"},
        "spec": {"containers": [{"name": "web", "image": "minik/web:v1"}],
                 "ephemeralContainers": [debugger()]}}, expect=422)
    assert _fields(created) == ["spec.ephemeralContainers"]
    assert "cannot be set on create" in created["message"]
    updated = await call(web, "PATCH", f"{PODS}/web",
                         {"spec": {"ephemeralContainers": [debugger()]}},
                         content_type=STRATEGIC, expect=422)
    assert _fields(updated) == ["spec"]


async def test_discovery_lists_the_ephemeralcontainers_subresource(web: TestClient) -> None:
    resources = (await call(web, "GET", "/api/v1", expect=200))["resources"]
    entry = next(r for r in resources if r["name"] == "pods/ephemeralcontainers")
    assert entry["kind"] == "Pod" and sorted(entry["verbs"]) == ["get", "patch", "update"]

