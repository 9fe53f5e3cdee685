"""`minik describe pdb` prints what kubectl's describePodDisruptionBudgetV1 prints."""

from __future__ import annotations

from minik.api.resources import PODDISRUPTIONBUDGETS
from minik.cli.describe import Described, PrefixWriter
from minik.cli.describe_policy import describe_pod_disruption_budget

KUBECTL_OUTPUT = """\
Name:             web
Namespace:        default
Max unavailable:  1
Selector:         app=web
Status:
    Allowed disruptions:  1
    Current:              2
    Desired:              1
    Total:                2
Events:                   <none>
"""


def test_a_budget_is_described_line_for_line_as_kubectl_does() -> None:
    pdb = {"metadata": {"name": "web", "namespace": "default"},
           "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}},
           "status": {"disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1,
                      "expectedPods": 2}}
    w = PrefixWriter()
    describe_pod_disruption_budget(
        Described(None, PODDISRUPTIONBUDGETS, pdb, events=[]), w)  # type: ignore[arg-type]
    assert w.render() == KUBECTL_OUTPUT
