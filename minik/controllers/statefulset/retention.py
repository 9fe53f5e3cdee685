"""`persistentVolumeClaimRetentionPolicy`: which owner references a set's claims carry.

The controller deletes no claim itself. As Kubernetes' StatefulSet
controller does, it gives a claim owner references and leaves the deleting
to the garbage collector:

    whenScaled  whenDeleted   a claim of a pod in range   of a pod scaled away
    Retain      Retain        none                        none
    Retain      Delete        the set                     the set
    Delete      Retain        none                        its pod
    Delete      Delete        the set                     its pod

(each a controller reference). So deleting the set removes the claims it
owns, and removing a pod scaled away removes its claims. A claim with a
reference to a set or pod of the same name but another uid belongs to a
previous incarnation and is left alone (`has_stale_owner_ref`); a claim
with another controller loses the set's and pod's references and keeps the
other one. A stale claim of a pod to be created while `whenScaled` is
Delete (the garbage collector is about to delete it) holds the pod back
(`claim_is_stale`).
"""

from __future__ import annotations

from minik.api.meta import meta_of, name_of, new_controller_ref, uid_of
from minik.api.objects import (
    AnyObject,
    OwnerReference,
    PersistentVolumeClaim,
    Pod,
    StatefulSet,
)
from minik.controllers.statefulset.identity import in_ordinal_range

RETAIN, DELETE = "Retain", "Delete"
SET_KIND = ("apps/v1", "StatefulSet")
POD_KIND = ("v1", "Pod")


def policy(sts: StatefulSet) -> tuple[str, str]:
    """(whenScaled, whenDeleted), Retain when unset."""
    spec = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    return spec.get("whenScaled") or RETAIN, spec.get("whenDeleted") or RETAIN


def _refs(claim: AnyObject) -> list[OwnerReference]:
    return list(meta_of(claim).get("ownerReferences") or [])


def _matches(ref: OwnerReference, obj: AnyObject, kind: tuple[str, str]) -> bool:
    return (ref.get("apiVersion"), ref.get("kind")) == kind and ref.get("name") == name_of(obj)


def has_owner_ref(claim: AnyObject, owner: AnyObject) -> bool:
    uid = uid_of(owner)
    return bool(uid) and any(ref.get("uid") == uid for ref in _refs(claim))


def has_stale_owner_ref(claim: AnyObject, obj: AnyObject, kind: tuple[str, str]) -> bool:
    """The claim refers to an object of that kind and name, but another uid."""
    ref = next((r for r in _refs(claim) if _matches(r, obj, kind)), None)
    return ref is not None and ref.get("uid") != uid_of(obj)


def has_unexpected_controller(claim: AnyObject, sts: StatefulSet, pod: Pod) -> bool:
    if policy(sts) == (RETAIN, RETAIN):
        return False
    for ref in _refs(claim):
        if _matches(ref, sts, SET_KIND):
            if ref.get("uid") != uid_of(sts):
                return True
        elif _matches(ref, pod, POD_KIND):
            if ref.get("uid") != uid_of(pod):
                return True
        elif ref.get("controller"):
            return True
    return False


def _has_non_controller_owner(claim: AnyObject, sts: StatefulSet, pod: Pod) -> bool:
    owners = {uid_of(sts), uid_of(pod)} - {""}
    return any(ref.get("uid") in owners and not ref.get("controller") for ref in _refs(claim))


def _wanted(sts: StatefulSet, pod: Pod) -> tuple[bool, bool]:
    """(set ref wanted, pod ref wanted) under the policy."""
    when_scaled, when_deleted = policy(sts)
    scaled_down = not in_ordinal_range(pod, sts)
    if when_scaled == DELETE and when_deleted == DELETE:
        return not scaled_down, scaled_down
    if when_scaled == DELETE:
        return False, scaled_down
    return when_deleted == DELETE, False


def claim_owner_up_to_date(claim: AnyObject, sts: StatefulSet, pod: Pod) -> bool:
    """The claim's references agree with the policy (`isClaimOwnerUpToDate`)."""
    if has_stale_owner_ref(claim, sts, SET_KIND) or has_stale_owner_ref(claim, pod, POD_KIND):
        return True
    if has_unexpected_controller(claim, sts, pod):
        return not (has_owner_ref(claim, sts) or has_owner_ref(claim, pod))
    if _has_non_controller_owner(claim, sts, pod):
        return False
    want_set, want_pod = _wanted(sts, pod)
    return has_owner_ref(claim, sts) == want_set and has_owner_ref(claim, pod) == want_pod


def updated_owner_refs(claim: AnyObject, sts: StatefulSet, pod: Pod) -> list[OwnerReference]:
    """The claim's references once the policy is applied (`updateClaimOwnerRefForSetAndPod`)."""
    unexpected = has_unexpected_controller(claim, sts, pod)
    refs = [ref for ref in _refs(claim)
            if not (_matches(ref, sts, SET_KIND) or _matches(ref, pod, POD_KIND))]
    if unexpected:
        return refs
    want_set, want_pod = _wanted(sts, pod)
    if want_set:
        refs.append(new_controller_ref(sts, api_version="apps/v1", kind="StatefulSet"))
    if want_pod and uid_of(pod):
        refs.append(new_controller_ref(pod, api_version="v1", kind="Pod"))
    return refs


def claim_is_stale(claim: PersistentVolumeClaim | None, sts: StatefulSet, pod: Pod) -> bool:
    """With whenScaled Delete, a claim still owned by an earlier pod of this name is stale."""
    if claim is None or policy(sts)[0] == RETAIN:
        return False
    return has_stale_owner_ref(claim, pod, POD_KIND)
