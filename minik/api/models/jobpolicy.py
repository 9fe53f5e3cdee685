"""A Job's failure and success rules: `podFailurePolicy`, `successPolicy`, per-index limits.

Checked as Kubernetes' `pkg/apis/batch/validation` checks them, with its
wording: `backoffLimitPerIndex` and `maxFailedIndexes` only for Indexed Jobs
(`maxFailedIndexes` needs `backoffLimitPerIndex` and at most `completions`),
the `FailIndex` action only with `backoffLimitPerIndex`, a `successPolicy`
only for Indexed Jobs, and `podReplacementPolicy: Failed` whenever a pod
failure policy is set. Fields a defaulter fills (a pattern's `status`) may
be absent here, as minik validates a create before defaulting it.
"""

from __future__ import annotations

import itertools

from minik.api import names
from minik.api.errors import Cause
from minik.api.models.base import (
    K8sModel,
    duplicate,
    invalid,
    join,
    not_supported,
    required,
    too_long,
    too_many,
)

MAX_RULES = 20
MAX_EXIT_CODES = 255
MAX_CONDITION_PATTERNS = 20
MAX_SUCCEEDED_INDEXES_LENGTH = 64 * 1024
ACTIONS = ("Count", "FailIndex", "FailJob", "Ignore")
OPERATORS = ("In", "NotIn")
CONDITION_STATUSES = ("False", "True", "Unknown")
REPLACEMENT_POLICIES = ("Failed", "TerminatingOrFailed")
INDEXED_ONLY = "requires indexed completion mode"


class OnExitCodes(K8sModel):
    container_name: str | None = None
    operator: str | None = None
    values: list[int] | None = None


class OnPodCondition(K8sModel):
    type: str
    status: str | None = None


class PodFailurePolicyRule(K8sModel):
    action: str | None = None
    on_exit_codes: OnExitCodes | None = None
    on_pod_conditions: list[OnPodCondition] | None = None


class PodFailurePolicy(K8sModel):
    rules: list[PodFailurePolicyRule]


class SuccessPolicyRule(K8sModel):
    succeeded_indexes: str | None = None
    succeeded_count: int | None = None


class SuccessPolicy(K8sModel):
    rules: list[SuccessPolicyRule]


def per_index_causes(*, indexed: bool, completions: int | None, per_index: int | None,
                     max_failed: int | None) -> list[Cause]:
    """`backoffLimitPerIndex` and `maxFailedIndexes` (both already known non-negative)."""
    causes: list[Cause] = []
    if max_failed is not None and per_index is None:
        causes.append(required("backoffLimitPerIndex", "when maxFailedIndexes is specified"))
    if indexed:
        if completions is not None and max_failed is not None and max_failed > completions:
            causes.append(invalid("maxFailedIndexes", max_failed,
                                  "must be less than or equal to completions"))
        return causes
    if per_index is not None:
        causes.append(invalid("backoffLimitPerIndex", per_index, INDEXED_ONLY))
    if max_failed is not None:
        causes.append(invalid("maxFailedIndexes", max_failed, INDEXED_ONLY))
    return causes


def pod_failure_policy_causes(policy: PodFailurePolicy, *, containers: set[str],
                              per_index: bool, path: str = "podFailurePolicy") -> list[Cause]:
    rules_path = join(path, "rules")
    causes: list[Cause] = []
    if len(policy.rules) > MAX_RULES:
        causes.append(too_many(rules_path, len(policy.rules), MAX_RULES))
    for i, rule in enumerate(policy.rules):
        causes += _rule_causes(rule, f"{rules_path}[{i}]", containers=containers,
                               per_index=per_index)
    return causes


def _rule_causes(rule: PodFailurePolicyRule, path: str, *, containers: set[str],
                 per_index: bool) -> list[Cause]:
    action_path = join(path, "action")
    causes: list[Cause] = []
    if not rule.action:
        causes.append(required(action_path, f"valid values: {_go_list(ACTIONS)}"))
    elif rule.action == "FailIndex":
        if not per_index:
            causes.append(invalid(action_path, rule.action,
                                  "requires the backoffLimitPerIndex to be set"))
    elif rule.action not in ACTIONS:
        causes.append(not_supported(action_path, rule.action, ACTIONS))
    if rule.on_exit_codes is not None:
        causes += _exit_code_causes(rule.on_exit_codes, join(path, "onExitCodes"), containers)
    patterns = rule.on_pod_conditions or []
    causes += _condition_causes(patterns, join(path, "onPodConditions"))
    if rule.on_exit_codes is not None and patterns:
        causes.append(Cause(path, "Invalid value: specifying both OnExitCodes and "
                                  "OnPodConditions is not supported", "FieldValueInvalid"))
    if rule.on_exit_codes is None and not patterns:
        causes.append(Cause(path, "Invalid value: specifying one of OnExitCodes and "
                                  "OnPodConditions is required", "FieldValueInvalid"))
    return causes


