"""List and watch options: refused up front with Kubernetes' answers, read with its semantics."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from minik.api.errors import ApiError
from minik.apiserver.listoptions import ListOptions
from minik.store import MemoryStore
from tests.unit.apitest import bootstrapped, serving

CM = "/api/v1/namespaces/default/configmaps"
INVALID_ABC = ('resourceVersion: Invalid value: "abc": strconv.ParseUint: parsing "abc": '
               'invalid syntax')


@pytest.fixture
async def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
async def api(store: MemoryStore) -> AsyncIterator[TestClient]:
    async with serving(await bootstrapped(store), "t") as client:
        yield client


def refused(query: dict[str, str]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        ListOptions.parse(query)
    return caught.value


def causes(error: ApiError) -> list[tuple[str, str]]:
    return [(c["field"], c["reason"]) for c in error.details.get("causes", [])]


def test_a_resource_version_that_is_not_a_revision_is_invalid_as_the_watch_cache_says() -> None:
    for query in ({"resourceVersion": "abc"}, {"resourceVersion": "abc", "watch": "1"}):
        error = refused(query)
        assert (error.code, error.reason, error.message) == (422, "Invalid", INVALID_ABC)
    for text in ("-1", "+5", " 5", "1.5", "1_000", "١٢"):
        assert refused({"resourceVersion": text}).code == 422
    too_big = refused({"resourceVersion": str(2**64)})
    assert too_big.message.endswith("value out of range")
    assert ListOptions.parse({"resourceVersion": str(2**64 - 1)}).revision == 2**64 - 1


def test_exact_and_paged_reads_refuse_a_bad_version_as_the_storage_does() -> None:
    for query in ({"resourceVersion": "abc", "limit": "5"},
                  {"resourceVersion": "abc", "resourceVersionMatch": "Exact"}):
        error = refused(query)
        assert (error.code, error.reason) == (400, "BadRequest")
        assert error.message == f"invalid resource version: {INVALID_ABC}"
    error = refused({"resourceVersion": "7", "continue": "token"})
    assert error.message == "specifying resource version is not allowed when using continue"


def test_list_options_are_validated_as_kubernetes_validates_them() -> None:
    assert causes(refused({"resourceVersionMatch": "Exact"})) == [
        ("resourceVersionMatch", "FieldValueForbidden")]
    error = refused({"resourceVersion": "1", "resourceVersionMatch": "Latest"})
    assert error.code == 422 and error.details["kind"] == "ListOptions"
    assert error.details["group"] == "meta.k8s.io"
    assert error.details["causes"] == [{
        "reason": "FieldValueNotSupported", "field": "resourceVersionMatch",
        "message": 'Unsupported value: "Latest": supported values: "Exact", "NotOlderThan", ""'}]
    assert error.message.startswith('ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch')
    assert causes(refused({"resourceVersion": "0", "resourceVersionMatch": "Exact"})) == [
        ("resourceVersionMatch", "FieldValueForbidden")]
    assert len(causes(refused({"resourceVersionMatch": "NotOlderThan", "continue": "x"}))) == 2
    assert causes(refused({"sendInitialEvents": "false"})) == [
        ("sendInitialEvents", "FieldValueForbidden")]


def test_watch_options_are_validated_and_watch_list_is_refused_as_with_its_gate_off() -> None:
    assert causes(refused({"watch": "1", "resourceVersionMatch": "NotOlderThan"})) == [
        ("resourceVersionMatch", "FieldValueForbidden")]
    error = refused({"watch": "1", "sendInitialEvents": "true",
                     "resourceVersionMatch": "NotOlderThan", "allowWatchBookmarks": "1"})
    assert error.details["causes"] == [{
        "reason": "FieldValueForbidden", "field": "sendInitialEvents",
        "message": "Forbidden: sendInitialEvents is forbidden for watch unless the WatchList "
                   "feature gate is enabled"}]
    assert len(causes(refused({"watch": "1", "sendInitialEvents": "true"}))) == 2


def test_which_reads_are_exact() -> None:
    assert ListOptions.parse({"resourceVersion": "5", "resourceVersionMatch": "Exact"}).exact
    assert ListOptions.parse({"resourceVersion": "5", "limit": "2"}).exact
    assert not ListOptions.parse({"resourceVersion": "0", "limit": "2"}).exact
    assert not ListOptions.parse({"resourceVersion": "5"}).exact
    assert not ListOptions.parse({"resourceVersion": "5",
                                  "resourceVersionMatch": "NotOlderThan"}).exact


async def test_a_watch_from_an_invalid_version_is_refused_before_the_stream_starts(
    api: TestClient
) -> None:
    response = await api.get(CM, params={"watch": "true", "resourceVersion": "abc"})
    body = await response.json()
    assert response.status == 422 and body["reason"] == "Invalid"
    assert body["message"] == INVALID_ABC


async def test_a_list_from_an_invalid_version_is_refused(api: TestClient) -> None:
    response = await api.get(CM, params={"resourceVersion": "abc"})
    assert response.status == 422
    response = await api.get(CM, params={"resourceVersion": "abc", "limit": "1"})
    assert response.status == 400 and (await response.json())["reason"] == "BadRequest"


async def create(api: TestClient, name: str) -> str:
    response = await api.post(CM, json={"metadata": {"name": name}})
    assert response.status == 201
    return (await response.json())["metadata"]["resourceVersion"]


async def names(api: TestClient, **params: str) -> tuple[int, list[str]]:
    response = await api.get(CM, params=params)
    body = await response.json()
    return response.status, [i["metadata"]["name"] for i in body.get("items", [])]


async def test_an_exact_list_reads_the_state_at_its_version(api: TestClient) -> None:
    first = await create(api, "a")
    await create(api, "b")
    assert await names(api, resourceVersion=first, resourceVersionMatch="Exact") == (200, ["a"])
    assert await names(api, resourceVersion=first, limit="5") == (200, ["a"])
    assert await names(api, resourceVersion=first, resourceVersionMatch="NotOlderThan") == (
        200, ["a", "b"])
    assert await names(api, resourceVersion=first) == (200, ["a", "b"])


async def test_a_list_at_a_compacted_version_is_gone_and_a_future_one_too_large(
    api: TestClient, store: MemoryStore
) -> None:
    first = await create(api, "a")
    await create(api, "b")
    await store.compact(keep=0)
    response = await api.get(CM, params={"resourceVersion": first,
                                         "resourceVersionMatch": "Exact"})
    body = await response.json()
    assert (response.status, body["reason"]) == (410, "Expired")
    assert body["message"] == "The resourceVersion for the provided list is too old."
    future = str(int(first) + 100)
    for match in ("Exact", "NotOlderThan"):
        response = await api.get(CM, params={"resourceVersion": future,
                                             "resourceVersionMatch": match})
        body = await response.json()
        assert (response.status, body["reason"]) == (504, "Timeout")
        assert body["message"].startswith(f"Timeout: Too large resource version: {future}")
        assert body["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"


async def test_a_watch_list_request_is_refused_so_clients_fall_back_to_list_and_watch(
    api: TestClient
) -> None:
    response = await api.get(CM, params={
        "watch": "true", "sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan",
        "allowWatchBookmarks": "true"})
    body = json.loads(await response.text())
    assert response.status == 422 and "WatchList feature gate" in body["message"]
