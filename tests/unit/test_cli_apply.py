"""Client-side apply decisions, checked against a fake client that records requests."""

from __future__ import annotations

import json
from typing import Any

import pytest

from minik.api.errors import ApiError, conflict, not_found
from minik.cli.apply import (
    FIELD_MANAGER,
    LAST_APPLIED,
    SMP,
    Applier,
    ApplyError,
    last_applied,
    namespaces_first,
    with_last_applied,
)
from minik.cli.manifests import Manifest

DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment",
          "metadata": {"name": "web", "labels": {"app": "web"}},
          "spec": {"replicas": 2, "template": {"spec": {"containers": [
              {"name": "nginx", "image": "nginx:1.25"}]}}}}
PARAMS = {"fieldManager": FIELD_MANAGER, "fieldValidation": "Strict"}


class FakeClient:
    """Answers from a queue of responses (or errors) and records every request."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.requests.append({"method": method, "path": path, **kwargs})
        answer = self.answers.pop(0)
        if isinstance(answer, ApiError):
            raise answer
        return answer

    def calls(self) -> list[tuple[str, str]]:
        return [(r["method"], r["path"]) for r in self.requests]


class RecordingDiff:
    def __init__(self, *patches: dict) -> None:
        self.patches = list(patches)
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, original: Any, modified: dict, current: dict, *, kind: str) -> dict:
        self.calls.append((original, modified, current, kind))
        return self.patches.pop(0)


def manifest(obj: dict = DEPLOY) -> Manifest:
    return Manifest("deploy.yaml", json.loads(json.dumps(obj)))


def test_the_annotation_is_the_compact_sorted_manifest_with_a_newline() -> None:
    modified = with_last_applied({"kind": "ConfigMap", "apiVersion": "v1",
                                  "metadata": {"name": "c", "namespace": "default"},
                                  "data": {"b": "<2>", "a": "1"}})
    assert modified["metadata"]["annotations"][LAST_APPLIED] == (
        '{"apiVersion":"v1","data":{"a":"1","b":"\\u003c2\\u003e"},"kind":"ConfigMap",'
        '"metadata":{"annotations":{},"name":"c","namespace":"default"}}\n')


def test_the_annotation_never_contains_itself() -> None:
    once = with_last_applied(DEPLOY)
    twice = with_last_applied(once)
    assert twice == once
    assert last_applied(twice) == {**DEPLOY, "metadata": {
        **DEPLOY["metadata"], "annotations": {}}}


def test_a_missing_object_is_created_with_the_annotation_and_namespace() -> None:
    client = FakeClient(not_found("deployments", "web", group="apps"), {"created": True})
    result = Applier(client, namespace="team", diff=RecordingDiff()).apply(manifest())
    assert result.action == "created"
    assert client.calls() == [("GET", "/apis/apps/v1/namespaces/team/deployments/web"),
                              ("POST", "/apis/apps/v1/namespaces/team/deployments")]
    post = client.requests[1]
    assert post["params"] == PARAMS
    assert post["body"]["metadata"]["namespace"] == "team"
    assert json.loads(post["body"]["metadata"]["annotations"][LAST_APPLIED])["spec"] == \
        DEPLOY["spec"]


def test_an_unchanged_object_sends_no_patch() -> None:
    live = with_last_applied({**DEPLOY, "metadata": {**DEPLOY["metadata"],
                                                     "namespace": "default"}})
    diff = RecordingDiff({})
    result = Applier(FakeClient(live), namespace="default", diff=diff).apply(manifest())
    assert result.action == "unchanged"
    original, modified, current, kind = diff.calls[0]
    assert kind == "Deployment" and current == live
    assert original == last_applied(live)
    assert modified["metadata"]["annotations"][LAST_APPLIED] == \
        live["metadata"]["annotations"][LAST_APPLIED]


def test_a_changed_object_is_patched_with_a_strategic_merge_patch() -> None:
    patch = {"spec": {"replicas": 3}}
    client = FakeClient({"metadata": {"name": "web"}}, {"patched": True})
    result = Applier(client, namespace="default", diff=RecordingDiff(patch)).apply(manifest())
    assert result.action == "configured"
    request = client.requests[1]
    assert (request["method"], request["body"], request["content_type"], request["params"]) \
        == ("PATCH", patch, SMP, PARAMS)


def test_live_objects_without_the_annotation_diff_against_nothing() -> None:
    diff = RecordingDiff({"spec": {"replicas": 2}})
    Applier(FakeClient({"metadata": {"name": "web"}}, {}), namespace="default",
            diff=diff).apply(manifest())
    assert diff.calls[0][0] is None


def test_a_conflict_rereads_and_retries() -> None:
    stale, fresh = {"metadata": {"resourceVersion": "1"}}, {"metadata": {"resourceVersion": "2"}}
    client = FakeClient(stale, conflict("deployments", "web", group="apps"), fresh, {"ok": 1})
    diff = RecordingDiff({"spec": {"replicas": 3}}, {"spec": {"replicas": 3}})
    sleeps: list[float] = []
    result = Applier(client, namespace="default", diff=diff, sleep=sleeps.append).apply(
        manifest())
    assert result.action == "configured"
    assert [c[0] for c in client.calls()] == ["GET", "PATCH", "GET", "PATCH"]
    assert diff.calls[1][2] == fresh
    assert sleeps == []


def test_conflicts_give_up_after_five_retries() -> None:
    error = conflict("deployments", "web", group="apps")
    answers: list[Any] = [{"metadata": {}}]
    for _ in range(5):
        answers += [error, {"metadata": {}}]
    answers.append(error)
    diff = RecordingDiff(*[{"spec": {"replicas": 3}}] * 6)
    sleeps: list[float] = []
    with pytest.raises(ApplyError) as e:
        Applier(FakeClient(*answers), namespace="default", diff=diff,
                sleep=sleeps.append).apply(manifest())
    assert e.value.api_error is not None and e.value.api_error.reason == "Conflict"
    assert str(e.value).startswith("error when applying patch:\n{\"spec\":{\"replicas\":3}}\n"
                                   "to:\nResource: \"apps/v1, Resource=deployments\"")
    assert sleeps == [1.0] * 4


def test_create_failures_name_the_file() -> None:
    client = FakeClient(not_found("deployments", "web", group="apps"),
                        not_found("namespaces", "nope"))
    with pytest.raises(ApplyError) as e:
        Applier(client, namespace="nope", diff=RecordingDiff()).apply(manifest())
    assert e.value.api_error is not None
    assert e.value.api_error.message == \
        'error when creating "deploy.yaml": namespaces "nope" not found'


def test_cluster_scoped_objects_get_no_namespace() -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team",
                                                                "namespace": "x"}}
    client = FakeClient(not_found("namespaces", "team"), {})
    Applier(client, namespace="default", diff=RecordingDiff()).apply(manifest(ns))
    assert client.calls() == [("GET", "/api/v1/namespaces/team"), ("POST", "/api/v1/namespaces")]
    assert "namespace" not in client.requests[1]["body"]["metadata"]


def test_unknown_kinds_fail_without_requests() -> None:
    client = FakeClient()
    with pytest.raises(ApplyError, match='no matches for kind "Widget" in version "x/v1"'):
        Applier(client, namespace="default").apply(
            manifest({"apiVersion": "x/v1", "kind": "Widget", "metadata": {"name": "w"}}))
    assert client.requests == []


def test_server_dry_run_asks_the_server_not_to_persist() -> None:
    client = FakeClient(not_found("deployments", "web", group="apps"), {})
    Applier(client, namespace="default", dry_run="server", diff=RecordingDiff()).apply(
        manifest())
    assert client.requests[1]["params"]["dryRun"] == "All"


def test_namespaces_are_applied_first_and_the_rest_keep_file_order() -> None:
    objs = [{"apiVersion": "v1", "kind": k, "metadata": {"name": n}}
            for k, n in (("ConfigMap", "a"), ("Namespace", "ns"), ("Secret", "b"))]
    ordered = namespaces_first([Manifest("f", o) for o in objs])
    assert [m.name for m in ordered] == ["ns", "a", "b"]


def test_generated_names_cannot_be_applied() -> None:
    client = FakeClient()
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "g-"}}
    with pytest.raises(ApplyError, match="from g-: cannot use generate name with apply"):
        Applier(client, namespace="default").apply(manifest(obj))
    assert client.requests == []
