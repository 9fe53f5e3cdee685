"""Pure helpers of the deployment controller, after Kubernetes' `deployment/util`.

Functions of Deployments and ReplicaSets as plain dicts, testable without a
server: the pod-template hash (fnv32a of the template's canonical JSON and
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
from typing import Any

from minik.api.meta import format_time, parse_time
from minik.api.revisions import REVISION, equal_ignore_hash, normal_template, revision

Obj = dict[str, Any]

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


def spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def annotations(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def replicas(obj: Obj | None) -> int:
    """`spec.replicas`, 1 when unset as the API defaults it; 0 for no object."""
    if obj is None:
        return 0
    value = spec(obj).get("replicas")
    return 1 if value is None else int(value)


def status_count(obj: Obj | None, field: str) -> int:
    return int(((obj or {}).get("status") or {}).get(field) or 0)


def total(rss: Iterable[Obj | None], field: str | None = None) -> int:
    """Sum of spec.replicas, or of a status field, over `rss`."""
    return sum(replicas(rs) if field is None else status_count(rs, field) for rs in rss if rs)


def active(rss: Iterable[Obj | None]) -> list[Obj]:
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]


def by_age(rs: Obj) -> tuple[str, str]:
    md = rs.get("metadata") or {}
    return md.get("creationTimestamp") or "", md.get("name") or ""


def is_rolling(d: Obj) -> bool:
    return (spec(d).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


# ------------------------------------------------------- hash and comparison


def _fnv32a(data: bytes) -> int:
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def template_hash(template: Obj, collision_count: int | None = None) -> str:
    """A short stable name for a pod template: equal templates give equal hashes."""
    data = json.dumps(normal_template(template), sort_keys=True, separators=(",", ":"))
    raw = data.encode()
    if collision_count is not None:
        raw += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4)
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in str(_fnv32a(raw)))


def find_new_replica_set(d: Obj, rss: Iterable[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template is the deployment's."""
    template = spec(d).get("template") or {}
    return next((rs for rs in sorted(rss, key=by_age)
                 if equal_ignore_hash(spec(rs).get("template") or {}, template)), None)


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


def _fenceposts(d: Obj) -> tuple[int, int]:
    if not is_rolling(d):
        return 0, 0
    rolling = (spec(d).get("strategy") or {}).get("rollingUpdate") or {}
    return resolve_fenceposts(rolling.get("maxSurge", "25%"),
                              rolling.get("maxUnavailable", "25%"), replicas(d))


def max_surge(d: Obj) -> int:
    return _fenceposts(d)[0]


def max_unavailable(d: Obj) -> int:
    return min(_fenceposts(d)[1], replicas(d))


# --------------------------------------------------------------- scale math


def new_rs_new_replicas(d: Obj, all_rss: Iterable[Obj | None], new_rs: Obj) -> int:
    """How big the new ReplicaSet may be now (Recreate: the whole deployment)."""
    if not is_rolling(d):
        return replicas(d)
    ceiling = replicas(d) + max_surge(d)
    current = total(all_rss)
    if current >= ceiling:
        return replicas(new_rs)
    return replicas(new_rs) + min(ceiling - current, replicas(d) - replicas(new_rs))


def old_scale_down(d: Obj, all_rss: list[Obj], old_active: list[Obj],
                   new_rs: Obj | None) -> list[tuple[Obj, int]]:
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


def _int_annotation(rs: Obj, key: str) -> int | None:
    try:
        return int(annotations(rs)[key])
    except (KeyError, ValueError):
        return None


def replica_set_fraction(rs: Obj, d: Obj) -> int:
    """How many replicas `rs` gains (or loses) when the deployment's size changes."""
    if replicas(d) == 0:
        return -replicas(rs)
    allowed = replicas(d) + max_surge(d)
    annotated = _int_annotation(rs, MAX_REPLICAS) or status_count(d, "replicas") or allowed
    return math.floor(replicas(rs) * allowed / annotated + 0.5) - replicas(rs)


def get_proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
    if replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = replica_set_fraction(rs, d)
    return min(fraction, to_add - added) if to_add > 0 else max(fraction, to_add - added)


def proportional_sizes(d: Obj, active_rss: list[Obj]) -> list[tuple[Obj, int]]:
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


