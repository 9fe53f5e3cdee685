"""Expectations: what a controller has asked the API to do but not yet seen in its cache.

A controller that creates pods and syncs again before its informer has
delivered them would count too few pods and create them twice. Kubernetes'
`ControllerExpectations` (with `UIDTrackingControllerExpectations` for
deletions) prevents that, and this module is the same thing:

- before issuing N creates the controller calls `expect_creations(key, N)`;
  each pod ADD event it sees calls `creation_observed(key)`, and each create
  that failed or was never issued is observed too, so the count can reach 0;
- before deleting pods it calls `expect_deletions(key, pod_keys)`; a pod's
  deletion is observed once per pod key, whether the informer first shows it
  with a `deletionTimestamp` and later as gone, or both;
- a controller that issues its writes one at a time, as the StatefulSet
  controller does, raises the counts instead (`raise_creations`,
  `raise_deletions`);
- a sync acts (creates or deletes) only when `satisfied(key)`: nothing is
  pending, or the record is older than the TTL (5 minutes, as in
  Kubernetes), because a lost watch event must delay, never wedge, a
  controller.

Expectations live in memory only. A restarted controller has none and
rebuilds from its synced informers, which already hold everything it did.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from minik.machinery.clock import Clock, LoopClock

EXPECTATIONS_TTL = 300.0


@dataclass(slots=True)
class Expectation:
    """Creates and deletes still to be observed for one controller key."""

    add: int
    delete: int
    timestamp: float
    deleting: set[str] = field(default_factory=set)

    def fulfilled(self) -> bool:
        return self.add <= 0 and self.delete <= 0


class ControllerExpectations:
    """Pending creates and deletes per controller key, with per-pod tracking of deletes."""

    def __init__(
        self, *, ttl: float = EXPECTATIONS_TTL, clock: Clock | None = None,
    ) -> None:
        self.ttl = ttl
        self._clock: Clock = clock or LoopClock()
        self._records: dict[str, Expectation] = {}

    def get(self, key: str) -> Expectation | None:
        return self._records.get(key)

    def satisfied(self, key: str) -> bool:
        """True when the controller may act: nothing pending, or the wait has expired."""
        record = self._records.get(key)
        if record is None or record.fulfilled():
            return True
        return self._clock.now() - record.timestamp > self.ttl

    def expect_creations(self, key: str, count: int) -> None:
        self._records[key] = Expectation(add=count, delete=0, timestamp=self._clock.now())

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        deleting = set(pod_keys)
        self._records[key] = Expectation(add=0, delete=len(deleting), timestamp=self._clock.now(),
                                         deleting=deleting)

    def raise_creations(self, key: str, count: int) -> None:
        """Expect `count` more creates, on top of those still pending (`RaiseExpectations`)."""
        record = self._pending(key)
        record.add += count

    def raise_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        """Expect the deletion of `pod_keys` too, on top of those still pending."""
        record = self._pending(key)
        for pod_key in set(pod_keys) - record.deleting:
            record.deleting.add(pod_key)
            record.delete += 1

    def _pending(self, key: str) -> Expectation:
        """The key's record, started afresh when it has nothing pending."""
        record = self._records.get(key)
        if record is None or record.fulfilled():
            record = Expectation(add=0, delete=0, timestamp=self._clock.now())
            self._records[key] = record
        return record

    def creation_observed(self, key: str) -> None:
        record = self._records.get(key)
        if record is not None:
            record.add -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        """Count the deletion of `pod_key` once, and only if it was one we asked for."""
        record = self._records.get(key)
        if record is not None and pod_key in record.deleting:
            record.deleting.discard(pod_key)
            record.delete -= 1

    def forget(self, key: str) -> None:
        """The controller object is gone: drop whatever it was waiting for."""
        self._records.pop(key, None)

    def __len__(self) -> int:
        return len(self._records)
