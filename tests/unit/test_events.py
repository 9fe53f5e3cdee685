"""EventRecorder: Events posted for objects, aggregated, against a real in-process API server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from minik.api.resources import REGISTRY
from minik.machinery.events import EventRecorder
from tests.unit.apitest import Api, poll, start_api

EVENTS = REGISTRY.resolve("events")
CONFIGMAPS = REGISTRY.resolve("configmaps")
NODES = REGISTRY.resolve("nodes")
assert EVENTS is not None and CONFIGMAPS is not None and NODES is not None
@pytest.fixture
async def api() -> AsyncIterator[Api]:
    env = await start_api()
    yield env
    await env.close()


async def a_configmap(api: Api, name: str = "cm") -> dict:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
    return await api.client.create(CONFIGMAPS, "default", body)


async def events_in(api: Api, namespace: str = "default") -> list[dict]:
    return (await api.client.list(EVENTS, namespace))["items"]


async def test_a_recorded_event_is_posted_with_the_kubernetes_event_shape(api: Api):
    cm = await a_configmap(api)
    recorder = EventRecorder(api.client, "tester", host="node-1")
    recorder.record(cm, "Normal", "Touched", "it was touched")
    await recorder.flush()
    [event] = await events_in(api)
    name, _, suffix = event["metadata"]["name"].rpartition(".")
    assert name == "cm" and len(suffix) == 16 and int(suffix, 16) > 0
    assert event["involvedObject"] == {
        "apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "namespace": "default",
        "uid": cm["metadata"]["uid"], "resourceVersion": cm["metadata"]["resourceVersion"]}
    assert (event["type"], event["reason"], event["message"]) == (
        "Normal", "Touched", "it was touched")
    assert event["source"] == {"component": "tester", "host": "node-1"}
    assert (event["reportingComponent"], event["reportingInstance"]) == ("tester", "node-1")
    assert event["count"] == 1
    assert event["firstTimestamp"] == event["lastTimestamp"]


async def test_the_same_event_again_bumps_the_count_of_the_first_one(api: Api):
    cm = await a_configmap(api)
    recorder = EventRecorder(api.client, "tester")
    for _ in range(3):
        recorder.record(cm, "Warning", "BackOff", "backing off")
    recorder.record(cm, "Warning", "BackOff", "a different message")
    await recorder.flush()
    events = sorted(await events_in(api), key=lambda e: e["message"])
    assert [(e["message"], e["count"]) for e in events] == [
        ("a different message", 1), ("backing off", 3)]


async def test_a_deleted_aggregated_event_is_created_anew(api: Api):
    cm = await a_configmap(api)
    recorder = EventRecorder(api.client, "tester")
    recorder.record(cm, "Normal", "Pulled", "pulled")
    await recorder.flush()
    [first] = await events_in(api)
    await api.client.delete(EVENTS, "default", first["metadata"]["name"])
    recorder.record(cm, "Normal", "Pulled", "pulled")
    await recorder.flush()
    [second] = await events_in(api)
    assert second["metadata"]["name"] != first["metadata"]["name"]
    assert second["count"] == 1


async def test_events_of_a_cluster_scoped_object_go_to_the_default_namespace(api: Api):
    node = await api.client.create(NODES, None, {"apiVersion": "v1", "kind": "Node",
                                                 "metadata": {"name": "n1"}})
    recorder = EventRecorder(api.client, "kubelet")
    recorder.record(node, "Normal", "Starting", "Starting kubelet.")
    await recorder.flush()
    [event] = await events_in(api)
    assert event["involvedObject"]["kind"] == "Node"
    assert "namespace" not in event["involvedObject"]


async def test_run_posts_events_in_the_background(api: Api):
    cm = await a_configmap(api)
    recorder = EventRecorder(api.client, "tester")
    api.start(recorder.run(), "events")
    recorder.record(cm, "Normal", "One", "one")
    recorder.record(cm, "Normal", "One", "one")
    events = await poll(lambda: events_in(api), lambda items: items and items[0]["count"] == 2)
    assert len(events) == 1


async def test_record_never_blocks_and_drops_events_when_the_queue_is_full(
    api: Api, caplog: pytest.LogCaptureFixture,
):
    cm = await a_configmap(api)
    recorder = EventRecorder(api.client, "tester", queue_size=2)
    with caplog.at_level(logging.WARNING, logger="minik.machinery.events"):
        for i in range(5):
            recorder.record(cm, "Normal", "Many", f"event {i}")
    assert recorder.dropped == 3
    assert "event queue full" in caplog.text
    await recorder.flush()
    assert sorted(e["message"] for e in await events_in(api)) == ["event 0", "event 1"]


async def test_an_api_failure_is_logged_and_never_raised(
    api: Api, caplog: pytest.LogCaptureFixture,
):
    recorder = EventRecorder(api.client, "tester")
    ghost = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "p", "namespace": "no-such-namespace", "uid": "u"}}
    with caplog.at_level(logging.WARNING, logger="minik.machinery.events"):
        recorder.record(ghost, "Normal", "Nowhere", "into the void")
        await recorder.flush()
    assert "could not write Normal event Nowhere" in caplog.text
