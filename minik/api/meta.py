"""Object metadata rules shared by every resource, and typed access to what every component reads.

The rules: timestamps in Kubernetes' RFC 3339 form, UIDs, `generateName`
suffixes, and the comparison that decides whether a write changed an
object's spec (and so bumps `metadata.generation`).

The accessors read an object's metadata, owner references and status
conditions, and the pod and node readiness every component agrees on (as
Kubernetes' `meta.Accessor`, `metav1.GetControllerOf` and `pkg/api/v1/pod`
do), and return the TypedDicts of `minik.api.objects`. They take a typed
object or one just decoded (`AnyObject`), never mutate it, and read a
missing or null field as its empty value: an absent `metadata` has no
labels, an absent `status` no conditions. The condition helpers are generic
in the condition type, so a Deployment's conditions stay
`DeploymentCondition`s. The readers are named `*_of` so that importing one
shadows neither `annotations` (the `__future__` import) nor a local `name`.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import random
import uuid
from collections.abc import Sequence
from typing import Any, TypeVar, cast

from minik.api.objects import (
    AnyObject,
    Condition,
    JsonObject,
    Node,
    NodeCondition,
    ObjectMeta,
    OwnerReference,
    Pod,
    PodCondition,
)

GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATE_SUFFIX_LENGTH = 5
SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                 "deletionGracePeriodSeconds", "generation", "selfLink")
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})

C = TypeVar("C", bound=Condition)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def format_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> dt.datetime | None:
    """An RFC 3339 timestamp (`metav1.Time` or `MicroTime`) as an aware datetime.

    None for no timestamp or one that does not parse; one without an offset is UTC.
    """
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


_uid_source = random.Random(os.urandom(32))


def new_uid() -> str:
    """A version 4 UUID from a PRNG seeded once from the OS (UIDs name, they do not guard)."""
    return str(uuid.UUID(int=_uid_source.getrandbits(128), version=4))


def generated_name(prefix: str) -> str:
    suffix = "".join(random.choices(GENERATE_ALPHABET, k=GENERATE_SUFFIX_LENGTH))
    return f"{prefix}{suffix}"


def metadata(obj: JsonObject) -> JsonObject:
    """The metadata map of an object being written, created if missing.

    The writer's access, for bodies not validated yet; readers use `meta_of`.
    """
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


def spec_view(obj: JsonObject) -> JsonObject:
    """Everything but metadata and status: what a generation counts changes of."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def without_resource_version(obj: JsonObject) -> JsonObject:
    clone = copy.deepcopy(obj)
    clone.get("metadata", {}).pop("resourceVersion", None)
    return clone


# ------------------------------------------------------------------ metadata


def meta_of(obj: AnyObject) -> ObjectMeta:
    """The object's metadata, `{}` when it has none (the object is not changed)."""
    return cast(ObjectMeta, obj.get("metadata") or {})


def name_of(obj: AnyObject) -> str:
    return meta_of(obj).get("name") or ""


def namespace_of(obj: AnyObject) -> str | None:
    """The namespace, None for a cluster-scoped object (or one not yet placed)."""
    return meta_of(obj).get("namespace") or None


def uid_of(obj: AnyObject) -> str:
    return meta_of(obj).get("uid") or ""


def resource_version_of(obj: AnyObject) -> str:
    return str(meta_of(obj).get("resourceVersion") or "")


def generation_of(obj: AnyObject) -> int:
    return int(meta_of(obj).get("generation") or 0)


def labels_of(obj: AnyObject) -> dict[str, str]:
    return meta_of(obj).get("labels") or {}


def annotations_of(obj: AnyObject) -> dict[str, str]:
    return meta_of(obj).get("annotations") or {}


def finalizers_of(obj: AnyObject) -> list[str]:
    return meta_of(obj).get("finalizers") or []


def created_at(obj: AnyObject) -> dt.datetime | None:
    return parse_time(meta_of(obj).get("creationTimestamp"))


def is_being_deleted(obj: AnyObject) -> bool:
    """True once a deletion has begun: `deletionTimestamp` is set."""
    return bool(meta_of(obj).get("deletionTimestamp"))


