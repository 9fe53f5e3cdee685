"""Pure helpers of the deployment controller, after Kubernetes' `deployment/util`.

Functions of Deployments and ReplicaSets (the shapes of `minik.api.objects`),
testable without a server: the pod-template hash (fnv32a of the template's canonical JSON and
the collision count, safe-encoded as `ComputeHash` does) over the normal
form that the semantic template comparison uses (`minik.api.revisions`,
shared with `minik rollout`); maxSurge and
maxUnavailable (surge rounds up, unavailable down, both 0 allow 1
unavailable); the sizes a rolling update, a Recreate and a mid-rollout
resize (`GetProportion`) give ReplicaSets; revision annotations and history
pruning; status and the Available and Progressing conditions.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
from collections.abc import Iterable
from typing import Literal

from minik.api.meta import (
    annotations_of,
    find_condition,
    format_time,
    generation_of,
    is_being_deleted,
    name_of,
    parse_time,
    with_condition,
    without_condition,
)
from minik.api.objects import (
    ConditionStatus,
    Deployment,
    DeploymentCondition,
    DeploymentStatus,
    PodTemplateSpec,
    ReplicaSet,
)
from minik.api.revisions import REVISION, equal_ignore_hash, normal_template, revision

ReplicaCount = Literal["replicas", "readyReplicas", "availableReplicas", "observedGeneration"]
"""A count both a Deployment's and a ReplicaSet's status have."""
DeploymentCount = Literal["replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                          "unavailableReplicas", "observedGeneration"]

REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
NOT_COPIED = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS,
                        MAX_REPLICAS, "deprecated.deployment.rollback.to"})
MAX_REVISION_HISTORY_CHARS = 2000
NO_DEADLINE = 2**31 - 1

AVAILABLE, PROGRESSING, REPLICA_FAILURE = "Available", "Progressing", "ReplicaFailure"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
FAILED_RS_CREATE = "ReplicaSetCreateError"
PAUSED, RESUMED = "DeploymentPaused", "DeploymentResumed"
MIN_AVAILABLE, MIN_UNAVAILABLE = "MinimumReplicasAvailable", "MinimumReplicasUnavailable"

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV_OFFSET, _FNV_PRIME = 2166136261, 16777619


# ------------------------------------------------------------- field access


def replicas(obj: Deployment | ReplicaSet | None) -> int:
    """`spec.replicas`, 1 when unset as the API defaults it; 0 for no object."""
    if obj is None:
        return 0
    value = obj["spec"].get("replicas")
    return 1 if value is None else int(value)


def status_count(obj: Deployment | ReplicaSet | None, field: ReplicaCount) -> int:
    return int(((obj or {}).get("status") or {}).get(field) or 0)


def total(rss: Iterable[ReplicaSet | None], field: ReplicaCount | None = None) -> int:
    """Sum of spec.replicas, or of a status field, over `rss`."""
    return sum(replicas(rs) if field is None else status_count(rs, field) for rs in rss if rs)


def active(rss: Iterable[ReplicaSet | None]) -> list[ReplicaSet]:
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]


def by_age(rs: ReplicaSet) -> tuple[str, str]:
    md = rs.get("metadata") or {}
    return md.get("creationTimestamp") or "", md.get("name") or ""


def is_rolling(d: Deployment) -> bool:
    return (d["spec"].get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


# ------------------------------------------------------- hash and comparison


def _fnv32a(data: bytes) -> int:
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def template_hash(template: PodTemplateSpec, collision_count: int | None = None) -> str:
    """A short stable name for a pod template: equal templates give equal hashes."""
    data = json.dumps(normal_template(template), sort_keys=True, separators=(",", ":"))
    raw = data.encode()
    if collision_count is not None:
        raw += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4)
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in str(_fnv32a(raw)))


def find_new_replica_set(d: Deployment, rss: Iterable[ReplicaSet]) -> ReplicaSet | None:
    """The oldest ReplicaSet whose template is the deployment's."""
    template = d["spec"].get("template") or {}
    return next((rs for rs in sorted(rss, key=by_age)
                 if equal_ignore_hash(rs["spec"].get("template") or {}, template)), None)


# ------------------------------------------------------ surge and unavailable


