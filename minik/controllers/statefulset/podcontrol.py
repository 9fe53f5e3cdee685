"""The writes of the StatefulSet controller: pods, their claims, and the events about them.

Kubernetes' `StatefulPodControl`. A pod's claims are created before the pod
(a claim that exists is reused, whatever its state; one being deleted holds
the pod back until it is gone), then the pod, then the claims' owner
references are set for the retention policy. Events are Kubernetes':
`SuccessfulCreate` "create Pod web-0 in StatefulSet web successful",
`SuccessfulDelete`, `FailedCreate` ..., and `SuccessfulCreate` "create
Claim www-web-0 Pod web-0 in StatefulSet web success" for claims.

Every create and delete of a pod is announced to the controller's
`ControllerExpectations` first and observed when it fails, so that a sync
running on a cache that has not yet seen it waits instead of acting twice.
Reads come from the informers' caches.
"""

from __future__ import annotations

from minik.api.errors import ApiError
from minik.api.meta import is_being_deleted, labels_of, meta_of, name_of, namespace_of
from minik.api.objects import JsonObject, PersistentVolumeClaim, Pod, StatefulSet
from minik.api.resources import PERSISTENTVOLUMECLAIMS, PODS
from minik.client.aio import AsyncClient
from minik.controllers.expectations import ControllerExpectations
from minik.controllers.statefulset import retention
from minik.controllers.statefulset.identity import (
    claims_for,
    identity_labels,
    identity_matches,
    ordinal_of,
    storage_matches,
)
from minik.machinery.events import EventRecorder
from minik.machinery.informer import Indexer, key_of


