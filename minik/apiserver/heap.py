"""Giving freed heap memory back to the system, so that a burst of connections leaves no trace.

First the garbage: asyncio's selector transport (CPython 3.11) keeps a
reference cycle with its own read callback, so a closed connection's
transport, socket and TLS object (tens of KB with OpenSSL's buffers) are
freed only by a full garbage collection, which Python runs rarely once a
server's object count is steady: after a thousand watches closed, 1,000
transports (about 20 MB) stayed alive for good (`bench/watches.py`). So the
server collects every TRIM_INTERVAL seconds. The first time, it collects and
then freezes what is left (`gc.freeze()`: the start-up imports, the API's
models), so that later full collections skip those objects: a collection of
the server at rest takes microseconds instead of tens of milliseconds.

Python's own small-object allocator keeps each 1 MiB arena for as long as one
object in it lives, so even freed, a burst's objects pinned ~18 arenas; the
CLI therefore starts the server with `PYTHONMALLOC=malloc`
(`minik.cli.lifecycle`), so that Python's objects live on glibc's heap too.

Then glibc's malloc returns freed memory to the system only from the top of its
heap; what is freed below live allocations stays resident. A thousand watch
connections opening - each TLS handshake with its temporary buffers - and
later closing leave tens of megabytes freed but resident in the server (the
watch benchmark, `bench/watches.py`, measured 15-35 MB). `malloc_trim(0)`
hands those pages back; on a heap of 100 MB it takes a few milliseconds, so
the server trims every TRIM_INTERVAL seconds in a supervised task, on a worker
thread. Where the C library has no `malloc_trim` (not glibc), it does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

TRIM_INTERVAL = 10.0


def malloc_trim() -> Callable[[], object] | None:
    """glibc's `malloc_trim(0)`, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


def collect_garbage(*, freeze: bool) -> float:
    """A full garbage collection (then, if asked, freeze the survivors); its seconds."""
    started = time.perf_counter()
    gc.collect()
    if freeze:
        gc.freeze()
    return time.perf_counter() - started


async def trim_forever(interval: float = TRIM_INTERVAL) -> None:
    trim = malloc_trim()
    if trim is None:
        log.info("no malloc_trim in this C library; freed heap memory stays with the process")
    frozen = False
    while True:
        await asyncio.sleep(interval)
        took = collect_garbage(freeze=not frozen)
        if not frozen:
            log.debug("first full collection took %.1f ms; start-up objects frozen", took * 1e3)
        frozen = True
        if trim is not None:
            await asyncio.to_thread(trim)
