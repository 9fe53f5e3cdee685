"""Content negotiation from the Accept header, as Kubernetes' apiserver does it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from minik.apiserver.negotiation import (
    AGGREGATED_DISCOVERY,
    DISCOVERY_V2,
    DISCOVERY_V2BETA1,
    JSON,
    PLAIN,
    RESOURCE,
    TABLE_V1,
    TABLE_V1BETA1,
    WATCH,
    YAML,
    Representation,
    negotiate,
    parse_accept,
)
from minik.apiserver.server import bootstrap_namespaces
from minik.apiserver.storage import ObjectStorage
from minik.store import MemoryStore
from tests.unit.apitest import serving

PROTOBUF = "application/vnd.kubernetes.protobuf"
KUBECTL_127_DISCOVERY = ("application/json;g=apidiscovery.k8s.io;v=v2beta1;"
                         "as=APIGroupDiscoveryList,application/json")
KUBECTL_133_DISCOVERY = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                         "application/json;g=apidiscovery.k8s.io;v=v2beta1;"
                         "as=APIGroupDiscoveryList,application/json")
KUBECTL_TABLE = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
                 "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
CM = "/api/v1/namespaces/default/configmaps"


def test_clauses_are_ordered_by_quality_then_concrete_before_wildcard() -> None:
    clauses = parse_accept("*/*;q=0.8, application/yaml;q=0.9, text/*, application/json")
    assert [(c.type, c.subtype, c.q) for c in clauses] == [
        ("application", "json", 1.0), ("text", "*", 1.0), ("application", "yaml", 0.9),
        ("*", "*", 0.8)]


def test_equal_clauses_keep_the_clients_order_and_their_parameters() -> None:
    clauses = parse_accept(KUBECTL_TABLE)
    assert [c.conversion for c in clauses] == [TABLE_V1, TABLE_V1BETA1, None]
    assert clauses[0].params == {"as": "Table", "v": "v1", "g": "meta.k8s.io"}


def test_a_bare_star_is_any_type_and_a_type_without_subtype_is_skipped() -> None:
    assert [(c.type, c.subtype) for c in parse_accept("*, text")] == [("*", "*")]


@pytest.mark.parametrize(("accept", "expected"), [
    ("", Representation(JSON)),
    ("*/*", Representation(JSON)),
    ("application/*", Representation(JSON)),
    ("application/yaml", Representation(YAML)),
    ("application/json; charset=utf-8; pretty=1", Representation(JSON)),
    (f"{PROTOBUF}, application/json", Representation(JSON)),
    (f"{PROTOBUF}, */*", Representation(JSON)),
    (KUBECTL_TABLE, Representation(JSON, TABLE_V1)),
    ("application/json;as=Table;v=v1beta1;g=meta.k8s.io", Representation(JSON, TABLE_V1BETA1)),
    ("application/yaml;as=Table;v=v1;g=meta.k8s.io", Representation(YAML, TABLE_V1)),
    ("application/json;as=Table;v=v2;g=meta.k8s.io, application/yaml", Representation(YAML)),
    ("application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io, application/json",
     Representation(JSON)),
    ("application/json;q=0.5, application/yaml", Representation(YAML)),
    ("application/json;stream=watch", Representation(JSON)),
])
def test_resource_answers_take_the_first_acceptable_clause(accept: str,
                                                            expected: Representation) -> None:
    assert negotiate(accept, RESOURCE) == expected


@pytest.mark.parametrize(("accept", "expected"), [
    ("application/json;q=0", Representation(JSON)),
    ("application/yaml;q=0, application/json;q=0.5", Representation(JSON)),
    ("application/json;q=0, */*", Representation(JSON)),
    ("application/yaml;q=0, */*", Representation(JSON)),
    ("application/json;q=0, application/yaml;q=0", Representation(JSON)),
    ("application/json;as=Table;v=v1;g=meta.k8s.io;q=0", Representation(JSON, TABLE_V1)),
])
def test_quality_only_orders_the_clauses_even_at_zero(accept: str,
                                                       expected: Representation) -> None:
    assert negotiate(accept, RESOURCE) == expected


@pytest.mark.parametrize("accept", [PROTOBUF, "text/html", "application/yaml;stream=watch"])
def test_nothing_acceptable_means_no_representation(accept: str) -> None:
    assert negotiate(accept, RESOURCE) is None


def test_watch_streams_are_json_only() -> None:
    assert negotiate("application/yaml", WATCH) is None
    assert negotiate("application/yaml, */*", WATCH) == Representation(JSON)
    assert negotiate(KUBECTL_TABLE, WATCH) == Representation(JSON, TABLE_V1)


@pytest.mark.parametrize(("accept", "expected"), [
    (KUBECTL_133_DISCOVERY, DISCOVERY_V2),
    (KUBECTL_127_DISCOVERY, DISCOVERY_V2BETA1),
    ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList;q=0.9,"
     "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", DISCOVERY_V2),
    ("application/json, application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
     DISCOVERY_V2),
])
def test_discovery_is_aggregated_in_the_version_asked_for(accept: str, expected: Any) -> None:
    assert negotiate(accept, AGGREGATED_DISCOVERY) == Representation(JSON, expected)


@pytest.mark.parametrize("accept", [
    "", "application/json", "*/*",
    "application/json;g=apidiscovery.k8s.io;v=v1;as=APIGroupDiscoveryList, application/json",
])
def test_discovery_is_legacy_unless_an_aggregated_version_is_asked_for(accept: str) -> None:
    assert negotiate(accept, AGGREGATED_DISCOVERY) is None
    assert negotiate(accept, PLAIN) == Representation(JSON)


def test_the_content_type_names_a_discovery_conversion_but_not_a_table() -> None:
    assert Representation(JSON, DISCOVERY_V2BETA1).content_type() == (
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList")
    assert Representation(JSON, TABLE_V1).content_type() == JSON


@pytest.fixture
async def api() -> AsyncIterator[TestClient]:
    storage = ObjectStorage(MemoryStore())
    await bootstrap_namespaces(storage)
    async with serving(storage, "t") as client:
        yield client


async def _get(api: TestClient, path: str, accept: str, **params: str) -> tuple[int, str, str]:
    response = await api.get(path, headers={"Accept": accept}, params=params)
    return response.status, response.headers.get("Content-Type", ""), await response.text()


@pytest.mark.parametrize(("path", "kind"), [("/api", None), ("/apis", "apps")])
async def test_kubectl_127_gets_v2beta1_aggregated_discovery(api: TestClient, path: str,
                                                             kind: str | None) -> None:
    status, content_type, text = await _get(api, path, KUBECTL_127_DISCOVERY)
    assert status == 200
    params = {p.strip() for p in content_type.split(";")}
    assert {"application/json", "g=apidiscovery.k8s.io", "v=v2beta1",
            "as=APIGroupDiscoveryList"} <= params
    body = json.loads(text)
    assert body["apiVersion"] == "apidiscovery.k8s.io/v2beta1"
    names = [item["metadata"].get("name") for item in body["items"]]
    assert kind in names


async def test_kubectl_133_gets_v2_and_plain_clients_get_the_legacy_lists(
        api: TestClient) -> None:
    _, content_type, text = await _get(api, "/apis", KUBECTL_133_DISCOVERY)
    assert "v=v2;" in content_type.replace(" ", "") + ";"
    assert json.loads(text)["apiVersion"] == "apidiscovery.k8s.io/v2"
    _, _, text = await _get(api, "/api", "application/json, */*")
    assert json.loads(text)["kind"] == "APIVersions"
    _, _, text = await _get(api, "/apis", "")
    assert json.loads(text)["kind"] == "APIGroupList"


async def _not_acceptable(api: TestClient, method: str, path: str, accept: str,
                          body: Any = None, **params: str) -> dict[str, Any]:
    response = await api.request(method, path, headers={"Accept": accept}, json=body,
                                 params=params)
    assert response.status == 406
    status = yaml.safe_load(await response.text())  # JSON, or YAML when that was accepted
    assert status["reason"] == "NotAcceptable"
    assert "application/json" in status["message"]
    return status


@pytest.mark.parametrize("path", ["/api", "/apis", "/api/v1", "/apis/apps/v1", "/apis/apps", CM])
async def test_a_client_accepting_only_protobuf_is_refused_with_406(api: TestClient,
                                                                    path: str) -> None:
    await _not_acceptable(api, "GET", path, PROTOBUF)


async def test_a_refused_create_writes_nothing(api: TestClient) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept-out"}}
    await _not_acceptable(api, "POST", CM, "text/html", cm)
    assert (await api.get(f"{CM}/kept-out")).status == 404


async def test_a_yaml_watch_is_refused_with_406(api: TestClient) -> None:
    await _not_acceptable(api, "GET", CM, YAML, watch="true")


@pytest.mark.parametrize(("path", "token", "code"), [
    (f"{CM}/missing", "t", 404), ("/api/v1/nothing-here", "t", 404), (CM, "wrong", 401),
])
async def test_error_statuses_are_yaml_when_yaml_is_negotiated(
        api: TestClient, path: str, token: str, code: int) -> None:
    response = await api.get(path, headers={"Accept": YAML, "Authorization": f"Bearer {token}"})
    assert (response.status, response.content_type) == (code, YAML)
    text = await response.text()
    assert text.startswith("apiVersion: v1\ncode: ")  # keys sorted, as Kubernetes writes YAML
    status = yaml.safe_load(text)
    assert (status["kind"], status["code"]) == ("Status", code)


@pytest.mark.parametrize("accept", [KUBECTL_TABLE, f"{PROTOBUF},application/json", PROTOBUF,
                                    "text/html", ""])
async def test_error_statuses_are_json_otherwise(api: TestClient, accept: str) -> None:
    response = await api.get(f"{CM}/missing", headers={"Accept": accept})
    assert response.content_type == JSON
    assert (await response.json())["reason"] in ("NotFound", "NotAcceptable")


async def test_protobuf_first_clients_get_json(api: TestClient) -> None:
    status, content_type, text = await _get(api, CM, f"{PROTOBUF},application/json")
    assert (status, content_type.split(";")[0]) == (200, JSON)
    assert json.loads(text)["kind"] == "ConfigMapList"


async def test_yaml_is_served_when_asked_for(api: TestClient) -> None:
    status, content_type, text = await _get(api, "/api/v1/namespaces/default", YAML)
    assert (status, content_type.split(";")[0]) == (200, YAML)
    assert yaml.safe_load(text)["metadata"]["name"] == "default"


async def test_tables_come_in_the_meta_version_asked_for(api: TestClient) -> None:
    accept = "application/json;as=Table;v=v1beta1;g=meta.k8s.io, application/json"
    _, _, text = await _get(api, "/api/v1/namespaces", accept)
    table = json.loads(text)
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1beta1")
    assert {row["object"]["apiVersion"] for row in table["rows"]} == {"meta.k8s.io/v1beta1"}
    _, _, text = await _get(api, "/api/v1/namespaces/default", KUBECTL_TABLE)
    assert json.loads(text)["apiVersion"] == "meta.k8s.io/v1"


async def test_paths_that_render_no_api_objects_are_not_negotiated(
        api: TestClient) -> None:
    assert (await _get(api, "/version", PROTOBUF))[0] == 200
    assert (await _get(api, "/healthz", PROTOBUF))[0] == 200
