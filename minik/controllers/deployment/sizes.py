"""How big a Deployment's ReplicaSets should be, after Kubernetes' `deployment/util`.

Pure functions of the shapes of `minik.api.objects`, testable without a
server: `spec.replicas` and the status counts summed over ReplicaSets;
maxSurge and maxUnavailable (surge rounds up, unavailable down, both 0 allow
1 unavailable); the sizes a rolling update gives the new ReplicaSet and the
old ones (unhealthy replicas go first, then within maxUnavailable); and a
mid-rollout resize, split over the active ReplicaSets in proportion
(`GetProportion`) as read from the desired- and max-replicas annotations
each ReplicaSet carries (`replicas_annotations`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

from minik.api.meta import annotations_of, meta_of, name_of
from minik.api.objects import Deployment, ReplicaSet

ReplicaCount = Literal["replicas", "readyReplicas", "availableReplicas", "observedGeneration"]
"""A count both a Deployment's and a ReplicaSet's status have."""

DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"


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
    return meta_of(rs).get("creationTimestamp") or "", name_of(rs)


def is_rolling(d: Deployment) -> bool:
    return (d["spec"].get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


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


def replicas_annotations(d: Deployment) -> dict[str, str]:
    return {DESIRED_REPLICAS: str(replicas(d)), MAX_REPLICAS: str(replicas(d) + max_surge(d))}