def int_or_percent(value: int | str | None, whole: int, *, round_up: bool) -> int:
    """An IntOrString against `whole`: "25%" of 10 is 3 rounding up, 2 rounding down."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    if not value.endswith("%") or not value[:-1].isdigit():
        raise ValueError(f"invalid value for IntOrString: {value!r} is not a percentage")
    scaled = int(value[:-1]) * whole
    return -(-scaled // 100) if round_up else scaled // 100


def resolve_fenceposts(max_surge: int | str | None, max_unavailable: int | str | None,
                       desired: int) -> tuple[int, int]:
    surge = int_or_percent(max_surge, desired, round_up=True)
    unavailable = int_or_percent(max_unavailable, desired, round_up=False)
    return (surge, 1) if surge == 0 and unavailable == 0 else (surge, unavailable)


def _fenceposts(d: Deployment) -> tuple[int, int]:
    if not is_rolling(d):
        return 0, 0
    rolling = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    return resolve_fenceposts(rolling.get("maxSurge", "25%"),
                              rolling.get("maxUnavailable", "25%"), replicas(d))


def max_surge(d: Deployment) -> int:
    return _fenceposts(d)[0]


def max_unavailable(d: Deployment) -> int:
    return min(_fenceposts(d)[1], replicas(d))


# --------------------------------------------------------------- scale math


def new_rs_new_replicas(d: Deployment, all_rss: Iterable[ReplicaSet | None],
                        new_rs: ReplicaSet) -> int:
    """How big the new ReplicaSet may be now (Recreate: the whole deployment)."""
    if not is_rolling(d):
        return replicas(d)
    ceiling = replicas(d) + max_surge(d)
    current = total(all_rss)
    if current >= ceiling:
        return replicas(new_rs)
    return replicas(new_rs) + min(ceiling - current, replicas(d) - replicas(new_rs))


def old_scale_down(d: Deployment, all_rss: list[ReplicaSet], old_active: list[ReplicaSet],
                   new_rs: ReplicaSet | None) -> list[tuple[ReplicaSet, int]]:
    """New sizes of old ReplicaSets: unhealthy replicas go first, then within maxUnavailable."""
    if total(old_active) == 0:
        return []
    min_available = replicas(d) - max_unavailable(d)
    new_unavailable = replicas(new_rs) - status_count(new_rs, "availableReplicas")
    budget = total(all_rss) - min_available - new_unavailable
    if budget <= 0:
        return []
    olds = sorted(old_active, key=by_age)
    sizes = {id(rs): replicas(rs) for rs in olds}
    cleaned = 0
    for rs in olds:
        unhealthy = sizes[id(rs)] - status_count(rs, "availableReplicas")
        if cleaned >= budget or unhealthy <= 0:
            continue
        step = min(budget - cleaned, unhealthy)
        sizes[id(rs)] -= step
        cleaned += step
    surplus = total(all_rss, "availableReplicas") - min_available
    for rs in olds:
        step = min(sizes[id(rs)], max(surplus, 0))
        sizes[id(rs)] -= step
        surplus -= step
    return [(rs, sizes[id(rs)]) for rs in olds if sizes[id(rs)] != replicas(rs)]


def _int_annotation(rs: ReplicaSet, key: str) -> int | None:
    try:
        return int(annotations_of(rs)[key])
    except (KeyError, ValueError):
        return None


def replica_set_fraction(rs: ReplicaSet, d: Deployment) -> int:
    """How many replicas `rs` gains (or loses) when the deployment's size changes."""
    if replicas(d) == 0:
        return -replicas(rs)
    allowed = replicas(d) + max_surge(d)
    annotated = _int_annotation(rs, MAX_REPLICAS) or status_count(d, "replicas") or allowed
    return math.floor(replicas(rs) * allowed / annotated + 0.5) - replicas(rs)


def get_proportion(rs: ReplicaSet, d: Deployment, to_add: int, added: int) -> int:
    if replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = replica_set_fraction(rs, d)
    return min(fraction, to_add - added) if to_add > 0 else max(fraction, to_add - added)


def proportional_sizes(d: Deployment,
                       active_rss: list[ReplicaSet]) -> list[tuple[ReplicaSet, int]]:
    """New sizes of the active ReplicaSets of a deployment resized mid-rollout."""
    allowed = replicas(d) + max_surge(d) if replicas(d) > 0 else 0
    to_add = allowed - total(active_rss)
    older_first = sorted(active_rss, key=by_age)
    newer_first = list(reversed(older_first))
    order = sorted(older_first if to_add < 0 else newer_first, key=lambda rs: -replicas(rs))
    sizes, added = [], 0
    for rs in order:
        proportion = get_proportion(rs, d, to_add, added)
        sizes.append(replicas(rs) + proportion)
        added += proportion
    if to_add and sizes:
        sizes[0] = max(0, sizes[0] + to_add - added)
    return list(zip(order, sizes, strict=True))


def find_active_or_latest(new_rs: ReplicaSet | None,
                          old_rss: list[ReplicaSet]) -> ReplicaSet | None:
    """The one ReplicaSet with replicas (or the newest) when at most one has any."""
    live = active([new_rs, *old_rss])
    if len(live) == 1:
        return live[0]
    if live:
        return None
    return new_rs or max(old_rss, key=by_age, default=None)


