"""Typed access to the object parts every component reads: metadata, owners, conditions."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from typing import Any

import mypy.api
import pytest

from minik.api import meta
from minik.api.objects import Condition, DeploymentCondition, Pod

ROOT = Path(meta.__file__).parents[2]


def owned_pod() -> Pod:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "web-1", "namespace": "shop", "uid": "u-1", "resourceVersion": "42",
            "generation": 3, "labels": {"app": "web"}, "annotations": {"note": "x"},
            "finalizers": ["f"], "creationTimestamp": "2024-05-01T10:00:00Z",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Thing", "name": "t", "uid": "t-1"},
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs-1",
                 "controller": True},
            ],
        },
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": "True"}]},
    }


def test_the_metadata_accessors_read_a_typed_object() -> None:
    pod = owned_pod()
    assert (meta.name_of(pod), meta.namespace_of(pod), meta.uid_of(pod)) == ("web-1", "shop", "u-1")
    assert (meta.resource_version_of(pod), meta.generation_of(pod)) == ("42", 3)
    assert meta.labels_of(pod) == {"app": "web"}
    assert meta.annotations_of(pod) == {"note": "x"}
    assert meta.finalizers_of(pod) == ["f"]
    assert meta.created_at(pod) == dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)
    assert not meta.is_being_deleted(pod)


@pytest.mark.parametrize("obj", [{}, {"metadata": None}, {"metadata": {}}])
def test_missing_metadata_reads_as_empty_values(obj: dict[str, Any]) -> None:
    assert (meta.name_of(obj), meta.namespace_of(obj), meta.uid_of(obj)) == ("", None, "")
    assert (meta.resource_version_of(obj), meta.generation_of(obj)) == ("", 0)
    assert (meta.labels_of(obj), meta.annotations_of(obj), meta.finalizers_of(obj)) == ({}, {}, [])
    assert meta.owner_references_of(obj) == []
    assert meta.controller_of(obj) is None
    assert meta.created_at(obj) is None
    assert obj.get("metadata") in (None, {})


def test_an_object_with_a_deletion_timestamp_is_being_deleted() -> None:
    assert meta.is_being_deleted({"metadata": {"deletionTimestamp": "2024-05-01T10:00:00Z"}})


def test_controller_of_is_the_owner_reference_marked_controller() -> None:
    pod = owned_pod()
    ref = meta.controller_of(pod)
    assert ref is not None and ref["uid"] == "rs-1"
    assert [r["uid"] for r in meta.owner_references_of(pod)] == ["t-1", "rs-1"]
    pod["metadata"]["ownerReferences"][1]["controller"] = False
    assert meta.controller_of(pod) is None


def test_a_new_controller_ref_names_the_owner_and_blocks_its_deletion() -> None:
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
             "metadata": {"name": "web", "uid": "rs-1"}}
    assert meta.new_controller_ref(owner) == {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs-1",
        "controller": True, "blockOwnerDeletion": True,
    }
    cached = {"metadata": {"name": "web", "uid": "rs-1"}}
    ref = meta.new_controller_ref(cached, api_version="apps/v1", kind="ReplicaSet")
    assert (ref["apiVersion"], ref["kind"]) == ("apps/v1", "ReplicaSet")


def available(status: str, reason: str, at: str) -> DeploymentCondition:
    return {"type": "Available", "status": "True" if status == "True" else "False",
            "reason": reason, "lastTransitionTime": at, "lastUpdateTime": at}


def test_with_condition_adds_a_condition_of_a_new_type_last() -> None:
    first: Condition = {"type": "Progressing", "status": "True"}
    added = available("True", "Min", "t1")
    assert meta.with_condition([first], added) == [first, added]
    assert meta.with_condition(None, added) == [added]


def test_with_condition_leaves_one_with_the_same_status_and_reason_as_it_is() -> None:
    current = available("True", "Min", "t1")
    assert meta.with_condition([current], available("True", "Min", "t2")) == [current]


def test_with_condition_keeps_the_transition_time_while_the_status_holds() -> None:
    current = available("True", "Min", "t1")
    [changed] = meta.with_condition([current], available("True", "Other", "t2"))
    assert (changed["reason"], changed["lastUpdateTime"]) == ("Other", "t2")
    assert changed["lastTransitionTime"] == "t1"


def test_with_condition_replaces_one_whose_status_changed_and_moves_it_last() -> None:
    other: Condition = {"type": "Progressing", "status": "True"}
    current = available("True", "Min", "t1")
    wanted = available("False", "Min", "t2")
    assert meta.with_condition([current, other], wanted) == [other, wanted]
    assert current["lastTransitionTime"] == "t1"


def test_without_condition_drops_every_condition_of_the_type() -> None:
    ready: Condition = {"type": "Ready", "status": "True"}
    assert meta.without_condition([ready, {"type": "X", "status": "True"}], "X") == [ready]
    assert meta.without_condition(None, "X") == []


def test_find_condition_and_condition_true_read_a_condition_by_type() -> None:
    conditions: list[Condition] = [{"type": "Ready", "status": "False"},
                                   {"type": "Scheduled", "status": "True"}]
    assert meta.find_condition(conditions, "Ready") == {"type": "Ready", "status": "False"}
    assert meta.find_condition(conditions, "Missing") is None
    assert meta.condition_true(conditions, "Scheduled")
    assert not meta.condition_true(conditions, "Ready")
    assert not meta.condition_true(None, "Ready")


@pytest.mark.parametrize(("previous", "status", "expected"), [
    (None, "True", "now"),
    ({"type": "Ready", "status": "True", "lastTransitionTime": "then"}, "True", "then"),
    ({"type": "Ready", "status": "False", "lastTransitionTime": "then"}, "True", "now"),
    ({"type": "Ready", "status": "True", "lastTransitionTime": None}, "True", "now"),
])
def test_a_transition_time_moves_only_when_the_status_does(
    previous: Condition | None, status: str, expected: str
) -> None:
    assert meta.transition_time(previous, status, "now") == expected


def test_pod_and_node_readiness_is_their_ready_condition() -> None:
    pod = owned_pod()
    assert meta.is_pod_ready(pod)
    assert meta.pod_condition(pod, "Ready") == {"type": "Ready", "status": "True"}
    pod["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    assert not meta.is_pod_ready(pod)
    assert not meta.is_pod_ready({"metadata": {"name": "new"}})
    node = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    assert meta.is_node_ready(node)
    assert not meta.is_node_ready({"status": {"conditions": [{"type": "Ready",
                                                              "status": "Unknown"}]}})


@pytest.mark.parametrize(("phase", "terminal"), [
    ("Pending", False), ("Running", False), ("Succeeded", True), ("Failed", True), (None, False),
])
def test_a_pod_that_succeeded_or_failed_is_terminal(phase: str | None, terminal: bool) -> None:
    assert meta.is_pod_terminal({"status": {"phase": phase}}) is terminal


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-05-01T10:00:00Z", dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)),
    ("2024-05-01T12:00:00.250000+02:00",
     dt.datetime(2024, 5, 1, 10, 0, 0, 250000, tzinfo=dt.UTC)),
    ("2024-05-01T10:00:00", dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)),
    ("yesterday", None),
    ("", None),
    (None, None),
])
def test_parse_time_reads_rfc3339_as_an_aware_time(
    text: str | None, expected: dt.datetime | None
) -> None:
    assert meta.parse_time(text) == expected


def test_a_misspelt_key_of_a_typed_shape_is_a_type_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    source = tmp_path / "reader.py"
    source.write_text(textwrap.dedent("""
        from minik.api import meta
        from minik.api.objects import Pod

        def owner_uid(pod: Pod) -> str:
            ref = meta.controller_of(pod)
            return ref["uidd"] if ref else ""

        def image(pod: Pod) -> str:
            return pod["spec"]["containers"][0]["imagee"]
    """))
    out, _, status = mypy.api.run([
        "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
        "--follow-imports", "silent", str(source),
    ])
    assert status == 1, out
    assert 'TypedDict "OwnerReference" has no key "uidd"' in out
    assert 'TypedDict "Container" has no key "imagee"' in out
