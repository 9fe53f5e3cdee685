"""Kind-specific rules of an object's life in the API server.

What the generic storage delegates: which server fields a create sets and
which user fields it drops, what the main resource and the `status`
subresource may each change, when a write bumps `generation`, and how a
delete proceeds (finalizers, graceful pod deletion, namespaces that
terminate). A Service update first keeps its allocated values and drops
those of a type it no longer has (`service_strategy`).

A delete never looks at other objects. As in Kubernetes, its propagation
policy only leaves a finalizer for the garbage collector: `orphan` (the
collector strips the owner's references from its dependents) or
`foregroundDeletion` (the collector deletes the dependents first); the
collector then drops the finalizer and the owner goes with it. A namespace
is only marked Terminating: the namespace controller deletes its content
and then removes its `kubernetes` finalizer.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from typing import Any

from minik.api import errors, meta
from minik.api.defaults import apply_defaults
from minik.api.models.base import go_quote
from minik.api.propagation import FOREGROUND, ORPHAN, UNCOLLECTED_KINDS
from minik.api.query import parse_bool
from minik.api.resources import EPHEMERAL_CONTAINERS, ResourceType
from minik.apiserver import job_strategy, service_strategy
from minik.apiserver.params import int64_query
from minik.apiserver.validate import validate_body

POLICY_OF = {ORPHAN: "Orphan", FOREGROUND: "Foreground"}
POLICIES = ("Background", "Foreground", "Orphan")
STATUS_ON_CREATE = {"Node", "Event"}
DEFAULT_POD_GRACE = 30


@dataclass(slots=True)
class DeleteOptions:
    """metav1.DeleteOptions, from the body or the query."""

    propagation_policy: str | None = None
    grace_period_seconds: int | None = None
    precondition_uid: str | None = None
    precondition_resource_version: str | None = None
    dry_run: bool = False
    orphan_dependents: bool | None = None
    """The deprecated field as sent (its policy is in `propagation_policy`): an explicit
    false makes a delete that only marks the object answer 202 Accepted."""

    @classmethod
    def parse(cls, body: dict[str, Any], query: dict[str, str]) -> DeleteOptions:
        """Options from the body, else the query; a malformed one is a 400 or a 422, as
        Kubernetes decodes (int64 included) and validates `metav1.DeleteOptions`."""
        if body:
            _check_body(body)
        orphan = body.get("orphanDependents")
        if orphan is None and "orphanDependents" in query:
            orphan = parse_bool(query, "orphanDependents")
        policy = body.get("propagationPolicy") or query.get("propagationPolicy")
        _check_policy(policy, orphan, query.get("dryRun"))
        if policy is None and orphan is not None:
            policy = "Orphan" if orphan else "Background"
        grace = body.get("gracePeriodSeconds")
        pre = body.get("preconditions") or {}
        dry = body.get("dryRun") or query.get("dryRun")
        return cls(
            propagation_policy=policy,
            grace_period_seconds=int64_query(query, "gracePeriodSeconds") if grace is None
            else grace,
            precondition_uid=pre.get("uid"),
            precondition_resource_version=pre.get("resourceVersion"),
            dry_run=bool(dry) and dry != "false",
            orphan_dependents=orphan,
        )


def _check_body(body: dict[str, Any]) -> None:
    """Decode-time type and range checks, and the model's rules, of a DeleteOptions body.

    Its apiVersion is not checked: clients send `v1`, their group's version or
    `meta.k8s.io/v1`, all of which Kubernetes accepts.
    """
    fields = {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}
    validate_body("v1", "DeleteOptions", fields, field_validation="Ignore")


def _check_policy(policy: str | None, orphan: bool | None, dry_run: str | None) -> None:
    """`ValidateDeleteOptions`: a known policy, not both ways of asking for one, and a dry
    run that is `All` (the only kind there is)."""
    causes = []
    if dry_run not in (None, "", "All"):
        causes.append(errors.Cause("dryRun", f"Unsupported value: [{go_quote(dry_run)}]: "
                                   'supported values: "All"', "FieldValueNotSupported"))
    if policy is not None and policy not in POLICIES:
        supported = '"Foreground", "Background", "Orphan", "nil"'
        causes.append(errors.Cause("propagationPolicy", f"Unsupported value: {go_quote(policy)}: "
                                   f"supported values: {supported}", "FieldValueNotSupported"))
    elif policy is not None and orphan is not None:
        causes.append(errors.Cause("propagationPolicy", f"Invalid value: {go_quote(policy)}: "
                                   "orphanDependents and deletionPropagation cannot be both set",
                                   "FieldValueInvalid"))
    if causes:
        raise errors.invalid("DeleteOptions", "", causes, group="meta.k8s.io")


@dataclass(slots=True)
class DeletePlan:
    """What a delete does: remove the object now, or only mark it."""

    obj: dict[str, Any]
    mark_only: bool


EMPTY_OMITTED = ("labels", "annotations", "finalizers", "ownerReferences")


def _omit_empty(md: dict[str, Any]) -> None:
    """Empty lists and maps are absent, as Go's omitempty leaves them in Kubernetes."""
    for name in EMPTY_OMITTED:
        if name in md and not md[name]:
            del md[name]


