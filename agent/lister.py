"""One container list for everyone who asks at the same time.

Every pod worker asks Docker what it holds for its pod, before it acts and
after, and the relist asks for the whole instance every second. When fifty
pods start together those questions queue in the same thread pool as the
creates and starts, and each costs the engine a call; `ContainerLister`
answers all the questions asked while one list is in flight with the next
single list of the instance. An answer is always fresh: a caller gets a
list that started after it asked, never one already under way, so it sees
everything it did before asking.

`latest(since)` answers without listing, from the last list if it began
after `mark()` was taken: for a caller that has changed nothing since, and
so cannot miss its own doing in it (a pod's first sync, see
`agent.runtime_state`).
"""

from __future__ import annotations

import asyncio

from agent.podstate import PodRuntimeState, group_by_pod
from agent.runtime import ContainerInfo, Runtime

Listing = asyncio.Future[list[ContainerInfo]]


class ContainerLister:
    """Shares each list of the containers matching `selector` among its askers."""

    def __init__(self, runtime: Runtime, selector: dict[str, str]) -> None:
        self._runtime = runtime
        self._selector = selector
        self._next: Listing | None = None
        self._running: asyncio.Task[None] | None = None
        self._started = 0
        self._latest: tuple[int, list[ContainerInfo]] | None = None

    def mark(self) -> int:
        """Now, for `latest`: the lists started so far."""
        return self._started

    def latest(self, since: int) -> list[ContainerInfo] | None:
        """The last list's answer if that list started after the `mark()` `since`, else None."""
        if self._latest is None or self._latest[0] <= since:
            return None
        return self._latest[1]

    async def list(self) -> list[ContainerInfo]:
        """The instance's containers, from a list that started after this call."""
        listing = self._next
        if listing is None:
            listing = self._next = asyncio.get_running_loop().create_future()
            listing.add_done_callback(_retrieve)
        if self._running is None:
            self._running = asyncio.create_task(self._serve(), name="agent:container-list")
        return await asyncio.shield(listing)

    async def pod(self, uid: str) -> PodRuntimeState:
        return group_by_pod(await self.list()).get(uid, PodRuntimeState(uid))

    async def _serve(self) -> None:
        """List while anybody waits; who asks during a list waits for the next one."""
        try:
            while (listing := self._next) is not None:
                self._next = None
                self._started += 1
                number = self._started
                try:
                    infos = await self._runtime.list(self._selector)
                    self._latest = (number, infos)
                    listing.set_result(infos)
                except asyncio.CancelledError:
                    listing.cancel()
                    raise
                except Exception as e:
                    listing.set_exception(e)
        finally:
            self._running = None
            if self._next is not None:
                self._next.cancel()
                self._next = None


def _retrieve(listing: Listing) -> None:
    """Mark a failure as seen: every asker may have given up waiting for it."""
    if not listing.cancelled():
        listing.exception()
