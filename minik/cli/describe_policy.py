"""`describe` for policy/v1: kubectl's `describePodDisruptionBudgetV1`."""

from __future__ import annotations

from minik.cli.describe import Described, PrefixWriter, describe_events
from minik.cli.describe_workloads import selector_string


def describe_pod_disruption_budget(d: Described, w: PrefixWriter) -> None:
    spec = d.get("spec", default={})
    w.write(0, f"Name:\t{d.meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{d.meta.get('namespace', '')}\n")
    if spec.get("minAvailable") is not None:
        w.write(0, f"Min available:\t{spec['minAvailable']}\n")
    elif spec.get("maxUnavailable") is not None:
        w.write(0, f"Max unavailable:\t{spec['maxUnavailable']}\n")
    w.write(0, f"Selector:\t{selector_string(spec.get('selector'))}\n")
    status = d.get("status", default={})
    w.write(0, "Status:\n")
    for title, key in (("Allowed disruptions", "disruptionsAllowed"),
                       ("Current", "currentHealthy"), ("Desired", "desiredHealthy"),
                       ("Total", "expectedPods")):
        w.write(2, f"{title}:\t{status.get(key, 0)}\n")
    describe_events(w, d.events or [], d.now)
