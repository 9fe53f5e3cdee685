"""minik.controllers: the runtime every controller, the scheduler and the agent build on.

It owns the client-go machinery, in asyncio: `Informer` (list+watch into a
local `Indexer` cache, with add/update/delete handlers and periodic resync),
`WorkQueue` (one sync per key at a time, collapsed adds, per-key exponential
backoff) with `run_worker` to drive a sync function from it, and
`ControllerMetrics` (queue depth, adds, reconcile latency and errors). The
pattern: handlers compute a `namespace/name` key and add it to the queue; a
worker re-reads the object from the cache and reconciles, level-triggered.
Everything reaches the server only through `minik.client.aio.AsyncClient`.
"""

from minik.controllers.informer import Indexer, Informer, key_of, split_key
from minik.controllers.metrics import ControllerMetrics
from minik.controllers.workqueue import (
    Clock,
    LoopClock,
    ManualClock,
    WorkQueue,
    run_worker,
    run_workers,
)

__all__ = [
    "Clock",
    "ControllerMetrics",
    "Indexer",
    "Informer",
    "LoopClock",
    "ManualClock",
    "WorkQueue",
    "key_of",
    "run_worker",
    "run_workers",
    "split_key",
]
