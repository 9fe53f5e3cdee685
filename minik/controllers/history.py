"""A workload's revisions: ControllerRevisions, after Kubernetes' `controller/history`.

StatefulSets and DaemonSets keep their history the same way, differing
only in what `HistoryKind` says. A revision's `data` is the strategic merge
patch that puts the owner's pod template back,
`{"spec": {"template": {..., "$patch": "replace"}}}` (`getPatch`);
`kubectl rollout undo` sends exactly that patch. Its name is
`<owner>-<hash>` and the hash is also one of its labels: for a StatefulSet
FNV-1 of the data's canonical JSON and the collision count in decimal
(`HashControllerRevision`), labelled `controller.kubernetes.io/hash`; for
a DaemonSet the pod-template hash a Deployment uses (`ComputeHash`, over
`status.collisionCount` when set), labelled `controller-revision-hash`. It
carries the template's labels and the owner's annotations, and the owner as
its controller. Its pods carry `controller-revision-hash`: the revision's
name (StatefulSet) or its hash (DaemonSet).

Two revisions are equal when their templates are, compared in the normal
form of `minik.api.revisions` (so a template that went out through kubectl
and came back re-encoded still finds its revision). The update revision is
the newest equal one, renumbered to the next revision when it is not the
newest (a rollback: no duplicate is made); the current revision is the one
`status.currentRevision` names, or the update revision. Revisions that
nothing uses beyond `revisionHistoryLimit` (default 10) go oldest first: a
StatefulSet counts only unused ones against the limit (`truncateHistory`),
a DaemonSet all but the update revision (`cleanupHistory`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from minik.api.meta import (
    annotations_of,
    created_at,
    labels_of,
    meta_of,
    name_of,
    namespace_of,
    new_controller_ref,
)
from minik.api.objects import (
    ControllerRevision,
    DaemonSet,
    JsonObject,
    ObjectMeta,
    Pod,
    PodTemplateSpec,
    StatefulSet,
)
from minik.api.revisions import fnv32, normal_template, safe_encode
from minik.controllers.deployment.history import template_hash

HistoryOwner = StatefulSet | DaemonSet
POD_REVISION_LABEL = "controller-revision-hash"
"""The pod label naming the revision a pod was made from (`ControllerRevisionHashLabelKey`)."""
MAX_PREFIX = 223
DEFAULT_HISTORY_LIMIT = 10


@dataclass(frozen=True, slots=True)
class HistoryKind:
    """What differs between the kinds that keep ControllerRevisions."""

    kind: str
    hash_label: str
    hashes_template: bool
    """The hash is the pod template's (`ComputeHash`), not the revision data's."""
    pods_carry_hash: bool
    """A pod's revision label is the revision's hash rather than its name."""
    limit_counts_live: bool
    """Revisions in use count against `revisionHistoryLimit` (though never deleted)."""

    def pod_key(self, revision: ControllerRevision) -> str:
        """The value of `controller-revision-hash` on the revision's pods."""
        return labels_of(revision).get(self.hash_label, "") if self.pods_carry_hash \
            else name_of(revision)


STATEFULSET = HistoryKind("StatefulSet", "controller.kubernetes.io/hash", hashes_template=False,
                          pods_carry_hash=False, limit_counts_live=False)
DAEMONSET = HistoryKind("DaemonSet", POD_REVISION_LABEL, hashes_template=True,
                        pods_carry_hash=True, limit_counts_live=True)


def revision_data(owner: HistoryOwner) -> JsonObject:
    """The patch that restores the owner's pod template."""
    template: JsonObject = copy.deepcopy(dict((owner.get("spec") or {}).get("template") or {}))
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def hash_revision(data: JsonObject, collision_count: int | None = None) -> str:
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        raw += str(collision_count).encode()
    return safe_encode(fnv32(raw))


def collision_count(owner: HistoryOwner) -> int | None:
    count = (owner.get("status") or {}).get("collisionCount")
    return None if count is None else int(count)


def _hash(kind: HistoryKind, data: JsonObject, collisions: int | None) -> str:
    if kind.hashes_template:
        template = cast(PodTemplateSpec, template_of_data(data))
        return template_hash(template, collisions)
    return hash_revision(data, collisions or 0)


def revision_name(owner: HistoryOwner, hash_value: str) -> str:
    return f"{name_of(owner)[:MAX_PREFIX]}-{hash_value}"


