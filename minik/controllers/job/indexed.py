"""Indexed Jobs: one pod per completion index, as Kubernetes' `indexed_job_utils.go`.

A pod of an Indexed Job carries its index as the annotation and label
`batch.kubernetes.io/job-completion-index`, sees it as the environment
variable `JOB_COMPLETION_INDEX` (a downward-API reference to the
annotation), and is named and hostnamed `<job>-<index>`. Succeeded indexes
are recorded in `status.completedIndexes`, written as ordered ranges
(`0-2,4`), which is also what stops a succeeded pod being counted twice.
"""

from __future__ import annotations

import copy

from minik.api.meta import meta_of
from minik.api.objects import JsonObject, Pod, PodTemplateSpec

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
INDEX_ENV = "JOB_COMPLETION_INDEX"
INDEXED = "Indexed"


def parse_indexes(text: str | None) -> set[int]:
    """`0-2,4` -> {0, 1, 2, 4}; anything unreadable is skipped, as Kubernetes does."""
    result: set[int] = set()
    for part in (text or "").split(","):
        low, _, high = part.strip().partition("-")
        try:
            first = int(low)
            last = int(high) if high else first
        except ValueError:
            continue
        result.update(range(first, last + 1))
    return result


def format_indexes(indexes: set[int]) -> str:
    """{0, 1, 2, 4, 6, 7} -> `0-2,4,6,7`: runs of consecutive indexes, ascending.

    A run of two is written as two numbers, as Kubernetes' `orderedIntervals` does.
    """
    ranges: list[str] = []
    ordered = sorted(indexes)
    start = 0
    for i, value in enumerate(ordered):
        if i + 1 < len(ordered) and ordered[i + 1] == value + 1:
            continue
        first = ordered[start]
        separator = "," if value == first + 1 else "-"
        ranges.append(str(first) if first == value else f"{first}{separator}{value}")
        start = i + 1
    return ",".join(ranges)


def index_of(pod: Pod) -> int | None:
    """The pod's completion index from its annotation (label as a fallback); None if invalid."""
    md = meta_of(pod)
    raw = (md.get("annotations") or {}).get(COMPLETION_INDEX)
    if raw is None:
        raw = (md.get("labels") or {}).get(COMPLETION_INDEX)
    if raw is None or not raw.isdigit():
        return None
    return int(raw)


def template_for_index(job_name: str, template: PodTemplateSpec, index: int) -> PodTemplateSpec:
    """The template of the pod that runs `index`: annotation, label, env, hostname."""
    result = copy.deepcopy(template)
    md = result.setdefault("metadata", {})
    md["annotations"] = {**(md.get("annotations") or {}), COMPLETION_INDEX: str(index)}
    md["labels"] = {**(md.get("labels") or {}), COMPLETION_INDEX: str(index)}
    spec = result.setdefault("spec", {"containers": []})
    if not spec.get("hostname"):
        spec["hostname"] = f"{job_name}-{index}"
    env_var = {"name": INDEX_ENV, "valueFrom": {"fieldRef": {
        "apiVersion": "v1", "fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}}}
    for container in [*(spec.get("initContainers") or []), *spec.get("containers", [])]:
        env = container.setdefault("env", [])
        if not any(e.get("name") == INDEX_ENV for e in env):
            env.append(copy.deepcopy(env_var))
    return result


def generate_name(job_name: str, index: int) -> str:
    """`<job>-<index>-`, the prefix of an index's pod names."""
    return f"{job_name}-{index}-"



def is_indexed(spec: JsonObject) -> bool:
    return spec.get("completionMode") == INDEXED


def record_succeeded(status: JsonObject, pods: list[Pod], completions: int) -> JsonObject:
    """Status with the indexes of succeeded `pods` in completedIndexes and `succeeded`."""
    done = parse_indexes(status.get("completedIndexes"))
    done.update(i for p in pods if (i := index_of(p)) is not None and i < completions)
    result = {**status, "succeeded": len(done)}
    if done:
        result["completedIndexes"] = format_indexes(done)
    if not result["succeeded"]:
        result.pop("succeeded")
    return result


def plan(active: list[Pod], completed: set[int], completions: int, want: int, *,
         held: frozenset[int] = frozenset()) -> tuple[list[Pod], list[int]]:
    """Active pods to delete (bad, duplicate or finished index) and indexes to start.

    `completed` holds the indexes that need no pod (succeeded, or failed for
    good); `held` those whose pod is still terminating and may not be
    replaced yet (`podReplacementPolicy: Failed`): they count as running. At
    most `want` pods run: the lowest pending indexes are started first.
    """
    doomed: list[Pod] = []
    running: dict[int, Pod] = {}
    for pod in active:
        index = index_of(pod)
        if index is None or index >= completions or index in completed or index in running:
            doomed.append(pod)
        else:
            running[index] = pod
    busy = running.keys() | (held - completed)
    pending = [i for i in range(completions) if i not in completed and i not in busy]
    return doomed, pending[:max(0, want - len(busy))]