def is_saturated(d: Deployment, rs: ReplicaSet | None) -> bool:
    return (rs is not None and replicas(rs) == replicas(d)
            and _int_annotation(rs, DESIRED_REPLICAS) == replicas(d))


def is_scaling_event(d: Deployment, rss: Iterable[ReplicaSet | None]) -> bool:
    """An active ReplicaSet was sized for another deployment size."""
    wanted = [_int_annotation(rs, DESIRED_REPLICAS) for rs in active(rss)]
    return any(w is not None and w != replicas(d) for w in wanted)


def replica_sets_to_prune(d: Deployment, old_rss: list[ReplicaSet]) -> list[ReplicaSet]:
    """Old, empty, settled ReplicaSets beyond revisionHistoryLimit, lowest revision first."""
    limit = d["spec"].get("revisionHistoryLimit")
    alive = [rs for rs in old_rss if not is_being_deleted(rs)]
    if limit is None or len(alive) <= limit:
        return []
    oldest = sorted(alive, key=lambda rs: (revision(rs), by_age(rs)))[:len(alive) - limit]
    return [rs for rs in oldest
            if replicas(rs) == 0 and status_count(rs, "replicas") == 0
            and generation_of(rs) <= status_count(rs, "observedGeneration")]


# ---------------------------------------------------------------- revisions


def max_revision(rss: Iterable[ReplicaSet]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def replicas_annotations(d: Deployment) -> dict[str, str]:
    return {DESIRED_REPLICAS: str(replicas(d)), MAX_REPLICAS: str(replicas(d) + max_surge(d))}


def _with_history(history: str, old: str) -> str:
    entries = [e for e in history.split(",") if e] + [old]
    while len(entries) > 1 and len(",".join(entries)) > MAX_REVISION_HISTORY_CHARS:
        entries.pop(0)
    return ",".join(entries)


def new_rs_annotations(d: Deployment, rs: ReplicaSet, new_revision: int, *,
                       exists: bool) -> dict[str, str]:
    """The new ReplicaSet's annotations: the deployment's, and a revision never lowered.

    A ReplicaSet that had a revision and gets a higher one is being rolled
    back to: its old number goes to the revision-history annotation.
    """
    result = dict(annotations_of(rs))
    result.update({k: v for k, v in annotations_of(d).items() if k not in NOT_COPIED})
    had = REVISION in result
    if revision(rs) < new_revision:
        result[REVISION] = str(new_revision)
        if had:
            result[REVISION_HISTORY] = _with_history(result.get(REVISION_HISTORY, ""),
                                                     annotations_of(rs)[REVISION])
    if not exists:
        result.update(replicas_annotations(d))
    return result


# --------------------------------------------------------------- conditions


def new_condition(kind: str, state: ConditionStatus, reason: str, message: str,
                  now: dt.datetime) -> DeploymentCondition:
    stamp = format_time(now)
    return {"type": kind, "status": state, "lastUpdateTime": stamp,
            "lastTransitionTime": stamp, "reason": reason, "message": message}


def set_condition(status: DeploymentStatus, condition: DeploymentCondition) -> None:
    """Replace the condition of its type, unless status and reason are unchanged."""
    status["conditions"] = with_condition(status.get("conditions"), condition)


def remove_condition(status: DeploymentStatus, kind: str) -> None:
    status["conditions"] = without_condition(status.get("conditions"), kind)


def progressing_of(d: Deployment) -> DeploymentCondition | None:
    """The deployment's stored Progressing condition."""
    return find_condition((d.get("status") or {}).get("conditions"), PROGRESSING)


def has_deadline(d: Deployment) -> bool:
    return d["spec"].get("progressDeadlineSeconds") not in (None, NO_DEADLINE)


# ------------------------------------------------------------------- status


def calculate_status(d: Deployment, all_rss: Iterable[ReplicaSet | None],
                     new_rs: ReplicaSet | None, now: dt.datetime) -> DeploymentStatus:
    all_rss = list(all_rss)
    available = total(all_rss, "availableReplicas")
    counts: dict[DeploymentCount, int] = {
        "replicas": total(all_rss, "replicas"),
        "updatedReplicas": status_count(new_rs, "replicas"),
        "readyReplicas": total(all_rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": max(0, total(all_rss) - available),
    }
    status: DeploymentStatus = {"observedGeneration": generation_of(d)}
    for field, count in counts.items():
        if count:
            status[field] = count
    before = d.get("status") or {}
    status["conditions"] = copy.deepcopy(before.get("conditions") or [])
    if before.get("collisionCount") is not None:
        status["collisionCount"] = before["collisionCount"]
    if available >= replicas(d) - max_unavailable(d):
        cond = new_condition(AVAILABLE, "True", MIN_AVAILABLE,
                             "Deployment has minimum availability.", now)
    else:
        cond = new_condition(AVAILABLE, "False", MIN_UNAVAILABLE,
                             "Deployment does not have minimum availability.", now)
    set_condition(status, cond)
    return status


def _count(status: DeploymentStatus, field: DeploymentCount) -> int:
    return int(status.get(field) or 0)


def deployment_complete(d: Deployment, status: DeploymentStatus) -> bool:
    counts: tuple[DeploymentCount, ...] = ("updatedReplicas", "replicas", "availableReplicas")
    return (all(_count(status, field) == replicas(d) for field in counts)
            and _count(status, "observedGeneration") >= generation_of(d))


def deployment_progressing(d: Deployment, status: DeploymentStatus) -> bool:
    """Compared with the stored status: more updated, ready or available, or fewer old."""
    before = d.get("status") or {}
    grown: tuple[DeploymentCount, ...] = ("updatedReplicas", "readyReplicas", "availableReplicas")
    grew = any(_count(status, field) > _count(before, field) for field in grown)
    old_now = _count(status, "replicas") - _count(status, "updatedReplicas")
    return grew or old_now < _count(before, "replicas") - _count(before, "updatedReplicas")


def _deadline_at(d: Deployment, condition: DeploymentCondition) -> dt.datetime | None:
    since = parse_time(condition.get("lastUpdateTime"))
    if since is None:
        return None
    return since + dt.timedelta(seconds=int(d["spec"]["progressDeadlineSeconds"]))


def timed_out(d: Deployment, status: DeploymentStatus, now: dt.datetime) -> bool:
    condition = find_condition(status.get("conditions"), PROGRESSING)
    if not has_deadline(d) or condition is None:
        return False
    if condition.get("reason") == TIMED_OUT:
        return True
    deadline = _deadline_at(d, condition)
    return deadline is not None and deadline < now


def _progress_condition(d: Deployment, status: DeploymentStatus, new_rs: ReplicaSet | None,
                        now: dt.datetime) -> None:
    subject = (f'ReplicaSet "{name_of(new_rs)}"' if new_rs
               else f'Deployment "{name_of(d)}"')
    current = progressing_of(d)
    if deployment_complete(d, status):
        set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE,
                                            f"{subject} has successfully progressed.", now))
    elif deployment_progressing(d, status):
        cond = new_condition(PROGRESSING, "True", RS_UPDATED, f"{subject} is progressing.", now)
        if current and current["status"] == "True":
            cond["lastTransitionTime"] = current.get("lastTransitionTime")
        remove_condition(status, PROGRESSING)
        set_condition(status, cond)
    elif timed_out(d, status, now):
        set_condition(status, new_condition(PROGRESSING, "False", TIMED_OUT,
                                            f"{subject} has timed out progressing.", now))


