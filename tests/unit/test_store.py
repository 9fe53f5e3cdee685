"""Behaviour of every Store backend: the same tests run on MemoryStore and SQLiteStore."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from minik.store import (
    Compacted,
    KeyExists,
    KeyNotFound,
    MemoryStore,
    Record,
    RevisionConflict,
    SQLiteStore,
    Store,
    WatchDropped,
    WatchEvent,
)

StoreFactory = Callable[..., Awaitable[Store]]

DEADLINE = 20.0


@pytest.fixture(params=["memory", "sqlite"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    opened: list[Store] = []

    async def factory(**options: Any) -> Store:
        if request.param == "memory":
            store: Store = MemoryStore(**options)
        else:
            store = await SQLiteStore.open(tmp_path / f"store{len(opened)}.db", **options)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store: StoreFactory) -> Store:
    return await open_store()


async def take(events: AsyncIterator[WatchEvent], count: int) -> list[WatchEvent]:
    taken: list[WatchEvent] = []
    async with asyncio.timeout(DEADLINE):
        while len(taken) < count:
            taken.append(await anext(events))
    return taken


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(DEADLINE):
        while not await condition():
            await asyncio.sleep(0)


async def test_a_created_key_reads_back_with_its_revision(store: Store) -> None:
    created = await store.create("/registry/pods/default/web", {"spec": {"image": "nginx"}})

    assert created == Record(
        "/registry/pods/default/web", {"spec": {"image": "nginx"}}, 1, create_revision=1
    )
    assert await store.get("/registry/pods/default/web") == created
    assert await store.get("/registry/pods/default/other") is None
    assert await store.current_revision() == 1


async def test_every_write_gets_the_next_revision_and_keeps_the_create_revision(
    store: Store,
) -> None:
    first = await store.create("/registry/pods/default/a", {"n": 0})
    other = await store.create("/registry/pods/default/b", {"n": 0})
    updated = await store.update(
        "/registry/pods/default/a", {"n": 1}, expected_revision=first.revision
    )

    assert (first.revision, other.revision, updated.revision) == (1, 2, 3)
    assert updated.create_revision == first.revision
    assert await store.current_revision() == 3


async def test_creating_a_live_key_raises_key_exists(store: Store) -> None:
    await store.create("/registry/nodes/n1", {"v": 1})

    with pytest.raises(KeyExists) as raised:
        await store.create("/registry/nodes/n1", {"v": 2})

    assert raised.value.key == "/registry/nodes/n1"
    assert (await store.get("/registry/nodes/n1")).value == {"v": 1}
    assert await store.current_revision() == 1


async def test_a_deleted_key_can_be_created_again_with_a_new_create_revision(
    store: Store,
) -> None:
    first = await store.create("/registry/nodes/n1", {"v": 1})
    await store.delete("/registry/nodes/n1", expected_revision=first.revision)

    again = await store.create("/registry/nodes/n1", {"v": 2})

    assert again.create_revision == again.revision == 3
    assert await store.get("/registry/nodes/n1") == again


async def test_an_update_with_a_stale_revision_raises_revision_conflict(store: Store) -> None:
    first = await store.create("/registry/pods/ns/p", {"v": 1})
    second = await store.update("/registry/pods/ns/p", {"v": 2}, expected_revision=first.revision)

    with pytest.raises(RevisionConflict) as raised:
        await store.update("/registry/pods/ns/p", {"v": 3}, expected_revision=first.revision)

    conflict = raised.value
    assert (conflict.key, conflict.expected, conflict.actual) == (
        "/registry/pods/ns/p",
        first.revision,
        second.revision,
    )
    assert await store.get("/registry/pods/ns/p") == second


async def test_a_delete_with_a_stale_revision_raises_revision_conflict_and_keeps_the_key(
    store: Store,
) -> None:
    first = await store.create("/registry/pods/ns/p", {"v": 1})
    second = await store.update("/registry/pods/ns/p", {"v": 2}, expected_revision=first.revision)

    with pytest.raises(RevisionConflict):
        await store.delete("/registry/pods/ns/p", expected_revision=first.revision)

    assert await store.get("/registry/pods/ns/p") == second


async def test_updating_or_deleting_an_absent_or_deleted_key_raises_key_not_found(
    store: Store,
) -> None:
    with pytest.raises(KeyNotFound):
        await store.update("/registry/pods/ns/ghost", {}, expected_revision=1)
    with pytest.raises(KeyNotFound):
        await store.delete("/registry/pods/ns/ghost")

    gone = await store.create("/registry/pods/ns/gone", {})
    await store.delete("/registry/pods/ns/gone")
    with pytest.raises(KeyNotFound):
        await store.update("/registry/pods/ns/gone", {}, expected_revision=gone.revision)
    with pytest.raises(KeyNotFound):
        await store.delete("/registry/pods/ns/gone")


async def test_delete_writes_a_tombstone_that_carries_the_last_object(store: Store) -> None:
    first = await store.create("/registry/pods/ns/p", {"v": 1})
    last = await store.update("/registry/pods/ns/p", {"v": 2}, expected_revision=first.revision)

    tombstone = await store.delete("/registry/pods/ns/p", expected_revision=last.revision)

    assert tombstone == Record("/registry/pods/ns/p", {"v": 2}, 3, create_revision=1)
    assert await store.get("/registry/pods/ns/p") is None
    assert await store.list("/registry/pods/") == ([], 3)


async def test_a_key_created_again_after_its_deletion_is_added_with_no_previous_version(
    store: Store,
) -> None:
    await store.create("/registry/nodes/n1", {"v": 1})
    await store.delete("/registry/nodes/n1")
    await store.create("/registry/nodes/n1", {"v": 2})

    events = await store.history("/registry/nodes/", 0, 10)

    assert [e.type for e in events] == ["ADDED", "DELETED", "ADDED"]
    assert events[-1] == WatchEvent("ADDED", "/registry/nodes/n1", {"v": 2}, 3, None, 0)


async def test_a_list_limit_below_one_and_a_negative_compaction_keep_are_refused(
    store: Store,
) -> None:
    created = await store.create("/registry/nodes/n1", {})

    with pytest.raises(ValueError, match="limit"):
        await store.list("/registry/", limit=0)
    with pytest.raises(ValueError, match="keep"):
        await store.compact(keep=-1)
    assert await store.list("/registry/", revision=1) == ([created], 1)


async def test_list_returns_the_live_keys_under_a_prefix_sorted_by_key(store: Store) -> None:
    await store.create("/registry/pods/ns/b", {"n": "b"})
    await store.create("/registry/pods/ns/a", {"n": "a"})
    await store.create("/registry/pods/other/c", {"n": "c"})
    await store.create("/registry/pods0", {"n": "not a pod"})
    await store.create("/registry/podsecurity/x", {"n": "not a pod"})
    doomed = await store.create("/registry/pods/ns/d", {"n": "d"})
    await store.delete("/registry/pods/ns/d", expected_revision=doomed.revision)

    records, revision = await store.list("/registry/pods/")

    assert [r.key for r in records] == [
        "/registry/pods/ns/a",
        "/registry/pods/ns/b",
        "/registry/pods/other/c",
    ]
    assert revision == 7
    assert [r.key for r in (await store.list("/registry/pods/ns/"))[0]] == [
        "/registry/pods/ns/a",
        "/registry/pods/ns/b",
    ]
    assert len((await store.list(""))[0]) == 5


async def test_list_at_a_past_revision_shows_the_state_at_that_revision(store: Store) -> None:
    a1 = await store.create("/registry/cm/ns/a", {"v": 1})
    b1 = await store.create("/registry/cm/ns/b", {"v": 1})
    a2 = await store.update("/registry/cm/ns/a", {"v": 2}, expected_revision=a1.revision)
    await store.delete("/registry/cm/ns/b", expected_revision=b1.revision)
    await store.create("/registry/cm/ns/c", {"v": 1})

    assert await store.list("/registry/cm/", revision=1) == ([a1], 1)
    assert await store.list("/registry/cm/", revision=3) == ([a2, b1], 3)
    assert await store.list("/registry/cm/", revision=4) == ([a2], 4)
    assert [r.key for r in (await store.list("/registry/cm/", revision=5))[0]] == [
        "/registry/cm/ns/a",
        "/registry/cm/ns/c",
    ]


async def test_pages_read_at_the_first_pages_revision_ignore_later_writes(store: Store) -> None:
    written = [await store.create(f"/registry/pods/ns/p{i:02d}", {"i": i}) for i in range(10)]

    first, revision = await store.list("/registry/pods/", limit=4)
    await store.update("/registry/pods/ns/p05", {"i": "new"}, expected_revision=written[5].revision)
    await store.delete("/registry/pods/ns/p07")
    await store.create("/registry/pods/ns/p10", {"i": 10})
    second, second_revision = await store.list(
        "/registry/pods/", revision=revision, start_after=first[-1].key, limit=4
    )
    third, _ = await store.list(
        "/registry/pods/", revision=revision, start_after=second[-1].key, limit=4
    )

    assert second_revision == revision
    assert [len(first), len(second), len(third)] == [4, 4, 2]
    assert first + second + third == written


async def test_the_store_keeps_its_own_copy_of_each_value(store: Store) -> None:
    value = {"spec": {"replicas": 1}}
    created = await store.create("/registry/deployments/ns/d", value)
    value["spec"]["replicas"] = 5
    created.value["spec"]["replicas"] = 7

    assert (await store.get("/registry/deployments/ns/d")).value == {"spec": {"replicas": 1}}


async def test_watch_replays_history_then_follows_live_writes(store: Store) -> None:
    first = await store.create("/registry/pods/ns/a", {"v": 1})
    await store.update("/registry/pods/ns/a", {"v": 2}, expected_revision=first.revision)
    watch = store.watch("/registry/pods/", 0)

    replayed = await take(watch, 2)
    await store.delete("/registry/pods/ns/a")
    await store.create("/registry/pods/ns/b", {"v": 1})
    live = await take(watch, 2)
    await watch.aclose()

    assert [(e.type, e.key, e.revision) for e in replayed + live] == [
        ("ADDED", "/registry/pods/ns/a", 1),
        ("MODIFIED", "/registry/pods/ns/a", 2),
        ("DELETED", "/registry/pods/ns/a", 3),
        ("ADDED", "/registry/pods/ns/b", 4),
    ]


async def test_watch_events_carry_the_previous_version(store: Store) -> None:
    first = await store.create("/registry/pods/ns/a", {"v": 1})
    second = await store.update("/registry/pods/ns/a", {"v": 2}, expected_revision=first.revision)
    await store.delete("/registry/pods/ns/a")

    added, modified, deleted = await take(store.watch("/registry/pods/", 0), 3)

    assert added == WatchEvent("ADDED", "/registry/pods/ns/a", {"v": 1}, 1, None, 0)
    assert modified == WatchEvent("MODIFIED", "/registry/pods/ns/a", {"v": 2}, 2, {"v": 1}, 1)
    assert deleted == WatchEvent(
        "DELETED", "/registry/pods/ns/a", {"v": 2}, 3, {"v": 2}, second.revision
    )


async def test_a_watch_started_during_concurrent_writes_yields_each_later_revision_once_in_order(
    store: Store,
) -> None:
    keys = [f"/registry/things/ns/k{i}" for i in range(5)]
    created = [await store.create(key, {"n": 0}) for key in keys]
    updates_per_key = 120
    final = len(keys) * (updates_per_key + 1)

    async def write(record: Record) -> None:
        for n in range(1, updates_per_key + 1):
            record = await store.update(record.key, {"n": n}, expected_revision=record.revision)

    async def reached(revision: int) -> bool:
        return await store.current_revision() >= revision

    writers = [asyncio.create_task(write(record)) for record in created]
    await until(lambda: reached(final // 4))
    start = await store.current_revision()
    events = await take(store.watch("/registry/things/", start), final - start)
    await asyncio.gather(*writers)

    assert start < final
    assert [e.revision for e in events] == list(range(start + 1, final + 1))
    assert await store.current_revision() == final
    for event in events:
        assert event.type == "MODIFIED"
        assert event.value["n"] == event.prev_value["n"] + 1
        assert event.revision > event.prev_revision


async def test_a_watch_on_a_prefix_sees_only_keys_under_it(store: Store) -> None:
    start = await store.current_revision()
    await store.create("/registry/pods/ns/a", {})
    await store.create("/registry/services/ns/a", {})
    await store.create("/registry/pods0", {})
    await store.create("/registry/pods/ns/b", {})
    watch = store.watch("/registry/pods/", start)

    events = await take(watch, 2)
    await store.create("/registry/services/ns/b", {})
    await store.create("/registry/pods/other/c", {})
    events += await take(watch, 1)
    await watch.aclose()

    assert [e.key for e in events] == [
        "/registry/pods/ns/a",
        "/registry/pods/ns/b",
        "/registry/pods/other/c",
    ]


async def test_of_200_concurrent_updates_with_the_same_expected_revision_exactly_one_succeeds(
    store: Store,
) -> None:
    original = await store.create("/registry/leases/ns/leader", {"holder": None})

    results = await asyncio.gather(
        *(
            store.update(
                "/registry/leases/ns/leader", {"holder": i}, expected_revision=original.revision
            )
            for i in range(200)
        ),
        return_exceptions=True,
    )

    winners = [r for r in results if isinstance(r, Record)]
    losers = [r for r in results if isinstance(r, RevisionConflict)]
    assert len(winners) == 1
    assert len(losers) == 199
    assert {(c.expected, c.actual) for c in losers} == {(original.revision, winners[0].revision)}
    assert await store.get("/registry/leases/ns/leader") == winners[0]
    assert await store.current_revision() == winners[0].revision


async def test_concurrent_writes_get_contiguous_revisions_and_one_failure_fails_no_other(
    store: Store,
) -> None:
    await store.create("/registry/cm/ns/taken", {})

    results = await asyncio.gather(
        *(
            store.create("/registry/cm/ns/taken" if i % 10 == 0 else f"/registry/cm/ns/k{i}", {})
            for i in range(100)
        ),
        return_exceptions=True,
    )

    created = [r for r in results if isinstance(r, Record)]
    assert sum(isinstance(r, KeyExists) for r in results) == 10
    assert sorted(r.revision for r in created) == list(range(2, 92))
    assert len((await store.list("/registry/cm/"))[0]) == 91


async def test_list_and_watch_before_the_compact_revision_raise_compacted(store: Store) -> None:
    record = await store.create("/registry/cm/ns/a", {"v": 0})
    for v in range(1, 6):
        record = await store.update(
            "/registry/cm/ns/a", {"v": v}, expected_revision=record.revision
        )

    compact_revision = await store.compact(keep=2)

    assert compact_revision == 4
    with pytest.raises(Compacted) as listed:
        await store.list("/registry/cm/", revision=3)
    assert (listed.value.requested, listed.value.compact_revision) == (3, 4)
    with pytest.raises(Compacted) as watched:
        await anext(store.watch("/registry/cm/", 3))
    assert (watched.value.requested, watched.value.compact_revision) == (3, 4)
    assert [e.revision for e in await take(store.watch("/registry/cm/", 4), 2)] == [5, 6]


async def test_history_pages_through_events_after_a_revision_and_refuses_compacted_ones(
    store: Store
) -> None:
    a = await store.create("/registry/cm/ns/a", {"v": 0})
    await store.create("/registry/other/ns/x", {})
    await store.update("/registry/cm/ns/a", {"v": 1}, expected_revision=a.revision)
    await store.delete("/registry/cm/ns/a")
    events = await store.history("/registry/cm/", 0, 10)
    assert [(e.type, e.revision) for e in events] == [("ADDED", 1), ("MODIFIED", 3),
                                                      ("DELETED", 4)]
    assert events[1].prev_value == {"v": 0}
    assert [e.revision for e in await store.history("/registry/cm/", 1, 1)] == [3]
    assert await store.history("/registry/cm/", 4, 10) == []
    await store.compact(keep=1)
    with pytest.raises(Compacted):
        await store.history("/registry/cm/", 1, 10)


async def test_compaction_keeps_the_newest_rows_and_the_state_at_the_compact_revision(
    store: Store,
) -> None:
    a1 = await store.create("/registry/cm/ns/a", {"v": 1})
    a2 = await store.update("/registry/cm/ns/a", {"v": 2}, expected_revision=a1.revision)
    b3 = await store.create("/registry/cm/ns/b", {"v": 1})
    a4 = await store.update("/registry/cm/ns/a", {"v": 3}, expected_revision=a2.revision)
    await store.delete("/registry/cm/ns/b")
    c6 = await store.create("/registry/cm/ns/c", {"v": 1})
    a7 = await store.update("/registry/cm/ns/a", {"v": 4}, expected_revision=a4.revision)

    assert await store.compact(keep=3) == 4
    assert await store.list("/registry/cm/", revision=4) == ([a4, b3], 4)
    assert await store.list("/registry/cm/") == ([a7, c6], 7)
    assert [(e.type, e.revision) for e in await take(store.watch("/registry/cm/", 4), 3)] == [
        ("DELETED", 5),
        ("ADDED", 6),
        ("MODIFIED", 7),
    ]

    assert await store.compact(keep=0) == 7
    assert await store.list("/registry/cm/", revision=7) == ([a7, c6], 7)
    assert await store.get("/registry/cm/ns/a") == a7
    assert await store.compact(keep=5) == 7


async def test_events_after_the_compact_revision_still_carry_their_previous_versions(
    store: Store,
) -> None:
    a = await store.create("/registry/cm/ns/a", {"v": 1})
    a = await store.update("/registry/cm/ns/a", {"v": 2}, expected_revision=a.revision)
    b = await store.create("/registry/cm/ns/b", {"v": 1})
    await store.update("/registry/cm/ns/a", {"v": 3}, expected_revision=a.revision)
    await store.delete("/registry/cm/ns/b", expected_revision=b.revision)

    assert await store.compact(keep=2) == 3

    assert await store.history("/registry/cm/", 3, 10) == [
        WatchEvent("MODIFIED", "/registry/cm/ns/a", {"v": 3}, 4, {"v": 2}, 2),
        WatchEvent("DELETED", "/registry/cm/ns/b", {"v": 1}, 5, {"v": 1}, 3),
    ]


async def test_a_compacted_deleted_key_can_be_created_again(store: Store) -> None:
    await store.create("/registry/ns/gone", {"v": 1})
    await store.delete("/registry/ns/gone")
    await store.compact(keep=0)

    again = await store.create("/registry/ns/gone", {"v": 2})

    assert again == Record("/registry/ns/gone", {"v": 2}, 3, create_revision=3)
    assert await store.get("/registry/ns/gone") == again


async def test_compaction_during_a_replay_raises_compacted_rather_than_skip_events(
    store: Store,
) -> None:
    for i in range(700):
        await store.create(f"/registry/cm/ns/k{i}", {"v": 0})
    for i in range(700):
        await store.update(f"/registry/cm/ns/k{i}", {"v": 1}, expected_revision=i + 1)
    watch = store.watch("/registry/cm/", 0)
    seen = await take(watch, 1)

    await store.compact(keep=0)
    with pytest.raises(Compacted):
        async with asyncio.timeout(DEADLINE):
            async for event in watch:
                seen.append(event)

    assert [e.revision for e in seen] == list(range(1, len(seen) + 1))


async def test_a_watcher_that_falls_behind_is_dropped(open_store: StoreFactory) -> None:
    store = await open_store(watch_queue_limit=5)
    watch = store.watch("/registry/", await store.current_revision())
    first = asyncio.create_task(anext(watch))
    await store.create("/registry/cm/ns/0", {})
    assert (await first).revision == 1

    for i in range(1, 20):
        await store.create(f"/registry/cm/ns/{i}", {})

    with pytest.raises(WatchDropped):
        await take(watch, 19)


async def test_closing_the_store_ends_its_watches(store: Store) -> None:
    watch = store.watch("/registry/", 0)
    await store.create("/registry/cm/ns/a", {})
    assert [e.key for e in await take(watch, 1)] == ["/registry/cm/ns/a"]
    waiting = asyncio.create_task(anext(watch))

    await store.close()

    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, DEADLINE)
