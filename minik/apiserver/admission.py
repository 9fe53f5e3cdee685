"""The admission chain: which plugins see a write of each kind, and in what order.

Kubernetes runs its admission plugins on every create and update of a main
resource (never of `status` or another subresource), mutating plugins first
and then validating ones. minik keeps that order per kind:

1. the storage plugins (`storage_admission`: DefaultStorageClass,
   StorageObjectInUseProtection, PersistentVolumeClaimResize),
2. LimitRanger (`limitranger`: defaults, then min/max/ratio),
   then, for pods, ServiceAccount (`serviceaccount_admission`: the account
   and its token volume),
3. PodSecurity (`podsecurity_admission`),
4. ResourceQuota (`quota_admission`), last, as in Kubernetes, so that only a
   write every other plugin let through is charged.

A plugin answers the warnings it wants sent back (`Warning` headers), or
raises an API error to refuse the write. `dry_run` writes are admitted
(and refused) exactly as real ones, but charge nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from minik.api import errors
from minik.store import Store

JsonObject = dict[str, Any]


class Admission(Protocol):
    """A kind's admission plugins: may change `new` (a create when `old` is None) or
    refuse the write with an API error; answers warnings for the client."""

    async def admit(self, store: Store, old: JsonObject | None, new: JsonObject, *,
                    dry_run: bool = False) -> list[str] | None: ...


class AdmissionChain:
    """Several plugins run in order as one: the first refusal stops the write."""

    def __init__(self, plugins: Sequence[Admission]) -> None:
        self.plugins = tuple(plugins)

    async def admit(self, store: Store, old: JsonObject | None, new: JsonObject, *,
                    dry_run: bool = False) -> list[str]:
        warnings: list[str] = []
        for plugin in self.plugins:
            warnings += await plugin.admit(store, old, new, dry_run=dry_run) or []
        return warnings


def forbidden(plural: str, group: str, name: str, why: str) -> errors.ApiError:
    """`pods "x" is forbidden: ...`, with the details `admission.NewForbidden` gives."""
    details: JsonObject = {"name": name, "kind": plural}
    if group:
        details["group"] = group
    return errors.ApiError(403, "Forbidden",
                           f'{errors.qualified(plural, group)} "{name}" is forbidden: {why}',
                           details)
