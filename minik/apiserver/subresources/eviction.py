"""pods/eviction: delete a pod only as far as its PodDisruptionBudget allows.

As Kubernetes' `EvictionREST` (`pkg/registry/core/pod/storage/eviction.go`):

- A pod that is Succeeded, Failed, Pending or already being deleted is
  deleted at once, without a budget check (it is disrupted already); a
  running one is deleted with a resourceVersion precondition so that a
  concurrent change is not overtaken.
- Otherwise the budgets of the pod's namespace whose selector matches it
  are found (policy/v1: an empty selector matches every pod, a null one
  none): more than one is a Failure Status with code 500;
  none lets the pod go. An unready pod goes without spending the budget
  when the budget's policy is `AlwaysAllow`, or when it already has its
  desired healthy pods (`IfHealthyBudget`, the default); then the delete
  carries the pod's resourceVersion, and a conflict is a 429.
- Else the budget must have seen its current generation and allow a
  disruption: `disruptionsAllowed` is decremented and the pod is recorded
  in `disruptedPods`, written with the budget's resourceVersion (a
  conflict re-reads the budget and tries again); none allowed is
  429 TooManyRequests with a `DisruptionBudget` cause.
- Before the delete, on either path, the pod gets the condition
  `DisruptionTarget` (reason `EvictionByEvictionAPI`) through its status; a
  resourceVersion precondition then follows that write.

The Eviction's `deleteOptions` (grace period, preconditions, dry run, also
from the query's `dryRun`) are the delete's. Success is a Status with code
201.
"""

from __future__ import annotations

import dataclasses
from typing import cast

from minik.api import errors, meta
from minik.api.disruption import allowed_condition, disruption_target
from minik.api.meta import is_being_deleted, is_pod_ready, labels_of
from minik.api.objects import JsonObject, PodDisruptionBudgetStatus
from minik.api.resources import PODDISRUPTIONBUDGETS, PODS
from minik.api.selectors.labels import LabelSelector
from minik.apiserver.lifecycle import DeleteOptions
from minik.apiserver.routing import ResourceRequest
from minik.apiserver.storage import ObjectStorage, WriteOptions, decorate
from minik.apiserver.validate import validate_body

EVICTION_VERSIONS = ("policy/v1", "policy/v1beta1")
MAX_DISRUPTED_PODS = 2000
RETRIES = 20
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
MULTIPLE_BUDGETS = ("This pod has more than one PodDisruptionBudget, which the eviction "
                    "subresource does not support.")
EVICTED = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
           "code": 201}


def can_ignore_budget(pod: JsonObject) -> bool:
    """`canIgnorePDB`: the pod is disrupted already, or not running yet."""
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Pending") or (
        is_being_deleted(pod))


def enforces_resource_version(pod: JsonObject) -> bool:
    return not meta.is_pod_terminal(pod) and not is_being_deleted(pod)


def budgets_of(pod: JsonObject, budgets: list[JsonObject]) -> list[JsonObject]:
    """The budgets whose selector matches the pod; a null selector matches none."""
    chosen = []
    for pdb in budgets:
        try:
            selector = LabelSelector.from_spec((pdb.get("spec") or {}).get("selector"))
        except errors.ApiError:
            continue
        if selector.matches(labels_of(pod)):
            chosen.append(pdb)
    return chosen


