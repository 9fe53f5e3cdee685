"""`Requeue`: how a sync asks for its key to be synced again.

Kept apart from the work queue so that metrics and the queue can both know it.
"""

from __future__ import annotations


class Requeue(Exception):
    """Raised by a sync to have its key synced again: after `after` seconds, or rate-limited.

    Not a failure: it is logged at debug level and is not a reconcile error.
    """

    def __init__(self, reason: str = "", *, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after
