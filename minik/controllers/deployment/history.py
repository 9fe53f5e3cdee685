"""A Deployment's ReplicaSets as its revision history, after Kubernetes' `deployment/util`.

Pure functions of the shapes of `minik.api.objects`: the pod-template hash
that names a new ReplicaSet (fnv32a of the template's canonical JSON and the
collision count, safe-encoded as `ComputeHash` does) over the normal form
that the semantic template comparison uses (`minik.api.revisions`, shared
with `minik rollout`); which ReplicaSet is the new one, and the body of one
to create; the revision annotations (a ReplicaSet rolled back to gets the
next revision and keeps its old ones in `revision-history`); and which old
ReplicaSets `revisionHistoryLimit` prunes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable

from minik.api.meta import (
    annotations_of,
    generation_of,
    is_being_deleted,
    meta_of,
    name_of,
    new_controller_ref,
)
from minik.api.objects import Deployment, PodTemplateSpec, ReplicaSet
from minik.api.revisions import (
    HASH_LABEL,
    REVISION,
    equal_ignore_hash,
    fnv32a,
    normal_template,
    revision,
    safe_encode,
)
from minik.controllers.deployment.sizes import (
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    by_age,
    replicas,
    replicas_annotations,
    status_count,
)

REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
NOT_COPIED = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS,
                        MAX_REPLICAS, "deprecated.deployment.rollback.to"})
MAX_REVISION_HISTORY_CHARS = 2000


# ------------------------------------------------------- hash and comparison


def template_hash(template: PodTemplateSpec, collision_count: int | None = None) -> str:
    """A short stable name for a pod template: equal templates give equal hashes."""
    data = json.dumps(normal_template(template), sort_keys=True, separators=(",", ":"))
    raw = data.encode()
    if collision_count is not None:
        raw += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4)
    return safe_encode(fnv32a(raw))


def find_new_replica_set(d: Deployment, rss: Iterable[ReplicaSet]) -> ReplicaSet | None:
    """The oldest ReplicaSet whose template is the deployment's."""
    template = d["spec"].get("template") or {}
    return next((rs for rs in sorted(rss, key=by_age)
                 if equal_ignore_hash(rs["spec"].get("template") or {}, template)), None)


# --------------------------------------------------------- the new ReplicaSet


def replica_set_for(d: Deployment, pod_hash: str, new_revision: int) -> ReplicaSet:
    """The new ReplicaSet of `d`: its template, the hash label, owned by `d`, size 0."""
    template = copy.deepcopy(d["spec"]["template"])
    labels = {**(template.setdefault("metadata", {}).get("labels") or {}), HASH_LABEL: pod_hash}
    template["metadata"]["labels"] = labels
    selector = copy.deepcopy(d["spec"]["selector"])
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: pod_hash}
    rs: ReplicaSet = {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": f"{name_of(d)}-{pod_hash}", "namespace": meta_of(d)["namespace"],
                     "labels": dict(labels),
                     "ownerReferences": [new_controller_ref(d, api_version="apps/v1",
                                                            kind="Deployment")]},
        "spec": {"replicas": 0, "selector": selector, "template": template},
    }
    if d["spec"].get("minReadySeconds"):
        rs["spec"]["minReadySeconds"] = d["spec"]["minReadySeconds"]
    rs["metadata"]["annotations"] = new_rs_annotations(d, rs, new_revision, exists=False)
    return rs


# ---------------------------------------------------------------- revisions


def max_revision(rss: Iterable[ReplicaSet]) -> int:
    return max((revision(rs) for rs in rss), default=0)


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


# ------------------------------------------------------------------ pruning


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
