"""Giving freed heap memory back to the system, so that a burst of connections leaves no trace.

glibc's malloc returns freed memory to the system only from the top of its
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
import logging
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


async def trim_forever(interval: float = TRIM_INTERVAL) -> None:
    trim = malloc_trim()
    if trim is None:
        log.info("no malloc_trim in this C library; freed heap memory stays with the process")
        return
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(trim)
