"""The ResourceQuota admission plugin: a write that would pass a namespace's quota is refused.

As Kubernetes' quota evaluator (`apiserver/pkg/admission/plugin/resourcequota`):
a quota is enforced on the resources of its `status.hard` (what the
resource-quota controller has seen, so a quota takes effect once it has
synced); a pod must state every container request or limit a quota bounds
(`failed quota: q: must specify limits.cpu for: c`); a quota whose
`status.used` lacks a bounded resource refuses (`status unknown for
quota`); and a create whose usage would take `used` past `hard` is 403
`exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2`.

Admission charges the quota: it writes `status.used` plus the new object's
usage with the quota's revision as precondition, so of two creates racing
for the last unit one wins and the other re-reads and is refused, as the
evaluator's compare-and-swap on the quota's resourceVersion does; as there,
only the quotas whose charge conflicted are re-read and retried, so the
others are not charged twice. A charge
whose object is then not stored (another plugin or the store refused it) is
taken back by the controller's next recount. Dry runs are checked, never
charged. Updates are charged for what they add to a Service (type) or a
claim (storage); pods' resources do not change.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from minik.api import meta, quota
from minik.api.models.quantity import parse_quantity
from minik.api.resources import REGISTRY, RESOURCEQUOTAS, ResourceType
from minik.apiserver.admission import forbidden
from minik.store import Record, RevisionConflict, Store

JsonObject = dict[str, Any]
MAX_RETRIES = 10
CHARGED_ON_UPDATE = ("Service", "PersistentVolumeClaim")


def _quantities(values: object) -> dict[str, Decimal]:
    if not isinstance(values, dict):
        return {}
    return {str(k): parse_quantity(v) for k, v in values.items()}


def _delta(rt: ResourceType[JsonObject], old: JsonObject | None,
           new: JsonObject) -> dict[str, Decimal]:
    """What the write adds: the new object's usage, less the old one's on update."""
    added = quota.usage(new, rt.kind, rt.plural, rt.group)
    if old is not None:
        before = quota.usage(old, rt.kind, rt.plural, rt.group)
        added = {name: value - before.get(name, Decimal(0)) for name, value in added.items()}
    return {name: value for name, value in added.items() if value > 0}


class QuotaAdmission:
    """Checks and charges every ResourceQuota of the object's namespace."""

    async def admit(self, store: Store, old: JsonObject | None, new: JsonObject, *,
                    dry_run: bool = False) -> None:
        kind = str(new.get("kind"))
        rt = REGISTRY.by_kind(str(new.get("apiVersion")), kind)
        if rt is None or not rt.namespaced:
            return
        if old is not None and kind not in CHARGED_ON_UPDATE:
            return
        delta = _delta(rt, old, new)
        if not delta:
            return
        md = meta.metadata(new)
        namespace, name = str(md.get("namespace") or ""), str(md.get("name") or "")
        charged: set[str] = set()
        for _ in range(MAX_RETRIES):
            records, _ = await store.list(RESOURCEQUOTAS.prefix(namespace))
            pending = sorted((r for r in records if r.key not in charged),
                             key=lambda r: meta.name_of(r.value))
            charges = self._charges(rt, new, name, delta, pending, creating=old is None)
            if dry_run:
                return
            conflicted = False
            for record, used in charges:
                value = copy.deepcopy(record.value)
                value.setdefault("status", {})["used"] = used
                try:
                    await store.update(record.key, value, expected_revision=record.revision)
                except RevisionConflict:
                    conflicted = True
                else:
                    charged.add(record.key)
            if not conflicted:
                return
        raise forbidden(rt.plural, rt.group, name,
                        "status unknown for quota: too many concurrent writers; try again")

    @staticmethod
    def _charges(rt: ResourceType[JsonObject], obj: JsonObject, name: str,
                 delta: dict[str, Decimal], records: list[Record], *,
                 creating: bool) -> list[tuple[Record, dict[str, str]]]:
        """Each quota to charge and its new `status.used`; raise for a quota it would pass."""
        bounded = []
        for record in records:
            if not quota.in_scope(record.value, rt.kind, obj):
                continue
            status = record.value.get("status") or {}
            hard = _quantities(status.get("hard"))
            names = [n for n in hard if quota.covers(rt.kind, rt.plural, rt.group, n)]
            if names:
                bounded.append((record, status, hard, names))
        for record, _, _, names in bounded:
            if rt.kind == "Pod" and creating and (
                    missing := quota.missing_requests(obj, names)) is not None:
                raise forbidden(rt.plural, rt.group, name,
                                f"failed quota: {meta.name_of(record.value)}: {missing}")
        charges = []
        for record, status, hard, names in bounded:
            used_text = status.get("used") or {}
            if any(n not in used_text for n in names):
                raise forbidden(rt.plural, rt.group, name, (
                    f"status unknown for quota: {meta.name_of(record.value)}, resources: "
                    f"{','.join(sorted(names))}"))
            requested = {n: delta[n] for n in names if n in delta}
            if not requested:
                continue
            used = _quantities(used_text)
            exceeded = sorted(n for n, v in requested.items()
                              if used.get(n, Decimal(0)) + v > hard[n])
            if exceeded:
                raise forbidden(rt.plural, rt.group, name, (
                    f"exceeded quota: {meta.name_of(record.value)}, "
                    f"requested: {quota.pretty({n: requested[n] for n in exceeded})}, "
                    f"used: {quota.pretty({n: used.get(n, Decimal(0)) for n in exceeded})}, "
                    f"limited: {quota.pretty({n: hard[n] for n in exceeded})}"))
            new_used = dict(used_text)
            for n, v in requested.items():
                new_used[n] = quota.render(n, used.get(n, Decimal(0)) + v)
            charges.append((record, new_used))
        return charges
