"""A StatefulSet's revisions: ControllerRevisions, after Kubernetes' `controller/history`.

A revision's `data` is the strategic merge patch that puts the set's pod
template back, `{"spec": {"template": {..., "$patch": "replace"}}}`
(`getPatch`); `kubectl rollout undo` sends exactly that patch. Its name is
`<set>-<hash>`, the hash being FNV-1 of the data's canonical JSON and, after
a name collision, of the collision count in decimal (`HashControllerRevision`);
the same hash is its `controller.kubernetes.io/hash` label. It carries the
template's labels and the set's annotations, and the set as its controller.

Two revisions are equal when their templates are, compared in the normal
form of `minik.api.revisions` (so a template that went out through kubectl
and came back re-encoded still finds its revision). The update revision is
the newest equal one, renumbered to the next revision when it is not the
newest (a rollback); the current revision is the one `status.currentRevision`
names, or the update revision for a new set. Revisions that no pod, neither
current nor update revision uses, beyond `revisionHistoryLimit`, go oldest
first.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
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
    JsonObject,
    ObjectMeta,
    Pod,
    PodTemplateSpec,
    StatefulSet,
)
from minik.api.revisions import fnv32, normal_template, safe_encode
from minik.controllers.statefulset.identity import revision_of

HASH_LABEL = "controller.kubernetes.io/hash"
MAX_PREFIX = 223
DEFAULT_HISTORY_LIMIT = 10


def revision_data(sts: StatefulSet) -> JsonObject:
    """The patch that restores the set's pod template."""
    template: JsonObject = copy.deepcopy(dict((sts.get("spec") or {}).get("template") or {}))
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def hash_revision(data: JsonObject, collision_count: int | None = None) -> str:
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        raw += str(collision_count).encode()
    return safe_encode(fnv32(raw))


def revision_name(sts: StatefulSet, hash_value: str) -> str:
    return f"{name_of(sts)[:MAX_PREFIX]}-{hash_value}"


def new_revision(sts: StatefulSet, number: int, collision_count: int,
                 kind: str = "StatefulSet") -> ControllerRevision:
    """The revision of the set's template as it is now, numbered `number`; `kind` is the
    owner's (the DaemonSet controller keeps its history the same way)."""
    data = revision_data(sts)
    hash_value = hash_revision(data, collision_count)
    template_labels = (((sts.get("spec") or {}).get("template") or {}).get("metadata")
                       or {}).get("labels") or {}
    md: ObjectMeta = {
        "name": revision_name(sts, hash_value), "namespace": namespace_of(sts) or "",
        "labels": {**template_labels, HASH_LABEL: hash_value},
        "ownerReferences": [new_controller_ref(sts, api_version="apps/v1", kind=kind)],
    }
    if annotations_of(sts):
        md["annotations"] = dict(annotations_of(sts))
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": md,
            "data": data, "revision": number}


def renamed(revision: ControllerRevision, sts: StatefulSet,
            collision_count: int) -> ControllerRevision:
    """`revision` under the name a further collision count gives it."""
    clone = copy.deepcopy(revision)
    hash_value = hash_revision(clone.get("data") or {}, collision_count)
    clone["metadata"]["name"] = revision_name(sts, hash_value)
    clone["metadata"]["labels"] = {**labels_of(clone), HASH_LABEL: hash_value}
    return clone


def template_of_revision(revision: ControllerRevision) -> JsonObject:
    """The pod template a revision restores (its `$patch` directive dropped)."""
    template = dict(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


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


def history_limit(sts: StatefulSet) -> int:
    limit = (sts.get("spec") or {}).get("revisionHistoryLimit")
    return DEFAULT_HISTORY_LIMIT if limit is None else int(limit)


def revisions_to_truncate(sts: StatefulSet, pods: Iterable[Pod],
                          revisions: list[ControllerRevision],
                          live: Iterable[str]) -> list[ControllerRevision]:
    """Revisions (sorted) beyond the history limit that nothing uses, oldest first."""
    in_use = {*live, *(revision_of(p) for p in pods)}
    history = [r for r in revisions if name_of(r) not in in_use]
    limit = history_limit(sts)
    if limit < 0 or len(history) <= limit:
        return []
    return history[:len(history) - limit]


def is_orphan_of(revision: ControllerRevision) -> bool:
    return not any(ref.get("controller") for ref in meta_of(revision).get("ownerReferences")
                   or [])