def find_active_or_latest(new_rs: Obj | None, old_rss: list[Obj]) -> Obj | None:
    """The one ReplicaSet with replicas (or the newest) when at most one has any."""
    live = active([new_rs, *old_rss])
    if len(live) == 1:
        return live[0]
    if live:
        return None
    return new_rs or max(old_rss, key=by_age, default=None)


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    return (rs is not None and replicas(rs) == replicas(d)
            and _int_annotation(rs, DESIRED_REPLICAS) == replicas(d))


def is_scaling_event(d: Obj, rss: Iterable[Obj | None]) -> bool:
    """An active ReplicaSet was sized for another deployment size."""
    wanted = [_int_annotation(rs, DESIRED_REPLICAS) for rs in active(rss)]
    return any(w is not None and w != replicas(d) for w in wanted)


def replica_sets_to_prune(d: Obj, old_rss: list[Obj]) -> list[Obj]:
    """Old, empty, settled ReplicaSets beyond revisionHistoryLimit, lowest revision first."""
    limit = spec(d).get("revisionHistoryLimit")
    alive = [rs for rs in old_rss if not (rs.get("metadata") or {}).get("deletionTimestamp")]
    if limit is None or len(alive) <= limit:
        return []
    oldest = sorted(alive, key=lambda rs: (revision(rs), by_age(rs)))[:len(alive) - limit]
    return [rs for rs in oldest
            if replicas(rs) == 0 and status_count(rs, "replicas") == 0
            and int((rs.get("metadata") or {}).get("generation") or 0)
            <= status_count(rs, "observedGeneration")]


# ---------------------------------------------------------------- revisions


