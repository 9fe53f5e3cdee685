"""The pure rules behind `minik wait`, `create job|cronjob`, `logs TYPE/NAME` and `describe job`."""

from __future__ import annotations

from typing import Any

import pytest

from minik.cli.attachable import by_logging
from minik.cli.create import job_from_cronjob
from minik.cli.describe_workloads import capped_indexes
from minik.cli.wait import (
    WEEK,
    ConditionIs,
    Deleted,
    JsonPathIs,
    WaitFailed,
    parse_for,
    split_on_single_equals,
    timeout_seconds,
)


def job(conditions: list[dict[str, Any]], generation: int = 1, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "x", "generation": generation},
            "status": {"conditions": conditions, **status}}


class TestFor:
    def test_condition_defaults_to_true_and_takes_a_value(self) -> None:
        assert parse_for("condition=Complete") == ConditionIs("Complete", "true")
        assert parse_for("condition=Ready=false") == ConditionIs("Ready", "false")
        assert isinstance(parse_for("DELETE"), Deleted)

    def test_jsonpath_splits_on_single_equals_only(self) -> None:
        assert split_on_single_equals("a.b====c===d") == ["a.b====c==", "d"]
        assert parse_for("jsonpath={.status.phase}=Running") == JsonPathIs(
            "{.status.phase}", "Running")
        assert parse_for("jsonpath=.status.loadBalancer.ingress") == JsonPathIs(
            "{.status.loadBalancer.ingress}", None)
        assert parse_for("jsonpath={.a}='x'").value == "x"

    @pytest.mark.parametrize(("text", "message"), [
        ("", 'unrecognized condition: ""'),
        ("ready", 'unrecognized condition: "ready"'),
        ("jsonpath={.a}=", "jsonpath wait has to have a value after equal sign"),
        ("jsonpath={.a}=1=2", "jsonpath wait format must be"),
    ])
    def test_bad_conditions_are_refused_in_kubectls_words(
            self, text: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit):
            parse_for(text)
        assert message in capsys.readouterr().err

    def test_timeouts_zero_checks_once_and_negative_means_a_week(self) -> None:
        assert timeout_seconds("0") == 0
        assert timeout_seconds("1m30s") == 90
        assert timeout_seconds("-1s") == WEEK


class TestConditions:
    def test_a_condition_is_matched_by_type_and_status_ignoring_case(self) -> None:
        complete = job([{"type": "Complete", "status": "True"}])
        assert ConditionIs("complete", "true").met(complete)
        assert not ConditionIs("complete", "false").met(complete)
        assert not ConditionIs("failed", "true").met(complete)
        assert not ConditionIs("complete", "true").met({"metadata": {"name": "x"}})

    def test_a_condition_observed_for_an_older_generation_does_not_count(self) -> None:
        stale = job([{"type": "Available", "status": "True", "observedGeneration": 1}],
                    generation=2)
        assert not ConditionIs("Available", "true").met(stale)
        via_status = job([{"type": "Available", "status": "True"}], generation=2,
                         observedGeneration=1)
        assert not ConditionIs("Available", "true").met(via_status)

    def test_jsonpath_compares_one_scalar_as_text(self) -> None:
        obj = job([], succeeded=3)
        assert JsonPathIs("{.status.succeeded}", "3").met(obj)
        assert not JsonPathIs("{.status.succeeded}", "2").met(obj)
        assert JsonPathIs("{.status.succeeded}", None).met(obj)
        assert not JsonPathIs("{.status.failed}", None).met(obj)

    def test_jsonpath_refuses_nested_values_and_several_results(self) -> None:
        with pytest.raises(WaitFailed, match="nested object or list"):
            JsonPathIs("{.status}", "1").met(job([]))
        with pytest.raises(WaitFailed, match="more than one value"):
            JsonPathIs("{.items[*].a}", "1").met({"items": [{"a": 1}, {"a": 2}]})


def test_a_job_from_a_cronjob_is_its_template_marked_manual_and_owned() -> None:
    cronjob = {"metadata": {"name": "nightly", "uid": "u1", "labels": {"x": "y"}},
               "spec": {"jobTemplate": {
                   "metadata": {"labels": {"team": "batch"}, "annotations": {"a": "b"}},
                   "spec": {"backoffLimit": 2, "template": {"spec": {"containers": []}}}}}}
    assert job_from_cronjob("now", cronjob) == {
        "kind": "Job", "apiVersion": "batch/v1",
        "metadata": {"name": "now", "creationTimestamp": None,
                     "annotations": {"cronjob.kubernetes.io/instantiate": "manual", "a": "b"},
                     "labels": {"team": "batch"},
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
                                          "name": "nightly", "uid": "u1", "controller": True}]},
        "spec": {"backoffLimit": 2, "template": {"spec": {"containers": []}}},
        "status": {}}


def pod(name: str, *, phase: str = "Running", node: str = "n", ready_at: str | None = None,
        restarts: int = 0, created: str = "2025-01-01T00:00:00Z") -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": "True" if ready_at else "False",
                   "lastTransitionTime": ready_at or created}]
    return {"metadata": {"name": name, "creationTimestamp": created},
            "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": conditions,
                       "containerStatuses": [{"restartCount": restarts}]}}


def test_logs_of_a_workload_prefer_the_pod_kubectls_by_logging_puts_first() -> None:
    def first(*pods: dict[str, Any]) -> str:
        return min(pods, key=by_logging)["metadata"]["name"]

    assert first(pod("unscheduled", node=""), pod("scheduled", phase="Pending")) == "scheduled"
    assert first(pod("pending", phase="Pending"), pod("done", phase="Succeeded")) == "done"
    assert first(pod("unready"), pod("ready", ready_at="2025-01-01T00:05:00Z")) == "ready"
    assert first(pod("recent", ready_at="2025-01-01T00:05:00Z"),
                 pod("longest", ready_at="2025-01-01T00:01:00Z")) == "longest"
    assert first(pod("calm"), pod("restarted", restarts=2)) == "restarted"
    assert first(pod("new", created="2025-01-02T00:00:00Z"), pod("old")) == "old"


def test_completed_indexes_are_capped_after_the_first_comma_past_fifty_characters() -> None:
    assert capped_indexes(None) == "<none>"
    assert capped_indexes("0-2,4") == "0-2,4"
    many = ",".join(str(i) for i in range(0, 60, 2))
    cut = many.find(",", 50)
    assert capped_indexes(many) == many[:cut + 1] + "..."