def unhealthy_may_go(pod: JsonObject, pdb: JsonObject) -> bool:
    """An unready pod may be evicted without spending the budget."""
    if is_pod_ready(pod):
        return False
    if (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
        return True
    status = pdb.get("status") or {}
    desired = status.get("desiredHealthy", 0)
    return bool(status.get("currentHealthy", 0) >= desired > 0)


def budget_cause(message: str) -> list[errors.StatusCause]:
    return [{"reason": "DisruptionBudget", "message": message}]


def still_processing(name: str) -> errors.ApiError:
    return errors.too_many_requests(VIOLATION, retry_after=10, causes=budget_cause(
        f"The disruption budget {name} is still being processed by the server."))


def decremented(pdb: JsonObject, pod_name: str, *, dry_run: bool) -> JsonObject:
    """`checkAndDecrement`: the budget's status after this eviction, or the refusal."""
    md = pdb["metadata"]
    status = cast(PodDisruptionBudgetStatus, dict(pdb.get("status") or {}))
    name = md["name"]
    if status.get("observedGeneration", 0) < md.get("generation", 0):
        raise still_processing(name)
    allowed = status.get("disruptionsAllowed", 0)
    if allowed < 0:
        raise errors.forbidden(f'poddisruptionbudgets.policy "{name}" is forbidden: pdb '
                               "disruptions allowed is negative")
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
        raise errors.forbidden(f'poddisruptionbudgets.policy "{name}" is forbidden: '
                               "DisruptedPods map too big - too many evictions not confirmed "
                               "by PDB controller")
    if allowed == 0:
        raise errors.too_many_requests(VIOLATION, causes=budget_cause(
            f"The disruption budget {name} needs {status.get('desiredHealthy', 0)} healthy "
            f"pods and has {status.get('currentHealthy', 0)} currently"))
    now = meta.now()
    status["disruptionsAllowed"] = allowed - 1
    if status["disruptionsAllowed"] == 0:
        status["conditions"] = allowed_condition(status, now)
    if not dry_run:
        status["disruptedPods"] = {**(status.get("disruptedPods") or {}),
                                   pod_name: meta.format_time(now)}
    return {**pdb, "status": status}


def _delete_options(eviction: JsonObject, query_dry_run: bool) -> DeleteOptions:
    body = eviction.get("deleteOptions") or {}
    options = DeleteOptions.parse(dict(body), {})
    if query_dry_run and body.get("dryRun") not in (None, [], ["All"]):
        raise errors.bad_request(f"Non-matching dry-run options in request and content: [All] "
                                 f"and {body.get('dryRun')}")
    return dataclasses.replace(options, dry_run=options.dry_run or query_dry_run)


class Eviction:
    """One eviction request against the storage."""

    def __init__(self, storage: ObjectStorage, namespace: str, name: str,
                 options: DeleteOptions) -> None:
        self.storage, self.namespace, self.name, self.options = storage, namespace, name, options

    async def run(self) -> JsonObject:
        for attempt in range(RETRIES):
            pod = await self.storage.get(PODS, self.namespace, self.name)
            if not can_ignore_budget(pod):
                return await self._guarded(pod)
            options = self.options
            if enforces_resource_version(pod) and not options.precondition_resource_version:
                options = dataclasses.replace(
                    options, precondition_resource_version=pod["metadata"]["resourceVersion"])
            try:
                await self._mark_and_delete(options)
            except errors.ApiError as e:
                if e.code != 409 or self.options.precondition_resource_version or (
                        attempt == RETRIES - 1):
                    raise
                continue
            return dict(EVICTED)
        raise AssertionError("unreachable")

    async def _budgets(self, pod: JsonObject) -> list[JsonObject]:
        records, _ = await self.storage.list_records(PODDISRUPTIONBUDGETS, self.namespace)
        return budgets_of(pod, [decorate(r) for r in records])

    async def _guarded(self, pod: JsonObject) -> JsonObject:
        budgets = await self._budgets(pod)
        if len(budgets) > 1:
            raise errors.ApiError(500, "", MULTIPLE_BUDGETS)
        pin = False
        name = ""
        if budgets:
            name = budgets[0]["metadata"]["name"]
            pin = unhealthy_may_go(pod, budgets[0])
            if not pin:
                await self._spend(budgets[0], pod)
        options = self.options
        if pin:
            options = dataclasses.replace(
                options, precondition_resource_version=pod["metadata"]["resourceVersion"])
        try:
            await self._mark_and_delete(options)
        except errors.ApiError as e:
            if e.code == 409 and pin and not self.options.precondition_resource_version:
                raise still_processing(name) from e
            raise
        return dict(EVICTED)

    async def _spend(self, pdb: JsonObject, pod: JsonObject) -> None:
        status_write = WriteOptions(dry_run=self.options.dry_run, subresource="status",
                                    trusted=True)
        for attempt in range(RETRIES):
            updated = decremented(pdb, self.name, dry_run=self.options.dry_run)
            try:
                await self.storage.update(PODDISRUPTIONBUDGETS, self.namespace,
                                          pdb["metadata"]["name"], updated, status_write)
                return
            except errors.ApiError as e:
                if e.code != 409 or attempt == RETRIES - 1:
                    raise
            pdb = await self.storage.get(PODDISRUPTIONBUDGETS, self.namespace,
                                         pdb["metadata"]["name"])
        raise errors.ApiError(504, "Timeout", f'couldn\'t update PodDisruptionBudget '
                                              f'"{pdb["metadata"]["name"]}" due to conflicts')

    async def _mark_and_delete(self, options: DeleteOptions) -> None:
        """`addConditionAndDeletePod`."""
        if not options.dry_run:
            wanted_uid = options.precondition_uid
            wanted_rv = options.precondition_resource_version

            def mark(pod: JsonObject) -> JsonObject:
                md = pod["metadata"]
                if wanted_uid and wanted_uid != md.get("uid"):
                    raise errors.conflict("pods", self.name, why=(
                        f"the UID in the precondition ({wanted_uid}) does not match the UID in "
                        f"record ({md.get('uid')}). The object might have been deleted and then "
                        "recreated"))
                status = pod.setdefault("status", {})
                status["conditions"] = meta.with_condition(
                    status.get("conditions"),
                    disruption_target("EvictionByEvictionAPI", "Eviction API: evicting",
                                      meta.now()))
                return pod

            marked = await self.storage.mutate(
                PODS, self.namespace, self.name, mark,
                WriteOptions(subresource="status", trusted=True), precondition=wanted_rv)
            if wanted_rv:
                options = dataclasses.replace(
                    options, precondition_resource_version=marked.obj["metadata"][
                        "resourceVersion"])
        await self.storage.delete(PODS, self.namespace, self.name, options)


async def evict(storage: ObjectStorage, target: ResourceRequest, eviction: JsonObject,
                write: WriteOptions) -> JsonObject:
    """Evict the pod `target` names; the Status to answer with."""
    assert target.name is not None and target.namespace is not None
    version = eviction.get("apiVersion") or "policy/v1"
    if version not in EVICTION_VERSIONS:
        raise errors.bad_request(f"the API version in the data ({version}) does not match the "
                                 "expected API version (policy/v1)")
    validate_body("policy/v1", "Eviction", {**eviction, "apiVersion": "policy/v1"},
                  field_validation=write.field_validation)
    if (eviction.get("metadata") or {}).get("name") != target.name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    options = _delete_options(eviction, write.dry_run)
    return await Eviction(storage, target.namespace, target.name, options).run()
