"""Lifecycle hooks run exec, HTTP and sleep handlers and report failures as the kubelet does.

Exec hooks run against `FakeRuntime`; HTTP hooks reach a real in-process
server on 127.0.0.1. Sleep hooks and the grace period they use run on a
`ManualClock`, so their timing is exact and nothing sleeps.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import pytest
from aiohttp import web

from agent.fake_runtime import FakeRuntime
from agent.hooks import post_start, pre_stop, run_hook
from agent.runtime import ContainerSpec, ExecResult, ExecTimedOut
from minik.machinery.clock import ManualClock
from tests.unit.apitest import eventually

IMAGE = "minik/busybox:1.35"
T = TypeVar("T")
POD = {"metadata": {"namespace": "shop", "name": "web", "uid": "u-1"}}


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def record(self, obj: dict[str, Any], type: str, reason: str, message: str) -> None:
        assert obj is POD
        self.events.append((type, reason, message))


def container(**lifecycle: dict[str, Any]) -> dict[str, Any]:
    return {"name": "app", "image": IMAGE, "ports": [{"name": "admin", "containerPort": 1}],
            "lifecycle": lifecycle}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def runtime_and_id() -> tuple[FakeRuntime, str]:
    runtime = FakeRuntime(images=(IMAGE,))
    cid = await runtime.create(ContainerSpec(name="app", image=IMAGE))
    await runtime.start(cid)
    return runtime, cid


@pytest.fixture
async def server() -> AsyncIterator[dict[str, Any]]:
    state: dict[str, Any] = {"status": 200, "requests": []}

    async def handle(request: web.Request) -> web.Response:
        state["requests"].append((request.path, dict(request.headers)))
        return web.Response(status=state["status"])

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    state["port"] = runner.addresses[0][1]
    yield state
    await runner.cleanup()


async def finishes_after(clock: ManualClock, running: Coroutine[Any, Any, T],
                         seconds: float) -> T:
    """Run `running` while the clock moves on: still waiting at `seconds` less 0.1, done at
    `seconds`; its result."""
    task = asyncio.create_task(running)
    await eventually(lambda: clock.pending == 1)
    clock.advance(seconds - 0.1)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(0.1)
    return await asyncio.wait_for(task, 5)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_container_without_a_post_start_hook_starts_without_an_exec(
    runtime_and_id: tuple[FakeRuntime, str], clock: ManualClock,
) -> None:
    runtime, cid = runtime_and_id
    events = Recorder()
    ok = await post_start(runtime, POD, container(), cid, pod_ip=None, events=events, clock=clock)
    assert ok
    assert runtime.called("exec_run") == []
    assert events.events == []


async def test_a_succeeding_post_start_exec_hook_lets_the_container_run(
    runtime_and_id: tuple[FakeRuntime, str], clock: ManualClock,
) -> None:
    runtime, cid = runtime_and_id
    events = Recorder()
    spec = container(postStart={"exec": {"command": ["touch", "/ready"]}})
    assert await post_start(runtime, POD, spec, cid, pod_ip=None, events=events, clock=clock)
    assert runtime.called("exec_run") == [(cid, ("touch", "/ready"))]
    assert events.events == []


async def test_a_failing_post_start_hook_records_failed_post_start_hook_and_returns_false(
    runtime_and_id: tuple[FakeRuntime, str], clock: ManualClock,
) -> None:
    runtime, cid = runtime_and_id
    runtime.on_exec(["false"], ExecResult(1, b"secret output"))
    events = Recorder()
    spec = container(postStart={"exec": {"command": ["false"]}})
    assert not await post_start(runtime, POD, spec, cid, pod_ip=None, events=events, clock=clock)
    assert events.events == [("Warning", "FailedPostStartHook", "PostStartHook failed")]


async def test_an_exec_hook_failure_message_names_command_container_pod_and_output(
    runtime_and_id: tuple[FakeRuntime, str], clock: ManualClock,
) -> None:
    runtime, cid = runtime_and_id
    runtime.on_exec(["sh", "-c", "exit 3"], ExecResult(3, b"boom\n"))
    hook = {"exec": {"command": ["sh", "-c", "exit 3"]}}
    message = await run_hook(runtime, POD, container(), cid, hook,
                             pod_ip=None, timeout=1, clock=clock)
    assert message == (
        'Exec lifecycle hook ([sh -c exit 3]) for Container "app" in Pod "web_shop(u-1)" '
        "failed - error: command 'sh -c exit 3' exited with 3, message: \"boom\"")


async def test_an_exec_hook_that_times_out_fails(
    runtime_and_id: tuple[FakeRuntime, str], clock: ManualClock,
) -> None:
    runtime, cid = runtime_and_id
    runtime.on_exec(["sleep", "99"], ExecTimedOut("timed out"))
    hook = {"exec": {"command": ["sleep", "99"]}}
    message = await run_hook(runtime, POD, container(), cid, hook,
                             pod_ip=None, timeout=0.1, clock=clock)
    assert message is not None
    assert 'command "sleep 99" timed out' in message


async def test_an_http_hook_reaches_a_named_port_and_succeeds_whatever_the_status(
    runtime_and_id: tuple[FakeRuntime, str], server: dict[str, Any], clock: ManualClock,
) -> None:
    runtime, cid = runtime_and_id
    server["status"] = 500
    spec = container()
    spec["ports"] = [{"name": "admin", "containerPort": server["port"]}]
    hook = {"httpGet": {"path": "/drain", "port": "admin",
                        "httpHeaders": [{"name": "X-Hook", "value": "1"}]}}
    assert await run_hook(runtime, POD, spec, cid, hook,
                          pod_ip="127.0.0.1", timeout=1, clock=clock) is None
    path, headers = server["requests"][0]
    assert path == "/drain"
    assert headers["X-Hook"] == "1"


async def test_an_http_hook_that_gets_no_answer_fails_with_the_dial_error(
    runtime_and_id: tuple[FakeRuntime, str], clock: ManualClock,
) -> None:
    runtime, cid = runtime_and_id
    port = closed_port()
    hook = {"httpGet": {"path": "/drain", "port": port}}
    message = await run_hook(runtime, POD, container(), cid, hook,
                             pod_ip="127.0.0.1", timeout=1, clock=clock)
    assert message == (
        'HTTP lifecycle hook (/drain) for Container "app" in Pod "web_shop(u-1)" failed - '
        f'error: Get "http://127.0.0.1:{port}/drain": '
        f"dial tcp 127.0.0.1:{port}: connect: connection refused")


async def test_an_http_hook_without_a_pod_ip_fails(
    runtime_and_id: tuple[FakeRuntime, str], clock: ManualClock,
) -> None:
    runtime, cid = runtime_and_id
    hook = {"httpGet": {"path": "/drain", "port": 80}}
    message = await run_hook(runtime, POD, container(), cid, hook,
                             pod_ip=None, timeout=1, clock=clock)
    assert message is not None
    assert "no IP address" in message


async def test_a_tcp_socket_hook_is_an_invalid_handler(
    runtime_and_id: tuple[FakeRuntime, str], clock: ManualClock,
) -> None:
    runtime, cid = runtime_and_id
    hook = {"tcpSocket": {"port": 80}}
    message = await run_hook(runtime, POD, container(), cid, hook,
                             pod_ip="127.0.0.1", timeout=1, clock=clock)
    assert message is not None
    assert message.startswith("Cannot run handler: invalid handler")


async def test_a_sleep_hook_waits_its_seconds_on_the_clock_and_succeeds(
    runtime_and_id: tuple[FakeRuntime, str], clock: ManualClock,
) -> None:
    runtime, cid = runtime_and_id
    hook = {"sleep": {"seconds": 5}}
    hooked = run_hook(runtime, POD, container(), cid, hook, pod_ip=None, timeout=10,
                      clock=clock)
    assert await finishes_after(clock, hooked, 5) is None


async def test_a_succeeding_pre_stop_hook_leaves_what_it_did_not_use_of_the_grace_period(
    runtime_and_id: tuple[FakeRuntime, str], clock: ManualClock,
) -> None:
    runtime, cid = runtime_and_id
    events = Recorder()
    spec = container(preStop={"exec": {"command": ["nginx", "-s", "quit"]}})
    left = await pre_stop(runtime, POD, spec, cid,
                          pod_ip=None, events=events, grace=30, clock=clock)
    assert left == 30
    assert runtime.called("exec_run") == [(cid, ("nginx", "-s", "quit"))]
    assert events.events == []


async def test_a_failing_pre_stop_hook_records_failed_pre_stop_hook(
    runtime_and_id: tuple[FakeRuntime, str], clock: ManualClock,
) -> None:
    runtime, cid = runtime_and_id
    runtime.on_exec(["drain"], ExecResult(1, b""))
    events = Recorder()
    spec = container(preStop={"exec": {"command": ["drain"]}})
    left = await pre_stop(runtime, POD, spec, cid,
                          pod_ip=None, events=events, grace=30, clock=clock)
    assert left == 30
    assert events.events == [("Warning", "FailedPreStopHook", "PreStopHook failed")]


async def test_a_pre_stop_sleep_hook_uses_its_seconds_of_the_grace_period(
    runtime_and_id: tuple[FakeRuntime, str], clock: ManualClock,
) -> None:
    runtime, cid = runtime_and_id
    spec = container(preStop={"sleep": {"seconds": 5}})
    stopping = pre_stop(runtime, POD, spec, cid, pod_ip=None, events=Recorder(), grace=30,
                        clock=clock)
    assert await finishes_after(clock, stopping, 5) == 25


async def test_a_pre_stop_hook_longer_than_the_grace_period_is_cut_off_at_its_end(
    runtime_and_id: tuple[FakeRuntime, str], clock: ManualClock,
) -> None:
    runtime, cid = runtime_and_id
    events = Recorder()
    spec = container(preStop={"sleep": {"seconds": 3600}})
    stopping = pre_stop(runtime, POD, spec, cid, pod_ip=None, events=events, grace=30,
                        clock=clock)
    assert await finishes_after(clock, stopping, 30) == 0
    assert events.events == [("Warning", "FailedPreStopHook", "PreStopHook failed")]


async def test_no_pre_stop_hook_runs_without_grace(
    runtime_and_id: tuple[FakeRuntime, str], clock: ManualClock,
) -> None:
    runtime, cid = runtime_and_id
    events = Recorder()
    spec = container(preStop={"exec": {"command": ["drain"]}})
    assert await pre_stop(runtime, POD, spec, cid,
                          pod_ip=None, events=events, grace=0, clock=clock) == 0
    assert runtime.called("exec_run") == []


async def test_a_container_without_a_pre_stop_hook_keeps_its_whole_grace_period(
    runtime_and_id: tuple[FakeRuntime, str], clock: ManualClock,
) -> None:
    runtime, cid = runtime_and_id
    left = await pre_stop(runtime, POD, container(), cid, pod_ip=None, events=Recorder(),
                          grace=30, clock=clock)
    assert left == 30
