"""Job statuses the controller has written but its Job informer has not delivered yet.

The Job controller counts a finished pod in three writes (uncounted, its
finalizer removed, counted). The pod informer can show the pod without its
finalizer before the Job informer shows the status that counted it; a sync
in that window would read neither the uncounted uid nor the count, believe
fewer pods succeeded, and create a pod too many (which it later deletes and
counts as failed). Kubernetes narrows that window by batching pod events;
minik closes it: after each status write the controller remembers the
revision it wrote, and a sync waits (returns; the Job's watch event brings
the next one) until the informer has delivered that revision or a later
one. A lost event delays, never wedges, a Job: the record expires after the
expectations' TTL.

Revisions are compared as numbers: minik's resource versions are its
store's revision counter, so a later write has a greater one.
"""

from __future__ import annotations

from minik.api.meta import resource_version_of
from minik.api.objects import JsonObject
from minik.controllers.expectations import EXPECTATIONS_TTL
from minik.machinery.clock import Clock


def _revision(job: JsonObject) -> int | None:
    try:
        return int(resource_version_of(job) or "")
    except ValueError:
        return None


class StatusWrites:
    """Per Job key, the revision of the controller's last status write not yet observed."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._unseen: dict[str, tuple[int, float]] = {}

    def wrote(self, key: str, written: JsonObject, cached: JsonObject | None) -> None:
        """Remember `written` unless the informer's `cached` Job already shows it."""
        revision = _revision(written)
        if revision is None or self._reaches(cached, revision):
            return
        self._unseen[key] = (revision, self.clock.now())

    def observed(self, key: str, job: JsonObject) -> None:
        """The informer delivered `job`: a write it includes is no longer awaited."""
        unseen = self._unseen.get(key)
        if unseen is not None and self._reaches(job, unseen[0]):
            del self._unseen[key]

    def forget(self, key: str) -> None:
        self._unseen.pop(key, None)

    def awaited(self, key: str) -> bool:
        """True while the informer's copy of the Job is older than the last status written."""
        unseen = self._unseen.get(key)
        if unseen is None:
            return False
        if self.clock.now() - unseen[1] > EXPECTATIONS_TTL:
            del self._unseen[key]
            return False
        return True

    @staticmethod
    def _reaches(job: JsonObject | None, revision: int) -> bool:
        if job is None:
            return False
        seen = _revision(job)
        return seen is None or seen >= revision
