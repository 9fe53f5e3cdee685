"""Restart and pull backoff, as the kubelet counts it.

The first restart after a crash is immediate; then the delay doubles from
`base` (10 s) to `cap` (300 s). A container that ran `reset_after` (10 min)
before exiting starts over. Image pulls back off the same way. The clock is
injected so tests need no sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

BASE = 10.0
CAP = 300.0
RESET_AFTER = 600.0


@dataclass(slots=True)
class _Entry:
    delay: float
    last: float


class Backoff:
    """Per-key exponential backoff: is a key waiting, and for how long."""

    def __init__(self, *, base: float = BASE, cap: float = CAP, reset_after: float = RESET_AFTER,
                 clock: Callable[[], float] = time.time) -> None:
        self.base = base
        self.cap = cap
        self.reset_after = reset_after
        self.clock = clock
        self._entries: dict[str, _Entry] = {}

    def remaining(self, key: str, since: float) -> float:
        """Seconds left before `key` may try again, counted from `since` (its last failure)."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        return max(0.0, since + entry.delay - self.clock())

    def delay(self, key: str) -> float:
        """The current wait after a failure of `key` (the base when it never failed)."""
        entry = self._entries.get(key)
        return entry.delay if entry else self.base

    def next(self, key: str) -> None:
        """Record a try: the next wait after a failure doubles, up to the cap."""
        now = self.clock()
        entry = self._entries.get(key)
        if entry is None or now - entry.last > 2 * self.cap + self.reset_after:
            self._entries[key] = _Entry(self.base, now)
        else:
            entry.delay = min(entry.delay * 2, self.cap)
            entry.last = now

    def reset(self, key: str) -> None:
        self._entries.pop(key, None)

    def forget_prefix(self, prefix: str) -> None:
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]