def prepare_for_create(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    md = meta.metadata(obj)
    _omit_empty(md)
    for name in meta.SERVER_FIELDS:
        md.pop(name, None)
    md.pop("managedFields", None)
    md["uid"] = meta.new_uid()
    md["creationTimestamp"] = meta.format_time(meta.now())
    if rt.has_status:
        md["generation"] = 1
        if rt.kind not in STATUS_ON_CREATE:
            obj.pop("status", None)
    obj = apply_defaults(rt, obj)
    if rt.kind == "Job":
        job_strategy.generate_selector(obj)
    if rt.kind == "Pod":
        obj.setdefault("status", {}).setdefault("phase", "Pending")
    if rt.kind == "PersistentVolume":
        obj["status"]["lastPhaseTransitionTime"] = md["creationTimestamp"]
    return obj


def _keep_server_metadata(current: dict[str, Any], desired: dict[str, Any]) -> None:
    old, new = current.get("metadata", {}), meta.metadata(desired)
    for name in ("uid", "creationTimestamp", "deletionTimestamp",
                 "deletionGracePeriodSeconds", "generation", "namespace", "name"):
        if name in old:
            new[name] = old[name]
        else:
            new.pop(name, None)


def merge_for_update(
    rt: ResourceType, current: dict[str, Any], desired: dict[str, Any], *,
    subresource: str | None,
) -> dict[str, Any]:
    """The object a write produces: the main resource keeps status, `status` keeps the rest,
    `ephemeralcontainers` keeps all but the pod's `spec.ephemeralContainers`."""
    if subresource == "status":
        merged = copy.deepcopy(current)
        merged["status"] = copy.deepcopy(desired.get("status", {}))
        return apply_defaults(rt, merged)
    if subresource == EPHEMERAL_CONTAINERS:
        merged = copy.deepcopy(current)
        wanted = (desired.get("spec") or {}).get("ephemeralContainers")
        merged.setdefault("spec", {})["ephemeralContainers"] = copy.deepcopy(wanted)
        if wanted is None:
            del merged["spec"]["ephemeralContainers"]
        return apply_defaults(rt, merged)
    merged = copy.deepcopy(desired)
    _keep_server_metadata(current, merged)
    if rt.has_status and subresource != "binding":
        if "status" in current:
            merged["status"] = copy.deepcopy(current["status"])
        else:
            merged.pop("status", None)
    if rt.kind == "Service":
        service_strategy.prepare_for_update(current, merged)
    return apply_defaults(rt, merged)


def prepare_for_update(
    rt: ResourceType, current: dict[str, Any], merged: dict[str, Any]
) -> dict[str, Any]:
    md = meta.metadata(merged)
    _omit_empty(md)
    if "generation" in md and meta.spec_view(merged) != meta.spec_view(current):
        md["generation"] = int(md["generation"]) + 1
    if rt.kind == "PersistentVolume":
        _stamp_phase_transition(current, merged)
    if md.get("deletionTimestamp"):
        added = set(md.get("finalizers") or []) - set(current["metadata"].get("finalizers") or [])
        if added and rt.kind != "Namespace":
            raise errors.forbidden(
                f"no new finalizers can be added if the object is being deleted, found new "
                f"finalizers {sorted(added)}"
            )
    return merged


def _stamp_phase_transition(current: dict[str, Any], merged: dict[str, Any]) -> None:
    """A PersistentVolume's phase change is timed unless the writer timed it (PV strategy)."""
    old, new = current.get("status") or {}, merged.get("status")
    if not isinstance(new, dict) or old.get("phase") == new.get("phase"):
        return
    if new.get("lastPhaseTransitionTime") in (None, old.get("lastPhaseTransitionTime")):
        new["lastPhaseTransitionTime"] = meta.format_time(meta.now())


def ready_to_vanish(obj: dict[str, Any]) -> bool:
    """Marked for deletion, grace period over, nothing left to finalize."""
    md = obj.get("metadata", {})
    if not md.get("deletionTimestamp") or md.get("finalizers"):
        return False
    if obj.get("kind") == "Namespace" and obj.get("spec", {}).get("finalizers"):
        return False
    return int(md.get("deletionGracePeriodSeconds") or 0) == 0


def check_preconditions(rt: ResourceType, current: dict[str, Any], options: DeleteOptions) -> None:
    md = current["metadata"]
    if options.precondition_uid and options.precondition_uid != md.get("uid"):
        raise errors.conflict(
            rt.plural, md["name"], group=rt.group,
            why=f"Precondition failed: UID in precondition: {options.precondition_uid}, "
                f"UID in object meta: {md.get('uid')}",
        )
    wanted = options.precondition_resource_version
    if wanted and wanted != md.get("resourceVersion"):
        raise errors.conflict(
            rt.plural, md["name"], group=rt.group,
            why=f"Precondition failed: ResourceVersion in precondition: {wanted}, "
                f"ResourceVersion in object meta: {md.get('resourceVersion')}",
        )


def _pod_grace(obj: dict[str, Any], options: DeleteOptions) -> int:
    if not obj.get("spec", {}).get("nodeName"):
        return 0
    if obj.get("status", {}).get("phase") in ("Succeeded", "Failed"):
        return 0
    if options.grace_period_seconds is not None:
        return max(0, options.grace_period_seconds)
    grace = obj.get("spec", {}).get("terminationGracePeriodSeconds")
    return DEFAULT_POD_GRACE if grace is None else int(grace)


LATEST_DEADLINE = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)


