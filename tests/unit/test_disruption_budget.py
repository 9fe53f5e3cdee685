"""A PodDisruptionBudget's status is computed as Kubernetes' disruption controller computes it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from minik.api.meta import format_time
from minik.api.objects import Pod, PodDisruptionBudget
from minik.controllers.disruption.budget import (
    DELETION_TIMEOUT,
    Health,
    budget_status,
    count_healthy,
    desired_health,
    disrupted_pod_map,
    failed_status,
    needs_scale,
)

NOW = dt.datetime(2026, 12, 6, 12, 0, 0, tzinfo=dt.UTC)


def pod(name: str, *, ready: bool = True, deleting: bool = False) -> Pod:
    md: dict[str, Any] = {"name": name, "namespace": "default"}
    if deleting:
        md["deletionTimestamp"] = format_time(NOW)
    return {"metadata": md, "status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}  # type: ignore[typeddict-item]


def pdb(generation: int = 1, **status: Any) -> PodDisruptionBudget:
    return {"metadata": {"name": "web", "namespace": "default", "generation": generation},
            "spec": {"minAvailable": 1}, "status": status}  # type: ignore[typeddict-item]


@pytest.mark.parametrize(("spec", "pods", "scale", "expected"), [
    ({"minAvailable": 2}, 3, None, (3, 2)),
    ({"minAvailable": "50%"}, 3, 3, (3, 2)),
    ({"minAvailable": "100%"}, 2, 2, (2, 2)),
    ({"maxUnavailable": 1}, 2, 2, (2, 1)),
    ({"maxUnavailable": "25%"}, 4, 5, (5, 3)),
    ({"maxUnavailable": 3}, 1, 1, (1, 0)),
    ({}, 4, None, (0, 0)),
])
def test_expected_and_desired_healthy_follow_the_budget_with_percentages_rounded_up(
    spec: Any, pods: int, scale: int | None, expected: tuple[int, int]
) -> None:
    assert needs_scale(spec) == (scale is not None)
    assert desired_health(spec, pods, scale) == expected


def test_ready_pods_count_as_healthy_unless_being_deleted_or_recently_evicted() -> None:
    pods = [pod("a"), pod("b", ready=False), pod("c", deleting=True), pod("d"), pod("e")]
    evicted = {"d": format_time(NOW - dt.timedelta(seconds=30)),
               "e": format_time(NOW - DELETION_TIMEOUT - dt.timedelta(seconds=1))}
    assert count_healthy(pods, evicted, NOW) == 2


def test_disrupted_pods_keep_in_flight_entries_drop_gone_and_overdue_ones_and_recheck_soonest():
    recent, older = NOW - dt.timedelta(seconds=10), NOW - dt.timedelta(seconds=60)
    overdue = NOW - DELETION_TIMEOUT - dt.timedelta(seconds=1)
    budget = pdb(disruptedPods={"a": format_time(recent), "b": format_time(older),
                                "c": format_time(overdue), "gone": format_time(recent),
                                "d": format_time(recent)})
    kept, recheck, late = disrupted_pod_map(
        [pod("a"), pod("b"), pod("c"), pod("d", deleting=True)], budget, NOW)
    assert kept == {"a": format_time(recent), "b": format_time(older)}
    assert recheck == older + DELETION_TIMEOUT
    assert [p["metadata"]["name"] for p in late] == ["c"]


def test_disruptions_allowed_are_healthy_minus_desired_and_the_condition_says_sufficient():
    status = budget_status(pdb(3), Health(current=3, desired=2, expected=3, disrupted={}), NOW)
    assert status is not None
    assert {k: status[k] for k in ("disruptionsAllowed", "currentHealthy",  # type: ignore[literal-required]
                                   "desiredHealthy", "expectedPods", "observedGeneration")} == {
        "disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3,
        "observedGeneration": 3}
    assert status["conditions"] == [{
        "type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods", "message": "",
        "observedGeneration": 3, "lastTransitionTime": format_time(NOW)}]


@pytest.mark.parametrize(("current", "desired", "expected"), [(2, 2, 2), (1, 2, 2), (3, 0, 0)])
def test_no_disruption_is_allowed_without_spare_healthy_pods_or_without_expected_pods(
    current: int, desired: int, expected: int
) -> None:
    status = budget_status(pdb(), Health(current, desired, expected, {}), NOW)
    assert status is not None and status["disruptionsAllowed"] == 0
    assert status["conditions"][0]["reason"] == "InsufficientPods"
    assert status["conditions"][0]["status"] == "False"


def test_an_up_to_date_status_is_not_written_again_and_a_new_generation_is() -> None:
    first = budget_status(pdb(), Health(2, 1, 2, {}), NOW)
    assert first is not None
    written = pdb(1, **first)
    assert budget_status(written, Health(2, 1, 2, {}), NOW) is None
    later = NOW + dt.timedelta(minutes=1)
    bumped = budget_status(pdb(2, **first), Health(2, 1, 2, {}), later)
    assert bumped is not None and bumped["observedGeneration"] == 2
    assert bumped["conditions"][0]["lastTransitionTime"] == format_time(NOW)


def test_a_failed_sync_allows_no_disruption_with_reason_sync_failed_and_the_error() -> None:
    first = budget_status(pdb(), Health(2, 1, 2, {}), NOW)
    assert first is not None
    status = failed_status(pdb(1, **first), "found no controllers for pod \"p\"", NOW)
    assert status["disruptionsAllowed"] == 0
    assert status["currentHealthy"] == 2
    assert status["conditions"][0]["reason"] == "SyncFailed"
    assert status["conditions"][0]["message"] == 'found no controllers for pod "p"'
