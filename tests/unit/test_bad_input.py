"""Hostile request bodies and parameters get a clear 4xx, and nothing stored can break a read.

Served in process over HTTP on a memory store, as a client would see it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from minik.api.decode import decode_body
from minik.api.resources import REGISTRY
from minik.apiserver import responses
from minik.apiserver.storage import ObjectStorage, WriteOptions
from minik.store import MemoryStore
from tests.unit.apitest import served

TOKEN = "test-token"
CM = "/api/v1/namespaces/default/configmaps"
CONFIGMAPS = REGISTRY.by_kind("v1", "ConfigMap")


@pytest.fixture
async def served_memory() -> AsyncIterator[tuple[TestClient, ObjectStorage]]:
    async with served(MemoryStore(), TOKEN) as both:
        yield both


@pytest.fixture
def api(served_memory: tuple[TestClient, ObjectStorage]) -> TestClient:
    return served_memory[0]


@pytest.fixture
def storage(served_memory: tuple[TestClient, ObjectStorage]) -> ObjectStorage:
    return served_memory[1]


async def send(api: TestClient, method: str, path: str, body: Any = None, *,
               content_type: str = "application/json", **params: str) -> ClientResponse:
    data = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
    return await api.request(method, path, data=data, params=params,
                             headers={"Content-Type": content_type})


async def answer(response: ClientResponse, code: int) -> Any:
    payload = await response.json(content_type=None)
    assert response.status == code, payload
    return payload


async def next_event(response: ClientResponse) -> dict[str, Any]:
    async with asyncio.timeout(5):
        line = await response.content.readline()
    assert line, "the watch ended"
    return json.loads(line)


# ------------------------------------------------------------- item 4: text


async def test_a_lone_surrogate_is_stored_as_the_replacement_character(api: TestClient) -> None:
    body = ('{"metadata": {"name": "s", "annotations": {"a": "x\\ud800"}},'
            ' "data": {"k": "v\\udfff\\ud83d\\ude00"}}')
    created = await answer(await send(api, "POST", CM, body), 201)
    assert created["data"] == {"k": "v\ufffd\U0001f600"}
    assert created["metadata"]["annotations"] == {"a": "x\ufffd"}
    listed = await answer(await send(api, "GET", CM), 200)
    assert [cm["data"] for cm in listed["items"]] == [{"k": "v\ufffd\U0001f600"}]


def test_decoding_replaces_lone_surrogates_in_keys_and_values_alike() -> None:
    decoded = decode_body(b'{"k\\ud800": ["\\udc00x"], "ok": "\\ud83d\\ude00"}',
                          "application/json")
    assert decoded == {"k\ufffd": ["\ufffdx"], "ok": "\U0001f600"}


async def test_numbers_json_cannot_carry_are_refused_even_in_free_form_fields(
    api: TestClient
) -> None:
    revisions = "/apis/apps/v1/namespaces/default/controllerrevisions"
    for body in ('{"metadata": {"name": "n"}, "revision": 1, "data": {"k": NaN}}',
                 '{"metadata": {"name": "n"}, "revision": 1, "data": {"k": 1e400}}'):
        error = await answer(await send(api, "POST", revisions, body), 400)
        assert error["reason"] == "BadRequest"
    for data in (".nan", "9" * 5000):
        refused = await send(api, "POST", revisions,
                             f"metadata: {{name: n}}\nrevision: 1\ndata: {{k: {data}}}\n",
                             content_type="application/yaml")
        await answer(refused, 400)
    assert (await answer(await send(api, "GET", revisions), 200))["items"] == []


async def test_no_stored_value_can_fail_a_list_or_a_watch(
    api: TestClient, storage: ObjectStorage
) -> None:
    assert CONFIGMAPS is not None
    poisoned = {"metadata": {"name": "old", "annotations": {"k\ud800": "v\udc00"}},
                "data": {"nan": float("nan")}}
    await storage.create(CONFIGMAPS, "default", poisoned, WriteOptions(trusted=True))
    listed = await answer(await send(api, "GET", CM), 200)
    (item,) = listed["items"]
    assert item["metadata"]["annotations"] == {"k\ufffd": "v\ufffd"}
    assert item["data"] == {"nan": None}
    watch = await send(api, "GET", CM, watch="true", resourceVersion="0")
    assert (await next_event(watch))["object"]["metadata"]["name"] == "old"
    await storage.create(CONFIGMAPS, "default", {**poisoned, "metadata": {"name": "new"}},
                         WriteOptions(trusted=True))
    assert (await next_event(watch))["object"]["metadata"]["name"] == "new"
    watch.close()


async def test_a_watch_whose_event_cannot_be_written_ends_instead_of_hanging(
    api: TestClient, storage: ObjectStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert CONFIGMAPS is not None
    dumps = responses.dumps

    def failing(obj: Any) -> str:
        if obj.get("object", {}).get("metadata", {}).get("name") == "unwritable":
            raise RuntimeError("cannot render")
        return dumps(obj)

    monkeypatch.setattr(responses, "dumps", failing)
    watch = await send(api, "GET", CM, watch="true", timeoutSeconds="30")
    await storage.create(CONFIGMAPS, "default", {"metadata": {"name": "unwritable"}},
                         WriteOptions(trusted=True))
    async with asyncio.timeout(5):
        assert await watch.content.read() == b""


# ------------------------------------------------------ item 5: Warning headers


async def test_an_unknown_field_with_a_control_character_is_warned_about_in_a_safe_header(
    api: TestClient
) -> None:
    body = {"metadata": {"name": "w"}, "data": {"k": "v"}, "sp\x01ec\n\"x\\": {}}
    response = await send(api, "POST", CM, body, fieldValidation="Warn")
    await answer(response, 201)
    assert response.headers.getall("Warning") == [
        '299 - "unknown field \\"sp\\\\x01ec\\\\n\\\\\\"x\\\\\\\\\\""'
    ]


def test_warning_headers_follow_the_kubernetes_recorder() -> None:
    headers = responses.warning_headers(["a \"b\" \\c", "a \"b\" \\c", "bell\x07", "é", ""])
    assert headers == [("Warning", '299 - "a \\"b\\" \\\\c"'), ("Warning", '299 - "é"')]
    many = responses.warning_headers([f"{i:03d}" + "x" * 300 for i in range(40)])
    assert len(many) == 16 and {len(value) for _, value in many} == {256 + 8}


# ------------------------------------------------------------ item 6: pruning

DEPLOY = "/apis/apps/v1/namespaces/default/deployments"


def deployment_with_unknown_fields() -> dict[str, Any]:
    container = {"name": "c", "image": "minik/web:v1", "imagee": "typo",
                 "resources": {"limits": {"cpu": "1"}, "limitz": {}}}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "extra": 1,
        "metadata": {"name": "d", "labelz": {"a": "b"}},
        "spec": {"selector": {"matchLabels": {"app": "d"}}, "replica": 2,
                 "template": {"metadata": {"labels": {"app": "d"}},
                              "spec": {"containers": [container],
                                       "affinity": {"nodeAffinity": {}}}}},
    }


UNKNOWN = ["extra", "metadata.labelz", "spec.replica",
           "spec.template.spec.containers[0].imagee",
           "spec.template.spec.containers[0].resources.limitz"]


@pytest.mark.parametrize("mode", ["Warn", "Ignore"])
async def test_unknown_fields_are_dropped_on_create_and_update_unless_strict(
    api: TestClient, mode: str
) -> None:
    response = await send(api, "POST", DEPLOY, deployment_with_unknown_fields(),
                          fieldValidation=mode)
    created = await answer(response, 201)
    unknown_warnings = [w for w in response.headers.getall("Warning", [])
                        if "unknown field" in w]
    if mode == "Warn":
        assert sorted(unknown_warnings) == sorted(
            f'299 - "unknown field \\"{path}\\""' for path in UNKNOWN)
    else:
        assert unknown_warnings == []
    stored = await answer(await send(api, "GET", f"{DEPLOY}/d"), 200)
    for obj in (created, stored):
        assert "extra" not in obj and "labelz" not in obj["metadata"]
        assert "replica" not in obj["spec"]
        pod = obj["spec"]["template"]["spec"]
        assert pod["containers"][0]["resources"] == {"limits": {"cpu": "1"}}
        assert "imagee" not in pod["containers"][0]
        assert pod["affinity"] == {"nodeAffinity": {}}, "a valid field minik ignores is kept"
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "c", "imagee": "x"}]}}}}
    patched = await answer(await send(
        api, "PATCH", f"{DEPLOY}/d", patch, fieldValidation=mode,
        content_type="application/strategic-merge-patch+json"), 200)
    assert "imagee" not in patched["spec"]["template"]["spec"]["containers"][0]


async def test_unknown_fields_are_refused_under_strict(api: TestClient) -> None:
    error = await answer(await send(api, "POST", DEPLOY, deployment_with_unknown_fields(),
                                    fieldValidation="Strict"), 400)
    assert error["message"].count("unknown field") == len(UNKNOWN)
    assert (await answer(await send(api, "GET", DEPLOY), 200))["items"] == []


# ----------------------------------------------------------- item 7: integers

PODS = "/api/v1/namespaces/default/pods"


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "i:1"}], **spec}}


@pytest.mark.parametrize(("spec", "detail"), [
    ({"terminationGracePeriodSeconds": 2**70},
     f"json: cannot unmarshal number {2**70} into Go struct field "
     "PodSpec.spec.terminationGracePeriodSeconds of type int64"),
    ({"terminationGracePeriodSeconds": 1.5},
     "json: cannot unmarshal number 1.5 into Go struct field "
     "PodSpec.spec.terminationGracePeriodSeconds of type int64"),
    ({"containers": [{"name": "c", "image": "i:1", "ports": [{"containerPort": 2**31}]}]},
     f"json: cannot unmarshal number {2**31} into Go struct field "
     "ContainerPort.spec.containers.ports.containerPort of type int32"),
])
async def test_an_integer_that_overflows_its_field_is_a_decode_error(
    api: TestClient, spec: dict[str, Any], detail: str
) -> None:
    error = await answer(await send(api, "POST", PODS, pod("big", **spec)), 400)
    assert error["message"] == f'Pod in version "v1" cannot be handled as a Pod: {detail}'
    assert (await answer(await send(api, "GET", PODS), 200))["items"] == []


async def test_the_largest_grace_period_still_lets_a_pod_be_deleted(api: TestClient) -> None:
    created = pod("slow", terminationGracePeriodSeconds=2**63 - 1, nodeName="node-a")
    await answer(await send(api, "POST", PODS, created), 201)
    marked = await answer(await send(api, "DELETE", f"{PODS}/slow"), 200)
    assert marked["metadata"]["deletionTimestamp"] == "9999-12-31T23:59:59Z"
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 2**63 - 1
    await answer(await send(api, "DELETE", f"{PODS}/slow", gracePeriodSeconds="0"), 200)
    await answer(await send(api, "GET", f"{PODS}/slow"), 404)


async def test_delete_options_are_decoded_and_validated_never_500(api: TestClient) -> None:
    await answer(await send(api, "POST", PODS, pod("p", nodeName="node-a")), 201)
    refused = [
        ({}, {"gracePeriodSeconds": "1e15"}, 400),
        ({}, {"gracePeriodSeconds": str(2**63)}, 400),
        ({}, {"propagationPolicy": "Sideways"}, 422),
        ({}, {"dryRun": "Yes"}, 422),
        ({"gracePeriodSeconds": 1e15}, {}, 400),
        ({"gracePeriodSeconds": 2**64}, {}, 400),
        ({"gracePeriodSeconds": "30"}, {}, 400),
        ({"preconditions": {"uid": 5}}, {}, 400),
        ({"orphanDependents": "yes"}, {}, 400),
        ({"propagationPolicy": "Sideways"}, {}, 422),
        ({"propagationPolicy": "Background", "orphanDependents": True}, {}, 422),
    ]
    for body, query, code in refused:
        error = await answer(await send(api, "DELETE", f"{PODS}/p", body or None, **query), code)
        assert error["kind"] == "Status", (body, query)
    marked = await answer(await send(api, "DELETE", f"{PODS}/p",
                                     gracePeriodSeconds=str(10**15)), 200)
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 10**15


@pytest.mark.parametrize("query", [{"limit": str(10**30)}, {"limit": "1e3"},
                                   {"limit": "1.5"}])
async def test_integer_query_parameters_are_int64s(api: TestClient, query: dict[str, str]) -> None:
    error = await answer(await send(api, "GET", PODS, **query), 400)
    assert error["message"].startswith("strconv.ParseInt: parsing")


async def test_a_malformed_scale_is_refused_before_it_reaches_the_workload(
    api: TestClient
) -> None:
    await answer(await send(api, "POST", DEPLOY, deployment_with_unknown_fields(),
                            fieldValidation="Ignore"), 201)
    scale = f"{DEPLOY}/d/scale"
    for body in ({"spec": "x"}, {"spec": {"replicas": 2**40}}, {"spec": {"replicas": "3"}}):
        await answer(await send(api, "PATCH", scale, body,
                                content_type="application/merge-patch+json"), 400)
    error = await answer(await send(api, "PATCH", scale, {"spec": {"replicas": -1}},
                                    content_type="application/merge-patch+json"), 422)
    assert error["details"]["causes"][0]["field"] == "spec.replicas"
    stored = await answer(await send(api, "GET", f"{DEPLOY}/d"), 200)
    assert stored["spec"]["replicas"] == 1


async def test_a_malformed_binding_is_refused_and_binds_nothing(api: TestClient) -> None:
    await answer(await send(api, "POST", PODS, pod("p")), 201)
    for body in ({"target": "node-a"}, {"metadata": "p", "target": {"name": "node-a"}},
                 {"metadata": {"uid": []}, "target": {"name": "node-a"}}):
        await answer(await send(api, "POST", f"{PODS}/p/binding", body), 400)
    stored = await answer(await send(api, "GET", f"{PODS}/p"), 200)
    assert "nodeName" not in stored["spec"]
