"""Event TTL: Events expire a TTL after they were last seen, on a real API server."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest

from minik.api.meta import format_time, now
from minik.api.resources import REGISTRY
from minik.controllers.eventttl import EventTTLController, last_seen
from tests.unit.apitest import poll, start_api
from tests.unit.test_garbagecollector import Cluster, exists

EVENTS = REGISTRY.resolve("events")
assert EVENTS is not None
HOUR = dt.timedelta(hours=1)


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    env = Cluster(await start_api())
    yield env
    await env.close()


def ttl_controller(ttl: float, interval: float = 3600.0):
    return lambda ctx: EventTTLController(ctx, ttl=ttl, interval=interval)


async def event(cluster: Cluster, name: str, last: dt.datetime, *,
                namespace: str = "default") -> dict:
    stamp = format_time(last)
    body = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
            "involvedObject": {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm",
                               "namespace": namespace},
            "reason": "Touched", "message": "it was touched", "type": "Normal",
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1}
    return await cluster.client.create(EVENTS, namespace, body)


async def names(cluster: Cluster) -> set[str]:
    items = (await cluster.client.list(EVENTS))["items"]
    return {e["metadata"]["name"] for e in items}


def test_an_event_was_last_seen_at_its_most_specific_time():
    assert last_seen({"lastTimestamp": "2024-05-01T10:00:00Z",
                      "firstTimestamp": "2024-05-01T09:00:00Z"}) == dt.datetime(
        2024, 5, 1, 10, tzinfo=dt.UTC)
    assert last_seen({"eventTime": "2024-05-01T10:00:00.123456Z"}).microsecond == 123456
    assert last_seen({"series": {"lastObservedTime": "2024-05-01T11:00:00Z"},
                      "eventTime": "2024-05-01T10:00:00Z"}).hour == 11
    assert last_seen({"lastTimestamp": None, "metadata": {
        "creationTimestamp": "2024-05-01T08:00:00Z"}}).hour == 8
    assert last_seen({"metadata": {}}) is None


async def test_events_older_than_the_ttl_are_deleted_and_newer_ones_kept(cluster: Cluster):
    await event(cluster, "old-1", now() - 2 * HOUR)
    await event(cluster, "old-2", now() - 2 * HOUR, namespace="kube-system")
    await event(cluster, "fresh", now())
    cluster.start(ttl_controller(ttl=60))
    await poll(lambda: names(cluster), lambda found: not found & {"old-1", "old-2"})
    assert await exists(cluster, EVENTS, "fresh")


async def test_an_event_is_deleted_once_its_ttl_runs_out(cluster: Cluster):
    cluster.start(ttl_controller(ttl=1))
    await event(cluster, "soon", now())
    await poll(lambda: names(cluster), lambda found: "soon" not in found, timeout=10)


async def test_an_aggregated_event_seen_again_lives_on(cluster: Cluster):
    await event(cluster, "repeated", now() - 2 * HOUR)
    await cluster.client.patch(EVENTS, "default", "repeated",
                               {"count": 2, "lastTimestamp": format_time(now())})
    await event(cluster, "stale", now() - 2 * HOUR)
    cluster.start(ttl_controller(ttl=60))
    await poll(lambda: names(cluster), lambda found: "stale" not in found)
    assert await exists(cluster, EVENTS, "repeated")


async def test_the_periodic_sweep_catches_events_that_expired_without_a_timer(cluster: Cluster):
    [controller] = cluster.start(ttl_controller(ttl=60, interval=0.05))
    await controller.events.wait_synced(5)
    await event(cluster, "ageing", now())
    controller.ttl = 0
    await poll(lambda: names(cluster), lambda found: "ageing" not in found)
