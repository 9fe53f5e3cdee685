"""`backoffLimitPerIndex`: an Indexed Job's failures counted per index, as Kubernetes'.

Each pod of an index carries the failures of the pods it replaces in the
annotation `batch.kubernetes.io/job-index-failure-count` (and failures a
pod failure policy ignores in `...-ignored-failure-count`). A pod that fails
with that count already at `backoffLimitPerIndex`, or that a `FailIndex`
rule matches, fails its index: the index goes into `status.failedIndexes`
(ranges like `completedIndexes`) and is not run again. The replacement of a
failed pod waits the pod-recreation back-off of its own index, counted from
the end of the index's last failed pod (`getRemainingTimePerIndex`).

A Job with more failed indexes than `maxFailedIndexes` fails
(`MaxFailedIndexesExceeded`); one whose indexes have all finished, some
failed, fails too (`FailedIndexes`).
"""

from __future__ import annotations

import datetime as dt

from minik.api.meta import meta_of, uid_of
from minik.api.objects import JsonObject, Pod
from minik.controllers.job import failure_policy, indexed
from minik.controllers.job import status as js
from minik.controllers.podcontrol import is_pod_active

FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
IGNORED_FAILURE_COUNT = "batch.kubernetes.io/job-index-ignored-failure-count"
MAX_FAILED_INDEXES_EXCEEDED = "MaxFailedIndexesExceeded"
FAILED_INDEXES = "FailedIndexes"
MAX_FAILED_MESSAGE = "Job has exceeded the specified maximal number of failed indexes"
FAILED_INDEXES_MESSAGE = "Job has failed indexes"
MAX_INT32 = 2**31 - 1


def enabled(spec: JsonObject) -> bool:
    return indexed.is_indexed(spec) and spec.get("backoffLimitPerIndex") is not None


def _annotation_count(pod: Pod, key: str) -> int:
    """The annotation as a count; 0 when absent or not a valid int32, as Kubernetes reads it."""
    raw = (meta_of(pod).get("annotations") or {}).get(key)
    try:
        value = int(raw) if raw is not None else 0
    except ValueError:
        return 0
    return value if 0 <= value <= MAX_INT32 else 0


def failure_count(pod: Pod) -> int:
    return _annotation_count(pod, FAILURE_COUNT)


def absolute_failure_count(pod: Pod) -> int:
    return failure_count(pod) + _annotation_count(pod, IGNORED_FAILURE_COUNT)


def is_index_failed(spec: JsonObject, pod: Pod) -> bool:
    """Whether this failed pod fails its index."""
    if not js.is_pod_failed(pod):
        return False
    matched = failure_policy.match(spec.get("podFailurePolicy"), pod)
    if matched.action == failure_policy.FAIL_INDEX:
        return True
    return matched.counts and failure_count(pod) >= int(spec.get("backoffLimitPerIndex") or 0)


def failed_indexes(status: JsonObject) -> set[int]:
    return indexed.parse_indexes(status.get("failedIndexes"))


def record_failed(status: JsonObject, spec: JsonObject, pods: list[Pod]) -> JsonObject:
    """Status with the indexes that `pods` (newly finished) fail added to failedIndexes."""
    completions = int(spec.get("completions") or 0)
    failed = failed_indexes(status)
    failed.update(i for p in pods if (i := indexed.index_of(p)) is not None
                  and i < completions and is_index_failed(spec, p))
    return {**status, "failedIndexes": indexed.format_indexes(failed)}


def last_failed(spec: JsonObject, pods: list[Pod], busy: set[int]) -> dict[int, Pod]:
    """For each index not succeeded, failed or running: its latest failed pod.

    That pod's counts, plus its own failure, go to its replacement; its end
    starts the index's back-off.
    """
    completions = int(spec.get("completions") or 0)
    result: dict[int, Pod] = {}
    for pod in pods:
        index = indexed.index_of(pod)
        if (index is None or index >= completions or index in busy
                or not js.is_pod_failed(pod)):
            continue
        current = result.get(index)
        if current is None or (
                absolute_failure_count(current) <= absolute_failure_count(pod)
                and not _finished_before(pod, current)):
            result[index] = pod
    return result


def awaiting_replacement(spec: JsonObject, status: JsonObject, active: list[Pod],
                         pods: list[Pod], newly_finished: list[Pod]) -> set[str]:
    """Uids of the failed pods whose index waits for a replacement (`last_failed`).

    Kubernetes delays removing their finalizer until the replacement exists
    (`getPodsWithDelayedDeletionPerIndex`); indexes that `newly_finished`
    pods complete or fail need no replacement.
    """
    busy = (indexed.parse_indexes(status.get("completedIndexes"))
            | failed_indexes(record_failed(status, spec, newly_finished))
            | {i for p in [*active, *newly_finished]
               if (i := indexed.index_of(p)) is not None
               and (is_pod_active(p) or js.is_pod_succeeded(p))})
    return {uid_of(p) for p in last_failed(spec, pods, busy).values()}


def _finished_before(pod: Pod, other: Pod) -> bool:
    mine, theirs = js.finish_time(pod), js.finish_time(other)
    return mine is not None and theirs is not None and mine < theirs


def replacement_counts(spec: JsonObject, replaced: Pod | None) -> tuple[int, int]:
    """The failure and ignored-failure counts of the pod that replaces `replaced`."""
    if replaced is None:
        return 0, 0
    count = failure_count(replaced)
    ignored = _annotation_count(replaced, IGNORED_FAILURE_COUNT)
    if failure_policy.match(spec.get("podFailurePolicy"), replaced).counts:
        return count + 1, ignored
    return count, ignored + 1


def annotate(template: JsonObject, counts: tuple[int, int]) -> None:
    """Write the failure counts into a pod template's annotations (in place)."""
    annotations = template.setdefault("metadata", {}).setdefault("annotations", {})
    annotations[FAILURE_COUNT] = str(counts[0])
    if counts[1] > 0:
        annotations[IGNORED_FAILURE_COUNT] = str(counts[1])


def backoff_remaining(replaced: Pod | None, base: float, now: dt.datetime) -> float:
    """Seconds until `replaced`'s index may start a new pod."""
    if replaced is None:
        return 0.0
    delay = js.pod_backoff(absolute_failure_count(replaced) + 1, base)
    ended = js.finish_time(replaced)
    if delay <= 0 or ended is None:
        return 0.0
    return max(0.0, (ended - now).total_seconds() + delay)


def verdict(spec: JsonObject, status: JsonObject, now: dt.datetime) -> js.JobCondition | None:
    """FailureTarget for too many failed indexes, or for every index finished and some failed."""
    failed = len(failed_indexes(status))
    limit = spec.get("maxFailedIndexes")
    if limit is not None and failed > int(limit):
        return js.condition(js.FAILURE_TARGET, MAX_FAILED_INDEXES_EXCEEDED, MAX_FAILED_MESSAGE,
                            now)
    done = len(indexed.parse_indexes(status.get("completedIndexes")))
    if failed and failed + done >= int(spec.get("completions") or 0):
        return js.condition(js.FAILURE_TARGET, FAILED_INDEXES, FAILED_INDEXES_MESSAGE, now)
    return None
