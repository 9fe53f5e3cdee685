"""ContainerLister: askers at the same time share a list, and every answer is fresh."""

from __future__ import annotations

import asyncio

import pytest

from agent.lister import ContainerLister
from agent.runtime import ContainerInfo, RuntimeUnavailable


class Runtime:
    """`list` answers with its call number, each call waiting until released."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.error: Exception | None = None

    async def list(self, labels: dict[str, str]) -> list[ContainerInfo]:
        self.calls += 1
        number = self.calls
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return [ContainerInfo(id=str(number), name="c", labels=labels, image="i",
                              image_id="sha256:i", state="running")]


async def started(runtime: Runtime, calls: int) -> None:
    async with asyncio.timeout(5):
        while runtime.calls < calls:
            await asyncio.sleep(0)


async def test_askers_at_the_same_time_share_one_list() -> None:
    runtime = Runtime()
    lister = ContainerLister(runtime, {"i": "x"})  # type: ignore[arg-type]
    askers = [asyncio.create_task(lister.list()) for _ in range(10)]
    await started(runtime, 1)
    runtime.release.set()
    answers = await asyncio.gather(*askers)
    assert runtime.calls == 1
    assert {a[0].id for a in answers} == {"1"}


async def test_an_asker_during_a_list_gets_the_next_one() -> None:
    runtime = Runtime()
    lister = ContainerLister(runtime, {"i": "x"})  # type: ignore[arg-type]
    first = asyncio.create_task(lister.list())
    await started(runtime, 1)
    late = [asyncio.create_task(lister.list()) for _ in range(3)]
    await asyncio.sleep(0)
    assert runtime.calls == 1, "the next list waits for the one in flight"
    runtime.release.set()
    assert (await first)[0].id == "1"
    assert {a[0].id for a in await asyncio.gather(*late)} == {"2"}
    assert runtime.calls == 2


async def test_a_failed_list_fails_its_askers_and_the_next_one_works() -> None:
    runtime = Runtime()
    runtime.error = RuntimeUnavailable("engine gone")
    lister = ContainerLister(runtime, {"i": "x"})  # type: ignore[arg-type]
    askers = [asyncio.create_task(lister.list()) for _ in range(2)]
    await started(runtime, 1)
    runtime.release.set()
    for asker in askers:
        with pytest.raises(RuntimeUnavailable):
            await asker
    runtime.error = None
    assert (await lister.list())[0].id == "2"


async def test_an_asker_giving_up_leaves_the_others_their_answer() -> None:
    runtime = Runtime()
    lister = ContainerLister(runtime, {"i": "x"})  # type: ignore[arg-type]
    quitter, stayer = (asyncio.create_task(lister.list()) for _ in range(2))
    await started(runtime, 1)
    quitter.cancel()
    runtime.release.set()
    assert (await stayer)[0].id == "1"


async def test_the_last_answer_is_given_without_listing_only_from_a_list_begun_after_the_mark(
        ) -> None:
    runtime = Runtime()
    runtime.release.set()
    lister = ContainerLister(runtime, {"i": "x"})  # type: ignore[arg-type]
    assert lister.latest(lister.mark()) is None
    await lister.list()
    mark = lister.mark()
    assert lister.latest(mark) is None, "that list began before the mark"
    await lister.list()
    assert [i.id for i in lister.latest(mark) or []] == ["2"]
    assert runtime.calls == 2
