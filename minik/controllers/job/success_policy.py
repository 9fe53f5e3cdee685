"""An Indexed Job's `successPolicy`, as Kubernetes' `success_policy.go`.

Rules are tried in order; the first met declares the Job successful
(`SuccessCriteriaMet`, reason `SuccessPolicy`, then its other pods are
terminated and it is `Complete`). A rule with `succeededIndexes` is met when
all those indexes succeeded, or `succeededCount` of them; a rule with only
`succeededCount` when that many indexes succeeded.
"""

from __future__ import annotations

from minik.api.objects import JsonObject
from minik.controllers.job import indexed

SUCCESS_POLICY = "SuccessPolicy"


def matched_rule(policy: JsonObject | None, completions: int,
                 succeeded: set[int]) -> str | None:
    """The condition message of the first rule `succeeded` meets, or None."""
    if policy is None or not succeeded:
        return None
    for number, rule in enumerate(policy.get("rules") or []):
        count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is not None:
            wanted = {i for i in indexed.parse_indexes(rule["succeededIndexes"])
                      if i < completions}
            if not wanted:
                continue
            have = len(wanted & succeeded)
            met = have == len(wanted) or (count is not None and have >= int(count))
        else:
            met = count is not None and len(succeeded) >= int(count)
        if met:
            return f"Matched rules at index {number}"
    return None