def rollout_status(d: Deployment, all_rss: Iterable[ReplicaSet | None],
                   new_rs: ReplicaSet | None, now: dt.datetime) -> DeploymentStatus:
    """The status of a deployment mid-rollout, with its Progressing condition estimated."""
    all_rss = list(all_rss)
    status = calculate_status(d, all_rss, new_rs, now)
    if not has_deadline(d):
        remove_condition(status, PROGRESSING)
    current = progressing_of(d)
    complete = (status.get("replicas") == status.get("updatedReplicas") and current is not None
                and current.get("reason") == NEW_RS_AVAILABLE)
    if has_deadline(d) and not complete:
        _progress_condition(d, status, new_rs, now)
    failures = [c for rs in [new_rs, *all_rss] if rs
                for c in (rs.get("status") or {}).get("conditions") or []
                if c.get("type") == REPLICA_FAILURE]
    if failures:
        failure = failures[0]
        condition: DeploymentCondition = {**failure,
                                          "lastUpdateTime": failure.get("lastTransitionTime")}
        set_condition(status, condition)
    else:
        remove_condition(status, REPLICA_FAILURE)
    return status


def progress_check_after(d: Deployment, status: DeploymentStatus,
                         now: dt.datetime) -> float | None:
    """Seconds until a stuck rollout should be checked against its deadline, if ever."""
    current = progressing_of(d)
    if not has_deadline(d) or current is None or current.get("reason") == TIMED_OUT:
        return None
    if deployment_complete(d, status):
        return None
    deadline = _deadline_at(d, current)
    if deadline is None:
        return None
    return max(0.0, (deadline - now).total_seconds()) + 1.0
