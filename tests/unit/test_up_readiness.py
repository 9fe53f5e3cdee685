"""When the server counts its node as Ready, and so says it is up."""

from __future__ import annotations

import datetime as dt

from minik.home import Home
from minik.server.components import ready_since
from minik.server.config import ServerConfig

STARTED = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def node(status: str, heartbeat: str) -> dict:
    return {"status": {"conditions": [
        {"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": heartbeat},
        {"type": "Ready", "status": status, "lastHeartbeatTime": heartbeat}]}}


def test_a_node_is_ready_once_it_reports_ready_in_this_run() -> None:
    assert ready_since(node("True", "2026-01-01T12:00:00Z"), STARTED)
    assert ready_since(node("True", "2026-01-01T12:00:03Z"), STARTED)


def test_a_ready_status_left_by_an_earlier_run_does_not_count() -> None:
    assert not ready_since(node("True", "2026-01-01T11:59:59Z"), STARTED)


def test_a_node_not_ready_or_without_conditions_is_not_ready() -> None:
    assert not ready_since(node("False", "2026-01-01T12:00:03Z"), STARTED)
    assert not ready_since({"metadata": {"name": "n"}}, STARTED)


def test_the_node_to_wait_for_is_none_when_the_agent_is_disabled() -> None:
    config = ServerConfig(Home.at("/tmp/h"), "m", 6443, node_name="n1")
    assert config.node == "n1"
    assert ServerConfig(Home.at("/tmp/h"), "m", 6443, node_name="n1",
                        disabled_controllers=frozenset({"agent"})).node is None
