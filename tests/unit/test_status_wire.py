"""metav1.Status bodies and JSON framing, byte for byte as Kubernetes writes them.

Official clients compare error and success bodies exactly: Kubernetes writes
the Status fields in the Go struct's order (`kind, apiVersion, metadata,
status, message, reason, details, code`), omits every empty field (an empty
`group` names the core group), and its JSON encoder escapes `<`, `>`, `&`
and ends every body with a newline. The expected bytes below are what a
Kubernetes 1.33 API server answers for the same requests.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from minik.api import errors
from minik.api.errors import ApiError, Cause, invalid, not_found
from tests.unit.test_apiserver import CM, DEPLOY, api

__all__ = ["api"]
PODS = "/api/v1/namespaces/default/pods"


async def raw(api: TestClient, method: str, path: str, body: Any = None,
              **headers: str) -> tuple[int, str]:
    data = None if body is None else json.dumps(body)
    response = await api.request(method, path, data=data,
                                 headers={"Content-Type": "application/json", **headers})
    return response.status, await response.text()


def ordered_keys(text: str) -> list[tuple[str, Any]]:
    return json.loads(text, object_pairs_hook=list)


def test_a_status_lists_its_fields_in_the_go_structs_order_and_omits_empty_ones():
    error = not_found("configmaps", "x")
    assert json.dumps(error.status(), separators=(",", ":")) == (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        '"message":"configmaps \\"x\\" not found","reason":"NotFound",'
        '"details":{"name":"x","kind":"configmaps"},"code":404}')


def test_status_details_keep_the_go_order_and_drop_empty_cause_fields():
    error = invalid("ConfigMap", "x", [Cause("", "too many", "FieldValueTooMany")])
    details = error.status()["details"]
    assert list(details) == ["name", "kind", "causes"]
    assert details["causes"] == [{"reason": "FieldValueTooMany", "message": "too many"}]
    shuffled = ApiError(409, "Conflict", "m", {"retryAfterSeconds": 1, "uid": "u", "kind": "k",
                                               "group": "apps", "name": "n"})
    assert list(shuffled.status()["details"]) == ["name", "group", "kind", "uid",
                                                  "retryAfterSeconds"]


async def test_not_found_is_the_exact_kubernetes_body(api: TestClient):
    assert await raw(api, "GET", f"{CM}/nope") == (404, (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        '"message":"configmaps \\"nope\\" not found","reason":"NotFound",'
        '"details":{"name":"nope","kind":"configmaps"},"code":404}\n'))


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/apis/nothing/v1/here",
                                  f"{CM}/x/nosuchsubresource"])
async def test_a_path_not_served_is_a_not_found_with_empty_details(api: TestClient, path: str):
    assert await raw(api, "GET", path) == (404, (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        '"message":"the server could not find the requested resource","reason":"NotFound",'
        '"details":{},"code":404}\n'))


async def test_a_method_no_route_takes_is_kubernetes_generic_405(api: TestClient):
    assert await raw(api, "PUT", "/api") == (405, (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        '"message":"the server does not allow this method on the requested resource",'
        '"reason":"MethodNotAllowed","details":{},"code":405}\n'))


def test_an_internal_error_names_its_cause_as_kubernetes_does():
    assert json.dumps(errors.internal("boom").status(), separators=(",", ":")) == (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        '"message":"Internal error occurred: boom","reason":"InternalError",'
        '"details":{"causes":[{"message":"boom"}]},"code":500}')


def test_details_given_empty_are_written_and_absent_ones_are_not():
    assert ApiError(404, "NotFound", "m", {}).status()["details"] == {}
    assert "details" not in ApiError(400, "BadRequest", "m").status()
    assert ApiError.from_status({"details": {}}, code=404).details == {}
    assert ApiError.from_status({}, code=400).details is None


def test_a_client_reads_an_error_answer_from_its_status_body_or_else_its_text():
    status = not_found("configmaps", "x").status()
    parsed = ApiError.from_response(404, json.dumps(status).encode(), "Not Found")
    assert (parsed.code, parsed.reason, parsed.message) == (404, "NotFound", status["message"])
    assert parsed.details == status["details"]
    page = ApiError.from_response(502, b"<html>bad gateway</html>\n", "Bad Gateway")
    assert (page.code, page.reason, page.message) == (502, "InternalError",
                                                      "<html>bad gateway</html>")
    assert ApiError.from_response(503, b"", "Service Unavailable").message == (
        "Service Unavailable")
    assert ApiError.from_response(500, b'{"kind":"Pod"}', "x").message == '{"kind":"Pod"}'


async def test_a_named_groups_error_carries_its_group(api: TestClient):
    assert await raw(api, "GET", f"{DEPLOY}/nope") == (404, (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        '"message":"deployments.apps \\"nope\\" not found","reason":"NotFound",'
        '"details":{"name":"nope","group":"apps","kind":"deployments"},"code":404}\n'))


async def test_already_exists_is_the_exact_kubernetes_body(api: TestClient):
    body = {"metadata": {"name": "x"}}
    assert (await raw(api, "POST", CM, body))[0] == 201
    assert await raw(api, "POST", CM, body) == (409, (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        '"message":"configmaps \\"x\\" already exists","reason":"AlreadyExists",'
        '"details":{"name":"x","kind":"configmaps"},"code":409}\n'))


async def test_unauthorized_is_the_exact_kubernetes_body(api: TestClient):
    assert await raw(api, "GET", CM, Authorization="Bearer wrong") == (401, (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        '"message":"Unauthorized","reason":"Unauthorized","code":401}\n'))


async def test_an_invalid_object_answers_causes_in_kubernetes_order(api: TestClient):
    status, text = await raw(api, "POST", CM, {"metadata": {"name": "Bad_Name"}})
    assert status == 422
    assert text.endswith("}\n")
    pairs = ordered_keys(text)
    assert [k for k, _ in pairs] == ["kind", "apiVersion", "metadata", "status", "message",
                                     "reason", "details", "code"]
    details = dict(pairs)["details"]
    assert [k for k, _ in details] == ["name", "kind", "causes"]
    assert [[k for k, _ in cause] for cause in dict(details)["causes"]] == [
        ["reason", "message", "field"]]


async def test_deleting_a_configmap_answers_a_success_status_naming_it(api: TestClient):
    _, created = await raw(api, "POST", CM, {"metadata": {"name": "x"}})
    uid = json.loads(created)["metadata"]["uid"]
    assert await raw(api, "DELETE", f"{CM}/x") == (200, (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success",'
        f'"details":{{"name":"x","kind":"configmaps","uid":"{uid}"}}}}\n'))


async def test_deleting_a_deployment_answers_a_status_with_its_group(api: TestClient):
    body = {"metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}}
    _, created = await raw(api, "POST", DEPLOY, body)
    uid = json.loads(created)["metadata"]["uid"]
    assert await raw(api, "DELETE", f"{DEPLOY}/web") == (200, (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success",'
        f'"details":{{"name":"web","group":"apps","kind":"deployments","uid":"{uid}"}}}}\n'))


async def test_deleting_a_pod_answers_the_pod_as_kubernetes_returns_deleted_pods(
    api: TestClient,
):
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}
    await raw(api, "POST", PODS, pod)
    status, text = await raw(api, "DELETE", f"{PODS}/p")
    assert status == 200
    assert json.loads(text)["kind"] == "Pod"


async def test_an_object_held_by_a_finalizer_comes_back_as_it_now_is(api: TestClient):
    await raw(api, "POST", CM, {"metadata": {"name": "held", "finalizers": ["example.com/x"]}})
    status, text = await raw(api, "DELETE", f"{CM}/held")
    assert status == 200
    answer = json.loads(text)
    assert answer["kind"] == "ConfigMap"
    assert answer["metadata"]["deletionTimestamp"]


async def test_binding_answers_the_exact_kubernetes_success_status(api: TestClient):
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}
    await raw(api, "POST", PODS, pod)
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}}
    assert await raw(api, "POST", f"{PODS}/p/binding", binding) == (201, (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201}\n'))


async def test_every_json_body_ends_with_a_newline(api: TestClient):
    await raw(api, "POST", CM, {"metadata": {"name": "x"}})
    for path in (f"{CM}/x", CM, "/api/v1"):
        status, text = await raw(api, "GET", path)
        assert status == 200
        assert text.endswith("}\n") and not text.endswith("\n\n"), path


async def test_html_characters_are_escaped_as_go_escapes_them(api: TestClient):
    body = {"metadata": {"name": "x"}, "data": {"k": "<a&b>\u2028é"}}
    _, text = await raw(api, "POST", CM, body)
    assert '"k":"\\u003ca\\u0026b\\u003e\\u2028é"' in text
    assert json.loads(text)["data"]["k"] == "<a&b>\u2028é"