def new_revision(owner: HistoryOwner, number: int, collisions: int | None, *,
                 kind: HistoryKind) -> ControllerRevision:
    """The revision of the owner's template as it is now, numbered `number`."""
    data = revision_data(owner)
    hash_value = _hash(kind, data, collisions)
    template_labels = (((owner.get("spec") or {}).get("template") or {}).get("metadata")
                       or {}).get("labels") or {}
    md: ObjectMeta = {
        "name": revision_name(owner, hash_value), "namespace": namespace_of(owner) or "",
        "labels": {**template_labels, kind.hash_label: hash_value},
        "ownerReferences": [new_controller_ref(owner, api_version="apps/v1", kind=kind.kind)],
    }
    if annotations_of(owner):
        md["annotations"] = dict(annotations_of(owner))
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": md,
            "data": data, "revision": number}


def renamed(revision: ControllerRevision, owner: HistoryOwner, collisions: int, *,
            kind: HistoryKind) -> ControllerRevision:
    """`revision` under the name a further collision count gives it."""
    clone = copy.deepcopy(revision)
    hash_value = _hash(kind, clone.get("data") or {}, collisions)
    clone["metadata"]["name"] = revision_name(owner, hash_value)
    clone["metadata"]["labels"] = {**labels_of(clone), kind.hash_label: hash_value}
    return clone


def template_of_data(data: JsonObject) -> JsonObject:
    template = dict((data.get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


def template_of_revision(revision: ControllerRevision) -> JsonObject:
    """The pod template a revision restores (its `$patch` directive dropped)."""
    return template_of_data(revision.get("data") or {})


def apply_revision(sts: StatefulSet, revision: ControllerRevision) -> StatefulSet:
    """The set with its template as `revision` recorded it (`ApplyRevision`)."""
    clone = copy.deepcopy(sts)
    clone["spec"]["template"] = cast(PodTemplateSpec,
                                     copy.deepcopy(template_of_revision(revision)))
    return clone


def equal_revisions(a: ControllerRevision, b: ControllerRevision) -> bool:
    return normal_template(template_of_revision(a)) == normal_template(template_of_revision(b))


def number_of(revision: ControllerRevision) -> int:
    return int(revision.get("revision") or 0)


def sort_revisions(revisions: Iterable[ControllerRevision]) -> list[ControllerRevision]:
    """By revision number; equal numbers by age, then name (`byRevision`)."""
    return sorted(revisions, key=lambda r: (number_of(r), created_at(r) is not None,
                                            created_at(r) or 0, name_of(r)))


def next_revision(revisions: list[ControllerRevision]) -> int:
    return max((number_of(r) for r in revisions), default=0) + 1


def find_equal(revisions: list[ControllerRevision],
               wanted: ControllerRevision) -> list[ControllerRevision]:
    return [r for r in revisions if equal_revisions(r, wanted)]


def history_limit(owner: HistoryOwner) -> int:
    limit = (owner.get("spec") or {}).get("revisionHistoryLimit")
    return DEFAULT_HISTORY_LIMIT if limit is None else int(limit)


def revision_of(pod: Pod) -> str:
    """The `controller-revision-hash` a pod was made with."""
    return labels_of(pod).get(POD_REVISION_LABEL, "")


def live_revisions(kind: HistoryKind, revisions: Iterable[ControllerRevision],
                   pods: Iterable[Pod]) -> set[str]:
    """The names of the revisions some pod was made from."""
    keys = {revision_of(p) for p in pods}
    return {name_of(r) for r in revisions if kind.pod_key(r) in keys}


def revisions_to_truncate(owner: HistoryOwner, revisions: list[ControllerRevision],
                          live: Iterable[str], update: str, *,
                          kind: HistoryKind) -> list[ControllerRevision]:
    """Revisions (sorted) beyond the history limit that nothing uses, oldest first; `live`
    names those in use, `update` the update revision (in use too)."""
    in_use = {*live, update}
    history = [r for r in revisions if name_of(r) not in in_use]
    counted = [r for r in revisions if name_of(r) != update] if kind.limit_counts_live \
        else history
    limit = history_limit(owner)
    excess = len(counted) - limit
    if limit < 0 or excess <= 0:
        return []
    return history[:excess]


def is_orphan_of(revision: ControllerRevision) -> bool:
    return not any(ref.get("controller") for ref in meta_of(revision).get("ownerReferences")
                   or [])