def _deadline(grace: int) -> dt.datetime:
    """Now plus `grace` seconds; a grace longer than the calendar (any int64 is allowed)
    ends on its last second."""
    now = meta.now()
    if grace >= (LATEST_DEADLINE - now).total_seconds():
        return LATEST_DEADLINE
    return now + dt.timedelta(seconds=grace)


def _mark(obj: dict[str, Any], grace: int) -> dict[str, Any]:
    marked = copy.deepcopy(obj)
    md = meta.metadata(marked)
    deadline = _deadline(grace)
    if not md.get("deletionTimestamp") or grace < int(md.get("deletionGracePeriodSeconds") or 0):
        md["deletionTimestamp"] = meta.format_time(deadline)
        md["deletionGracePeriodSeconds"] = grace
    return marked


def plan_delete(rt: ResourceType, obj: dict[str, Any], options: DeleteOptions, *,
                garbage_collection: bool) -> DeletePlan:
    """Mark the object (a grace period, the garbage collector's finalizers), or remove it now.

    A namespace is only marked Terminating while any finalizer holds it (its
    `kubernetes` one until the namespace controller has emptied it), as
    Kubernetes' namespace registry does. Without `garbage_collection` (its
    controller disabled) a delete leaves the finalizers as they are: none of
    the collector's would ever be removed, as Kubernetes' store skips them
    when its garbage collection is off.
    """
    grace = _pod_grace(obj, options) if rt.kind == "Pod" else 0
    marked = _mark(obj, grace)
    md = marked["metadata"]
    if rt.kind == "Namespace":
        marked.setdefault("status", {})["phase"] = "Terminating"
        held = md.get("finalizers") or (marked.get("spec") or {}).get("finalizers")
        return DeletePlan(marked, mark_only=bool(held))
    if garbage_collection and not _pending_graceful(obj, grace):
        _set_finalizers(md, gc_finalizers(rt, md, options))
    return DeletePlan(marked, mark_only=bool(md.get("finalizers")) or grace > 0)


def _pending_graceful(obj: dict[str, Any], grace: int) -> bool:
    """Already being deleted gracefully, and not hurried: the delete changes nothing
    (`BeforeDelete`'s gracefulPending)."""
    md = obj["metadata"]
    pending = int(md.get("deletionGracePeriodSeconds") or 0)
    return bool(md.get("deletionTimestamp")) and pending > 0 and grace >= pending


def gc_finalizers(rt: ResourceType, md: dict[str, Any], options: DeleteOptions) -> list[str]:
    """The finalizers a delete leaves for the garbage collector to act on and remove.

    Kubernetes' `deletionFinalizersForGarbageCollection`: the propagation
    policy asked for decides (Orphan: `orphan`; Foreground:
    `foregroundDeletion`; Background: neither), else a GC finalizer the
    object already has stays; the object's other finalizers are kept. Which
    dependents there are is the collector's business, not the request's.
    """
    current = list(md.get("finalizers") or [])
    if rt.kind in UNCOLLECTED_KINDS:
        return current
    policy = options.propagation_policy
    if policy is None:
        policy = next((POLICY_OF[f] for f in current if f in POLICY_OF), "Background")
    wanted = [f for f in current if f not in POLICY_OF]
    if policy == "Orphan":
        wanted.append(ORPHAN)
    elif policy == "Foreground":
        wanted.append(FOREGROUND)
    return current if set(wanted) == set(current) else wanted


def _set_finalizers(md: dict[str, Any], finalizers: list[str]) -> None:
    if finalizers:
        md["finalizers"] = finalizers
    else:
        md.pop("finalizers", None)
