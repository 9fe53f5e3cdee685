"""How a Deployment moves to its template: RollingUpdate, Recreate, and scaling alone.

Kubernetes' `rolling.go`, `recreate.go` and `sync.go`, as functions of a
`Rollout` (which makes the writes):

- `rolling_update` creates the new ReplicaSet, grows it within maxSurge and
  shrinks the old ones within maxUnavailable, by the availableReplicas they
  report; a finished rollout prunes the old ReplicaSets beyond
  revisionHistoryLimit;
- `recreate` scales every old ReplicaSet to 0, waits until none of their
  pods runs (the pods informer says), then creates or scales up the new one;
- `sync_scale` is for a paused deployment or a resized one (an active
  ReplicaSet's desired-replicas annotation differs): it only scales,
  proportionally mid-rollout, then reports the status.
"""

from __future__ import annotations

from minik.api.meta import is_pod_terminal, uid_of
from minik.api.objects import Pod, ReplicaSet
from minik.controllers.deployment import progress, sizes
from minik.controllers.deployment.rollout import Rollout
from minik.machinery.informer import OWNER_INDEX, Indexer


async def sync_scale(st: Rollout) -> None:
    """Paused or resized: scale without rolling, then report."""
    new, old = await st.new_and_old(create=False)
    await _scale_proportionally(st, new, old)
    if st.d["spec"].get("paused"):
        await st.cleanup(new)
    status = progress.calculate_status(st.d, st.rss, st.fresh(new), st.wall())
    await st.write_if_changed(status)


async def _scale_proportionally(st: Rollout, new: ReplicaSet | None,
                                old: list[ReplicaSet]) -> None:
    d = st.d
    target = sizes.find_active_or_latest(new, old)
    if target is not None:
        if sizes.replicas(target) != sizes.replicas(d):
            await st.scale(target, sizes.replicas(d))
    elif sizes.is_saturated(d, new):
        for rs in sizes.active(old):
            await st.scale(rs, 0)
    elif sizes.is_rolling(d):
        for rs, size in sizes.proportional_sizes(d, sizes.active([new, *old])):
            await st.scale(rs, size)


# ------------------------------------------------------------ RollingUpdate


async def rolling_update(st: Rollout) -> None:
    new, _ = await st.new_and_old(create=True)
    if not (await _grow_new(st, new) or await _shrink_old(st, new)) and \
            progress.deployment_complete(st.d, st.d.get("status") or {}):
        await st.cleanup(new)
    await st.sync_status(new)


async def _grow_new(st: Rollout, new: ReplicaSet | None) -> bool:
    if new is None:
        return False
    d = st.d
    size = (sizes.replicas(d) if sizes.replicas(new) > sizes.replicas(d)
            else sizes.new_rs_new_replicas(d, st.rss, new))
    return size != sizes.replicas(new) and await st.scale(new, size)


async def _shrink_old(st: Rollout, new: ReplicaSet | None) -> bool:
    new = st.fresh(new)
    plan = sizes.old_scale_down(st.d, st.rss, sizes.active(st.others(new)), new)
    scaled = False
    for rs, size in plan:
        scaled = await st.scale(rs, size) or scaled
    return scaled


# ----------------------------------------------------------------- Recreate


async def recreate(st: Rollout, pods: Indexer[Pod]) -> None:
    new, old = await st.new_and_old(create=False)
    scaled = False
    for rs in sizes.active(old):
        scaled = await st.scale(rs, 0) or scaled
    if scaled or _old_pods_running(st, new, pods):
        await st.sync_status(new)
        return
    if new is None:
        new, _ = await st.new_and_old(create=True)
    new = st.fresh(new)
    if new is not None and sizes.replicas(new) != sizes.replicas(st.d):
        await st.scale(new, sizes.replicas(st.d))
    if progress.deployment_complete(st.d, st.d.get("status") or {}):
        await st.cleanup(new)
    await st.sync_status(new)


def _old_pods_running(st: Rollout, new: ReplicaSet | None, pods: Indexer[Pod]) -> bool:
    olds = st.others(new)
    if sizes.total(olds, "replicas") > 0:
        return True
    return any(not is_pod_terminal(pod)
               for rs in olds for pod in pods.by_index(OWNER_INDEX, uid_of(rs)))