# ------------------------------------------------------------------ owners


def owner_references_of(obj: AnyObject) -> list[OwnerReference]:
    return meta_of(obj).get("ownerReferences") or []


def controller_of(obj: AnyObject) -> OwnerReference | None:
    """The owner reference marked `controller: true`, if any (`metav1.GetControllerOf`)."""
    for ref in owner_references_of(obj):
        if ref.get("controller"):
            return ref
    return None


def new_controller_ref(
    owner: AnyObject, *, api_version: str | None = None, kind: str | None = None
) -> OwnerReference:
    """The ownerReference a controller puts on what it creates or adopts (`NewControllerRef`).

    `api_version` and `kind` default to the owner's own, which a cached object may lack.
    """
    md = meta_of(owner)
    return {
        "apiVersion": api_version or str(owner.get("apiVersion") or ""),
        "kind": kind or str(owner.get("kind") or ""),
        "name": md.get("name", ""),
        "uid": md.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


# -------------------------------------------------------------- conditions


def find_condition(conditions: Sequence[C] | None, type_: str) -> C | None:
    """The first condition of `type_`, or None."""
    return next((c for c in conditions or () if c.get("type") == type_), None)


def condition_true(conditions: Sequence[C] | None, type_: str) -> bool:
    """Whether the condition of `type_` is there with status `True`."""
    found = find_condition(conditions, type_)
    return found is not None and found.get("status") == "True"


def without_condition(conditions: Sequence[C] | None, type_: str) -> list[C]:
    return [c for c in conditions or () if c.get("type") != type_]


def with_condition(conditions: Sequence[C] | None, condition: C) -> list[C]:
    """The conditions with `condition` set, by Kubernetes' `SetCondition` rule.

    An existing condition of its type with the same status and reason stays as
    it is (times included); one with the same status keeps its
    `lastTransitionTime`; otherwise `condition` replaces it, last in the list.
    """
    current: Condition | None = find_condition(conditions, condition["type"])
    if current is not None and (current.get("status"), current.get("reason")) == (
            condition["status"], condition.get("reason")):
        return list(conditions or ())
    if current is not None and current.get("status") == condition["status"]:
        condition = copy.copy(condition)
        condition["lastTransitionTime"] = current.get("lastTransitionTime")
    return [*without_condition(conditions, condition["type"]), condition]


def transition_time(previous: Condition | None, status: str, at: str) -> str:
    """The `lastTransitionTime` a recomputed condition with `status` gets at time `at`.

    The previous condition's time when its status was the same (and it had a
    time), else `at`: a transition time moves only when the status does.
    """
    if previous is not None and previous.get("status") == status:
        return previous.get("lastTransitionTime") or at
    return at


# ------------------------------------------------------- pods and nodes


def _status(obj: Pod | Node | JsonObject) -> Any:
    return obj.get("status") or {}


def pod_condition(pod: Pod | JsonObject, type_: str) -> PodCondition | None:
    conditions = cast("list[PodCondition] | None", _status(pod).get("conditions"))
    return find_condition(conditions, type_)


def is_pod_ready(pod: Pod | JsonObject) -> bool:
    """The pod's `Ready` condition is True (`podutil.IsPodReady`)."""
    conditions = cast("list[PodCondition] | None", _status(pod).get("conditions"))
    return condition_true(conditions, "Ready")


def is_pod_terminal(pod: Pod | JsonObject) -> bool:
    """The pod has finished: phase Succeeded or Failed, which is final."""
    return _status(pod).get("phase") in TERMINAL_PHASES


def node_condition(node: Node | JsonObject, type_: str) -> NodeCondition | None:
    conditions = cast("list[NodeCondition] | None", _status(node).get("conditions"))
    return find_condition(conditions, type_)


def is_node_ready(node: Node | JsonObject) -> bool:
    """The node's `Ready` condition is True."""
    conditions = cast("list[NodeCondition] | None", _status(node).get("conditions"))
    return condition_true(conditions, "Ready")
