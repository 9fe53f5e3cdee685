"""Slices written by a controller and not yet seen in its cache.

Kubernetes' `EndpointSliceTracker`: the slice controllers plan from their
informer's cache, and a sync that ran before the cache had seen the previous
sync's writes would create the same slices twice. So each write is
remembered per Service (the resourceVersion a create or update answered, or
that a delete removed the slice) until the cache holds that version or the
slice is gone; while any write of a Service is unseen, its sync asks to be
retried (`Requeue`) instead of planning. resourceVersions are minik's store
revisions, which grow: a cached version at or past the written one is seen.
A write unseen for `patience` seconds is forgotten: a slice created and
deleted again before the cache caught up never shows up at all.
"""

from __future__ import annotations

from minik.api.meta import meta_of, name_of, resource_version_of
from minik.api.objects import EndpointSlice
from minik.machinery.clock import Clock

DELETED = -1
PATIENCE = 30.0


def _revision(slice_: EndpointSlice) -> int:
    try:
        return int(resource_version_of(slice_))
    except ValueError:
        return 0


class SliceTracker:
    """Per Service key: slice name -> (the revision written, or DELETED; when)."""

    def __init__(self, clock: Clock, *, patience: float = PATIENCE) -> None:
        self.clock = clock
        self.patience = patience
        self._written: dict[str, dict[str, tuple[int, float]]] = {}

    def wrote(self, service_key: str, slice_: EndpointSlice) -> None:
        self._remember(service_key, name_of(slice_), _revision(slice_))

    def deleted(self, service_key: str, slice_: EndpointSlice) -> None:
        self._remember(service_key, name_of(slice_), DELETED)

    def _remember(self, service_key: str, name: str, revision: int) -> None:
        self._written.setdefault(service_key, {})[name] = (revision, self.clock.now())

    def forget(self, service_key: str) -> None:
        self._written.pop(service_key, None)

    def stale(self, service_key: str, cached: list[EndpointSlice]) -> bool:
        """Whether the cache still lacks a write; writes it has seen are forgotten."""
        written = self._written.get(service_key)
        if not written:
            return False
        revisions = {meta_of(s).get("name", ""): _revision(s) for s in cached}
        for name, (revision, at) in list(written.items()):
            have = revisions.get(name)
            seen = have is None if revision == DELETED else (have or 0) >= revision
            if seen or self.clock.now() - at > self.patience:
                del written[name]
        if not written:
            del self._written[service_key]
            return False
        return True