class StatefulPodControl:
    """Creates, deletes and relabels a set's pods, and creates and re-owns their claims."""

    def __init__(self, client: AsyncClient, events: EventRecorder,
                 claims: Indexer[PersistentVolumeClaim],
                 expectations: ControllerExpectations) -> None:
        self.client = client
        self.events = events
        self.claims = claims
        self.expectations = expectations

    # ------------------------------------------------------------- events

    def _pod_event(self, verb: str, sts: StatefulSet, pod: Pod, error: Exception | None) -> None:
        if error is None:
            self.events.record(sts, "Normal", f"Successful{verb.title()}",
                               f"{verb} Pod {name_of(pod)} in StatefulSet {name_of(sts)} "
                               "successful")
        else:
            self.events.record(sts, "Warning", f"Failed{verb.title()}",
                               f"{verb} Pod {name_of(pod)} in StatefulSet {name_of(sts)} "
                               f"failed error: {error}")

    def _claim_event(self, sts: StatefulSet, pod: Pod, claim: JsonObject,
                     error: Exception | None) -> None:
        if error is None:
            self.events.record(sts, "Normal", "SuccessfulCreate",
                               f"create Claim {name_of(claim)} Pod {name_of(pod)} in "
                               f"StatefulSet {name_of(sts)} success")
        else:
            self.events.record(sts, "Warning", "FailedCreate",
                               f"create Claim {name_of(claim)} for Pod {name_of(pod)} in "
                               f"StatefulSet {name_of(sts)} failed error: {error}")

    # --------------------------------------------------------------- claims

    def claim(self, namespace: str | None, name: str) -> PersistentVolumeClaim | None:
        return self.claims.get_by(namespace, name)

    async def create_claims(self, sts: StatefulSet, pod: Pod) -> None:
        """Create the pod's missing claims; raise if one failed or is being deleted."""
        errors: list[Exception] = []
        for claim in claims_for(sts, ordinal_of(pod)).values():
            existing = self.claim(namespace_of(claim), name_of(claim))
            if existing is not None:
                if is_being_deleted(existing):
                    errors.append(ApiError(409, "Conflict",
                                           f"pvc {name_of(claim)} is being deleted"))
                continue
            try:
                await self.client.create(PERSISTENTVOLUMECLAIMS, namespace_of(claim), claim)
            except ApiError as e:
                if e.reason == "AlreadyExists":
                    continue
                errors.append(ApiError(e.code, e.reason,
                                       f"failed to create PVC {name_of(claim)}: {e}"))
                self._claim_event(sts, pod, claim, e)
                continue
            self._claim_event(sts, pod, claim, None)
        if errors:
            raise errors[0]

    def claim_is_stale(self, sts: StatefulSet, pod: Pod) -> bool:
        return any(retention.claim_is_stale(self.claim(namespace_of(c), name_of(c)), sts, pod)
                   for c in claims_for(sts, ordinal_of(pod)).values())

    def claims_match_retention(self, sts: StatefulSet, pod: Pod) -> bool:
        for claim in claims_for(sts, ordinal_of(pod)).values():
            existing = self.claim(namespace_of(claim), name_of(claim))
            if existing is not None and not retention.claim_owner_up_to_date(existing, sts, pod):
                return False
        return True

    async def update_claims_for_retention(self, sts: StatefulSet, pod: Pod) -> None:
        """Set the owner references of the pod's claims for the set's retention policy."""
        for claim in claims_for(sts, ordinal_of(pod)).values():
            existing = self.claim(namespace_of(claim), name_of(claim))
            if existing is None or retention.claim_owner_up_to_date(existing, sts, pod):
                continue
            if retention.has_unexpected_controller(existing, sts, pod):
                self.events.record(
                    sts, "Warning", "ConflictingController",
                    f"PersistentVolumeClaim {name_of(existing)} has a conflicting OwnerReference "
                    "that acts as a manging controller, the retention policy is ignored for "
                    "this claim")
            md = meta_of(existing)
            patch = {"metadata": {
                "ownerReferences": retention.updated_owner_refs(existing, sts, pod),
                "resourceVersion": md.get("resourceVersion")}}
            try:
                await self.client.patch(PERSISTENTVOLUMECLAIMS, md.get("namespace"), md["name"],
                                        patch)
            except ApiError as e:
                if e.code != 404:
                    raise ApiError(e.code, e.reason,
                                   f"could not update claim {md['name']} for delete policy "
                                   f"ownerRefs: {e}") from e

    # ----------------------------------------------------------------- pods

    async def create_pod(self, key: str, sts: StatefulSet, pod: Pod) -> None:
        """Claims first, then the pod, then the claims' owner references."""
        try:
            await self.create_claims(sts, pod)
        except ApiError as e:
            self._pod_event("create", sts, pod, e)
            raise
        self.expectations.raise_creations(key, 1)
        try:
            await self.client.create(PODS, namespace_of(pod), pod)
        except ApiError as e:
            self.expectations.creation_observed(key)
            if e.reason != "AlreadyExists":
                self._pod_event("create", sts, pod, e)
            raise
        try:
            await self.update_claims_for_retention(sts, pod)
        except ApiError as e:
            self._pod_event("update", sts, pod, e)
            raise
        self._pod_event("create", sts, pod, None)

    async def delete_pod(self, key: str, sts: StatefulSet, pod: Pod) -> None:
        """Delete the pod (by uid); a pod already gone is not an error."""
        md = meta_of(pod)
        self.expectations.raise_deletions(key, [key_of(pod)])
        try:
            await self.client.delete(PODS, md.get("namespace"), md["name"], uid=md.get("uid"))
        except ApiError as e:
            self.expectations.deletion_observed(key, key_of(pod))
            if e.code == 404:
                return
            self._pod_event("delete", sts, pod, e)
            raise
        self._pod_event("delete", sts, pod, None)

    async def update_pod(self, sts: StatefulSet, pod: Pod) -> None:
        """Restore a pod's identity labels, storage claims and claim owners.

        A pod's name and volumes cannot change once created: identity is its
        labels (a strategic merge patch), storage its missing claims.
        """
        updated = False
        error: Exception | None = None
        try:
            if not identity_matches(sts, pod):
                labels = identity_labels(sts, ordinal_of(pod))
                if any(labels_of(pod).get(k) != v for k, v in labels.items()):
                    updated = True
                    await self.client.patch(PODS, namespace_of(pod), name_of(pod),
                                            {"metadata": {"labels": labels}},
                                            patch_type="strategic")
            if not storage_matches(sts, pod):
                await self.create_claims(sts, pod)
            if not self.claims_match_retention(sts, pod):
                updated = True
                await self.update_claims_for_retention(sts, pod)
        except ApiError as e:
            if e.code == 404:
                return
            error = e
            raise
        finally:
            if updated or error is not None:
                self._pod_event("update", sts, pod, error)
