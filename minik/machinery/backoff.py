"""Exponential back-off: the one implementation every component uses.

Like client-go's `flowcontrol.Backoff`, it keeps a book per key (a single
sequence uses the default key): the first failure of a key waits `base`,
each later one twice the last, up to `cap`; `reset` starts the key over.
`jitter` spreads each delay handed out evenly over ±that fraction, so that
many clients failing together do not retry together. With `expire_after`,
a key whose last failure is older than that starts over from `base`.

Its users and their parameters: the work queue's per-key rate limit (5 ms
doubling to 1000 s), the informer's relist after a failed list or watch
(0.8 s to 30 s, ±20 %), the supervisor's restarts of a crashed task
(0.5 s to 30 s), and the kubelet's container restart and image pull
back-off (10 s to 300 s per container, forgotten after 2 * 300 s + 10 min;
`agent.plan.container_backoff`).

Time is the `Clock`'s: monotonic for the book itself, and wall time for
`remaining(key, since)`, whose `since` comes from outside (when a
container finished, by the engine's clock), so tests need no sleeps.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass

from minik.machinery.clock import Clock, LoopClock

MAX_DOUBLINGS = 64
"""Beyond this many failures the delay is the cap (and 2**n stays a small number)."""


@dataclass(slots=True)
class _Entry:
    failures: int
    last: float


class Backoff:
    """Per-key exponential back-off: how long a key waits after its failures."""

    def __init__(
        self, *, base: float, cap: float, jitter: float = 0.0,
        expire_after: float | None = None, clock: Clock | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.base = base
        self.cap = cap
        self.jitter = jitter
        self.expire_after = expire_after
        self.clock: Clock = clock or LoopClock()
        self._rand = rand
        self._entries: dict[str, _Entry] = {}

    def step(self, failures: int) -> float:
        """The delay after `failures` earlier failures: base * 2**failures, at most the cap."""
        if failures >= MAX_DOUBLINGS:
            return self.cap
        return min(self.base * (1 << failures), self.cap)

    def next(self, key: str = "") -> float:
        """Count a failure of `key`; the delay to wait before trying it again."""
        now = self.clock.now()
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, now):
            entry = self._entries[key] = _Entry(0, now)
        delay = self.step(entry.failures)
        entry.failures += 1
        entry.last = now
        if self.jitter:
            delay *= 1 + self.jitter * (2 * self._rand() - 1)
        return delay

    def delay(self, key: str = "") -> float:
        """The wait that the last failure of `key` set (the base when it never failed)."""
        entry = self._entries.get(key)
        return self.step(entry.failures - 1) if entry else self.base

    def failures(self, key: str = "") -> int:
        entry = self._entries.get(key)
        return entry.failures if entry else 0

    def remaining(self, key: str, since: dt.datetime) -> float:
        """Seconds left before `key` may try again, counted from `since` (its last failure)."""
        if key not in self._entries:
            return 0.0
        due = since + dt.timedelta(seconds=self.delay(key))
        return max(0.0, (due - self.clock.wall()).total_seconds())

    def reset(self, key: str = "") -> None:
        self._entries.pop(key, None)

    def forget_prefix(self, prefix: str) -> None:
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]

    def _expired(self, entry: _Entry, now: float) -> bool:
        return self.expire_after is not None and now - entry.last > self.expire_after