def max_revision(rss: Iterable[Obj]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def replicas_annotations(d: Obj) -> dict[str, str]:
    return {DESIRED_REPLICAS: str(replicas(d)), MAX_REPLICAS: str(replicas(d) + max_surge(d))}


def _with_history(history: str, old: str) -> str:
    entries = [e for e in history.split(",") if e] + [old]
    while len(entries) > 1 and len(",".join(entries)) > MAX_REVISION_HISTORY_CHARS:
        entries.pop(0)
    return ",".join(entries)


def new_rs_annotations(d: Obj, rs: Obj, new_revision: int, *, exists: bool) -> dict[str, str]:
    """The new ReplicaSet's annotations: the deployment's, and a revision never lowered.

    A ReplicaSet that had a revision and gets a higher one is being rolled
    back to: its old number goes to the revision-history annotation.
    """
    result = dict(annotations(rs))
    result.update({k: v for k, v in annotations(d).items() if k not in NOT_COPIED})
    had = REVISION in result
    if revision(rs) < new_revision:
        result[REVISION] = str(new_revision)
        if had:
            result[REVISION_HISTORY] = _with_history(result.get(REVISION_HISTORY, ""),
                                                     annotations(rs)[REVISION])
    if not exists:
        result.update(replicas_annotations(d))
    return result


# --------------------------------------------------------------- conditions


def get_condition(status: Obj | None, kind: str) -> Obj | None:
    return next((c for c in (status or {}).get("conditions") or [] if c.get("type") == kind),
                None)


def remove_condition(status: Obj, kind: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != kind]


def new_condition(kind: str, state: str, reason: str, message: str, now: dt.datetime) -> Obj:
    stamp = format_time(now)
    return {"type": kind, "status": state, "lastUpdateTime": stamp,
            "lastTransitionTime": stamp, "reason": reason, "message": message}


def set_condition(status: Obj, condition: Obj) -> None:
    """Replace the condition of its type, unless status and reason are unchanged."""
    current = get_condition(status, condition["type"])
    if current and (current["status"], current.get("reason")) == (
            condition["status"], condition["reason"]):
        return
    if current and current["status"] == condition["status"]:
        condition = {**condition, "lastTransitionTime": current.get("lastTransitionTime")}
    remove_condition(status, condition["type"])
    status["conditions"].append(condition)


def has_deadline(d: Obj) -> bool:
    return spec(d).get("progressDeadlineSeconds") not in (None, NO_DEADLINE)


# ------------------------------------------------------------------- status


def calculate_status(d: Obj, all_rss: list[Obj | None], new_rs: Obj | None,
                     now: dt.datetime) -> Obj:
    available = total(all_rss, "availableReplicas")
    counts = {
        "replicas": total(all_rss, "replicas"),
        "updatedReplicas": status_count(new_rs, "replicas"),
        "readyReplicas": total(all_rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": max(0, total(all_rss) - available),
    }
    status: Obj = {"observedGeneration": (d.get("metadata") or {}).get("generation", 0),
                   **{k: v for k, v in counts.items() if v}}
    status["conditions"] = copy.deepcopy((d.get("status") or {}).get("conditions") or [])
    if (d.get("status") or {}).get("collisionCount") is not None:
        status["collisionCount"] = d["status"]["collisionCount"]
    if available >= replicas(d) - max_unavailable(d):
        cond = new_condition(AVAILABLE, "True", MIN_AVAILABLE,
                             "Deployment has minimum availability.", now)
    else:
        cond = new_condition(AVAILABLE, "False", MIN_UNAVAILABLE,
                             "Deployment does not have minimum availability.", now)
    set_condition(status, cond)
    return status


def _count(status: Obj, field: str) -> int:
    return int(status.get(field) or 0)


def deployment_complete(d: Obj, status: Obj) -> bool:
    counts = ("updatedReplicas", "replicas", "availableReplicas")
    return (all(_count(status, field) == replicas(d) for field in counts)
            and _count(status, "observedGeneration") >= _count(d.get("metadata") or {},
                                                               "generation"))


def deployment_progressing(d: Obj, status: Obj) -> bool:
    """Compared with the stored status: more updated, ready or available, or fewer old."""
    before = d.get("status") or {}
    grew = any(_count(status, field) > _count(before, field)
               for field in ("updatedReplicas", "readyReplicas", "availableReplicas"))
    old_now = _count(status, "replicas") - _count(status, "updatedReplicas")
    return grew or old_now < _count(before, "replicas") - _count(before, "updatedReplicas")


def _deadline_at(d: Obj, condition: Obj) -> dt.datetime | None:
    since = parse_time(condition.get("lastUpdateTime"))
    if since is None:
        return None
    return since + dt.timedelta(seconds=int(spec(d)["progressDeadlineSeconds"]))


def timed_out(d: Obj, status: Obj, now: dt.datetime) -> bool:
    condition = get_condition(status, PROGRESSING)
    if not has_deadline(d) or condition is None:
        return False
    if condition.get("reason") == TIMED_OUT:
        return True
    deadline = _deadline_at(d, condition)
    return deadline is not None and deadline < now


def _progress_condition(d: Obj, status: Obj, new_rs: Obj | None, now: dt.datetime) -> None:
    subject = (f'ReplicaSet "{new_rs["metadata"]["name"]}"' if new_rs
               else f'Deployment "{d["metadata"]["name"]}"')
    current = get_condition(d.get("status"), PROGRESSING)
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


def rollout_status(d: Obj, all_rss: list[Obj | None], new_rs: Obj | None,
                   now: dt.datetime) -> Obj:
    """The status of a deployment mid-rollout, with its Progressing condition estimated."""
    status = calculate_status(d, all_rss, new_rs, now)
    if not has_deadline(d):
        remove_condition(status, PROGRESSING)
    current = get_condition(d.get("status"), PROGRESSING)
    complete = (status.get("replicas") == status.get("updatedReplicas") and current is not None
                and current.get("reason") == NEW_RS_AVAILABLE)
    if has_deadline(d) and not complete:
        _progress_condition(d, status, new_rs, now)
    failures = [c for rs in [new_rs, *all_rss] if rs
                for c in (rs.get("status") or {}).get("conditions") or []
                if c.get("type") == REPLICA_FAILURE]
    if failures:
        failure = failures[0]
        set_condition(status, {**failure, "lastUpdateTime": failure.get("lastTransitionTime")})
    else:
        remove_condition(status, REPLICA_FAILURE)
    return status


def progress_check_after(d: Obj, status: Obj, now: dt.datetime) -> float | None:
    """Seconds until a stuck rollout should be checked against its deadline, if ever."""
    current = get_condition(d.get("status"), PROGRESSING)
    if not has_deadline(d) or current is None or current.get("reason") == TIMED_OUT:
        return None
    if deployment_complete(d, status):
        return None
    deadline = _deadline_at(d, current)
    if deadline is None:
        return None
    return max(0.0, (deadline - now).total_seconds()) + 1.0
