"""PodDisruptionBudgets are refused as Kubernetes' policy validation refuses them."""

from __future__ import annotations

from typing import Any

import pytest

from minik.api import errors, validation
from minik.api.resources import PODDISRUPTIONBUDGETS


def pdb(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}


def causes(obj: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(errors.ApiError) as caught:
        validation.validate(PODDISRUPTIONBUDGETS, obj)
    assert caught.value.code == 422 and caught.value.reason == "Invalid"
    assert caught.value.details["group"] == "policy"
    return caught.value.details["causes"]


@pytest.mark.parametrize("spec", [
    {"minAvailable": 2}, {"minAvailable": "50%"}, {"maxUnavailable": 0},
    {"maxUnavailable": "100%"}, {},
    {"minAvailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow"},
    {"maxUnavailable": 1, "unhealthyPodEvictionPolicy": "IfHealthyBudget"},
])
def test_a_budget_of_one_kind_with_a_valid_policy_is_accepted(spec: dict[str, Any]) -> None:
    assert validation.validate(PODDISRUPTIONBUDGETS, pdb(**spec)) == []


def test_both_budgets_at_once_are_refused_on_the_spec() -> None:
    found = causes(pdb(minAvailable=1, maxUnavailable=1))
    assert [c["field"] for c in found] == ["spec"]
    assert found[0]["message"].endswith("minAvailable and maxUnavailable cannot be both set")


@pytest.mark.parametrize(("spec", "path", "message"), [
    ({"minAvailable": -1}, "spec.minAvailable",
     "Invalid value: -1: must be greater than or equal to 0"),
    ({"maxUnavailable": "150%"}, "spec.maxUnavailable",
     'Invalid value: "150%": must not be greater than 100%'),
    ({"minAvailable": "half"}, "spec.minAvailable", 'Invalid value: "half": a valid percent'),
    ({"maxUnavailable": 1, "unhealthyPodEvictionPolicy": "Never"},
     "spec.unhealthyPodEvictionPolicy",
     'Unsupported value: "Never": supported values: "AlwaysAllow", "IfHealthyBudget"'),
])
def test_a_bad_budget_or_policy_is_a_422_naming_the_field(
    spec: dict[str, Any], path: str, message: str
) -> None:
    found = causes(pdb(**spec))
    assert [c["field"] for c in found] == [path]
    assert found[0]["message"].startswith(message)


def test_an_invalid_selector_operator_is_refused_on_the_selector() -> None:
    obj = pdb(minAvailable=1)
    obj["spec"]["selector"] = {"matchExpressions": [{"key": "app", "operator": "Is"}]}
    assert [c["field"] for c in causes(obj)] == ["spec.selector.matchExpressions[0].operator"]