def _exit_code_causes(req: OnExitCodes, path: str, containers: set[str]) -> list[Cause]:
    causes: list[Cause] = []
    operator_path = join(path, "operator")
    if not req.operator:
        causes.append(required(operator_path, f"valid values: {_go_list(OPERATORS)}"))
    elif req.operator not in OPERATORS:
        causes.append(not_supported(operator_path, req.operator, OPERATORS))
    if req.container_name is not None and req.container_name not in containers:
        causes.append(invalid(join(path, "containerName"), req.container_name,
                              "must be one of the container or initContainer names in the "
                              "pod template"))
    values_path = join(path, "values")
    values = req.values or []
    if not values:
        causes.append(invalid(values_path, values, "at least one value is required"))
    elif len(values) > MAX_EXIT_CODES:
        causes.append(too_many(values_path, len(values), MAX_EXIT_CODES))
    seen: set[int] = set()
    for j, value in enumerate(values):
        if req.operator == "In" and value == 0:
            causes.append(invalid(f"{values_path}[{j}]", value,
                                  "must not be 0 for the In operator"))
        if value in seen:
            causes.append(duplicate(f"{values_path}[{j}]", value))
        seen.add(value)
    if any(a > b for a, b in itertools.pairwise(values)):
        causes.append(invalid(values_path, values, "must be ordered"))
    return causes


def _condition_causes(patterns: list[OnPodCondition], path: str) -> list[Cause]:
    causes: list[Cause] = []
    if len(patterns) > MAX_CONDITION_PATTERNS:
        causes.append(too_many(path, len(patterns), MAX_CONDITION_PATTERNS))
    for j, pattern in enumerate(patterns):
        causes += [invalid(f"{path}[{j}].type", pattern.type, message)
                   for message in names.is_qualified_name(pattern.type)]
        if pattern.status is not None and pattern.status not in CONDITION_STATUSES:
            causes.append(not_supported(f"{path}[{j}].status", pattern.status,
                                        CONDITION_STATUSES))
    return causes


def replacement_causes(policy: str | None, *, has_failure_policy: bool) -> list[Cause]:
    """With a pod failure policy only `Failed`; otherwise either policy."""
    if policy is None:
        return []
    allowed = ("Failed",) if has_failure_policy else REPLACEMENT_POLICIES
    return [] if policy in allowed else [not_supported("podReplacementPolicy", policy, allowed)]


def success_policy_causes(policy: SuccessPolicy, *, indexed: bool, completions: int,
                          path: str = "successPolicy") -> list[Cause]:
    if not indexed:
        return [invalid(path, policy, INDEXED_ONLY)]
    rules_path = join(path, "rules")
    causes: list[Cause] = []
    if not policy.rules:
        causes.append(required(rules_path, "at least one rules must be specified when the "
                                           "successPolicy is specified"))
    if len(policy.rules) > MAX_RULES:
        causes.append(too_many(rules_path, len(policy.rules), MAX_RULES))
    for i, rule in enumerate(policy.rules):
        causes += _success_rule_causes(rule, f"{rules_path}[{i}]", completions)
    return causes


def _success_rule_causes(rule: SuccessPolicyRule, path: str, completions: int) -> list[Cause]:
    causes: list[Cause] = []
    if rule.succeeded_count is None and rule.succeeded_indexes is None:
        causes.append(required(path, "at least one of succeededCount or succeededIndexes must "
                                     "be specified"))
    total = 0
    if rule.succeeded_indexes is not None:
        indexes_path = join(path, "succeededIndexes")
        if len(rule.succeeded_indexes) > MAX_SUCCEEDED_INDEXES_LENGTH:
            causes.append(too_long(indexes_path, MAX_SUCCEEDED_INDEXES_LENGTH))
        try:
            total = count_indexes(rule.succeeded_indexes, completions)
        except ValueError as e:
            causes.append(invalid(indexes_path, rule.succeeded_indexes,
                                  f"error parsing succeededIndexes: {e}"))
    if rule.succeeded_count is not None:
        count_path = join(path, "succeededCount")
        count = rule.succeeded_count
        if count < 0:
            causes.append(invalid(count_path, count, "must be greater than or equal to 0"))
        if count > completions:
            causes.append(invalid(count_path, count, f"must be less than or equal to "
                                                     f"{completions} (the number of specified "
                                                     "completions)"))
        if rule.succeeded_indexes is not None and count > total:
            causes.append(invalid(count_path, count, f"must be less than or equal to {total} "
                                                     "(the number of indexes in the specified "
                                                     "succeededIndexes field)"))
    return causes


def count_indexes(text: str, completions: int) -> int:
    """How many indexes `0-2,4` names; ValueError (Kubernetes' words) if it is malformed."""
    if not text:
        return 0
    last: int | None = None
    total = 0
    for part in text.split(","):
        limits = part.split("-")
        if len(limits) > 2:
            raise ValueError(f'the fragment "{part}" violates the requirement that an index '
                             "interval can have at most two parts separated by '-'")
        for k, raw in enumerate(limits):
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f'cannot convert string to integer for index: "{raw}"') from None
            if value >= completions:
                raise ValueError(f'too large index: "{raw}"')
            if last is not None and last >= value:
                raise ValueError(f"non-increasing order, previous: {last}, current: {value}")
            total += 1 if k == 0 else value - last  # type: ignore[operator]
            last = value
    return total


def _go_list(values: tuple[str, ...]) -> str:
    """A Go `%q` of a string slice: `["Count" "FailIndex"]`."""
    return "[" + " ".join(f'"{v}"' for v in values) + "]"

