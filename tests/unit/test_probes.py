"""Probes turn check results into readiness, startup and liveness as the kubelet does.

Exec probes run against `FakeRuntime` with scripted exit codes; HTTP and TCP
probes reach a real in-process server on 127.0.0.1. Periods and initial
delays run on a `ManualClock` that the tests advance (`Harness.until` steps
it a period at a time while it polls with a deadline), so nothing sleeps
to synchronise and timing is exact.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from agent.fake_runtime import FakeRuntime
from agent.probes import ProbeManager, RunningContainer
from agent.runtime import ContainerSpec, ExecResult, ExecTimedOut
from minik.machinery.clock import ManualClock
from tests.unit.apitest import eventually

IMAGE = "minik/busybox:1.35"
UID = "5f0c-uid"
PERIOD = 10.0
FAST = {"periodSeconds": PERIOD, "timeoutSeconds": 0.5}


class Recorder:
    """An EventSink that keeps what it is told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def record(self, obj: dict[str, Any], type: str, reason: str, message: str) -> None:
        assert obj["metadata"]["uid"] == UID
        self.events.append((type, reason, message))

    def messages(self, reason: str = "Unhealthy") -> list[str]:
        return [m for _, r, m in self.events if r == reason]


class Script:
    """Exit codes an exec probe returns in turn; the last one repeats."""

    def __init__(self, *codes: int, output: bytes = b"") -> None:
        self.codes = list(codes)
        self.output = output
        self.calls = 0

    def __call__(self, _command: list[str], _stdin: bytes) -> ExecResult:
        code = self.codes[min(self.calls, len(self.codes) - 1)]
        self.calls += 1
        return ExecResult(code, self.output if code else b"")


class Harness:
    """A ProbeManager over a FakeRuntime on a manual clock, with a log of on_change calls."""

    def __init__(self) -> None:
        self.runtime = FakeRuntime(images=(IMAGE,))
        self.events = Recorder()
        self.registry = CollectorRegistry()
        self.clock = ManualClock(start=1_800_000_000.0)
        self.changes: list[str] = []
        self.observers: list[Callable[[str], None]] = []
        self.manager = ProbeManager(self.runtime, on_change=self.changed, events=self.events,
                                    clock=self.clock, registry=self.registry)

    def changed(self, pod_uid: str) -> None:
        self.changes.append(pod_uid)
        for observe in self.observers:
            observe(pod_uid)

    async def start(self, name: str = "app") -> RunningContainer:
        docker_name = f"{name}-{len(self.runtime.containers)}"
        cid = await self.runtime.create(ContainerSpec(name=docker_name, image=IMAGE))
        await self.runtime.start(cid)
        return RunningContainer(name=name, container_id=cid,
                                started_at=self.clock.wall().timestamp())

    def sync(self, pod: dict[str, Any], *running: RunningContainer,
             pod_ip: str | None = "127.0.0.1") -> None:
        self.manager.sync(pod, list(running), pod_ip)

    async def until(self, condition: Callable[[], bool], step: float = PERIOD) -> None:
        """Let the probes run, the clock moving on `step` at each poll, until `condition`
        holds; fail after 5 s of real time."""
        async with asyncio.timeout(5):
            while not condition():
                await asyncio.sleep(0.01)
                self.clock.advance(step)


def pod(*containers: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"namespace": "shop", "name": "web", "uid": UID},
            "spec": {"containers": list(containers)}}


def container(name: str = "app", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": IMAGE, **fields}


def exec_probe(*command: str, **fields: Any) -> dict[str, Any]:
    return {"exec": {"command": list(command)}, **FAST, **fields}



def probe_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("probe:")]


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    harness = Harness()
    yield harness
    await harness.manager.close()
    assert probe_tasks() == []


@pytest.fixture
async def server() -> AsyncIterator[dict[str, Any]]:
    """An HTTP server whose answer the test sets; it remembers the requests it saw."""
    state: dict[str, Any] = {"status": 200, "requests": [], "release": asyncio.Event(),
                             "hang": False}

    async def handle(request: web.Request) -> web.Response:
        state["requests"].append((request.path, dict(request.headers)))
        if state["hang"]:
            await state["release"].wait()
        return web.Response(status=state["status"], text="ok")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    state["port"] = runner.addresses[0][1]
    yield state
    state["release"].set()
    await runner.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_readiness_probe_keeps_the_container_unready_until_its_first_success(
    h: Harness,
) -> None:
    script = Script(1, 1, 0)
    flipped_at: list[int] = []
    h.observers.append(lambda _uid: flipped_at.append(script.calls))
    h.runtime.on_exec(["ready"], script)
    h.sync(pod(container(readinessProbe=exec_probe("ready"))), await h.start())
    assert h.manager.view(UID).ready == {"app": False}
    await h.until(lambda: h.manager.view(UID).ready == {"app": True})
    assert flipped_at == [3]
    assert h.changes == [UID]


async def test_readiness_turns_false_after_failure_threshold_failures_and_true_again(
    h: Harness,
) -> None:
    script = Script(0, 1, 1, 1, 0)
    seen: list[tuple[int, bool]] = []
    h.observers.append(lambda uid: seen.append((script.calls, h.manager.view(uid).ready["app"])))
    h.runtime.on_exec(["ready"], script)
    h.sync(pod(container(readinessProbe=exec_probe("ready", failureThreshold=3))), await h.start())
    await h.until(lambda: len(seen) == 3)
    assert seen == [(1, True), (4, False), (5, True)]
    assert h.manager.liveness_failed(UID) == set()


async def test_readiness_needs_success_threshold_successes_in_a_row(h: Harness) -> None:
    script = Script(0, 1, 0, 0)
    flipped_at: list[int] = []
    h.observers.append(lambda _uid: flipped_at.append(script.calls))
    h.runtime.on_exec(["ready"], script)
    probe = exec_probe("ready", successThreshold=2)
    h.sync(pod(container(readinessProbe=probe)), await h.start())
    await h.until(lambda: h.manager.view(UID).ready == {"app": True})
    assert flipped_at == [4]


async def test_a_container_without_probes_is_absent_from_the_view(h: Harness) -> None:
    h.sync(pod(container()), await h.start())
    assert h.manager.view(UID).ready == {}
    assert h.manager.view(UID).started == {}
    assert probe_tasks() == []


async def test_liveness_failing_failure_threshold_times_is_reported_and_stops_probing(
    h: Harness,
) -> None:
    script = Script(0, 1, 1, output=b"cat: can't open '/tmp/healthy'\n")
    h.runtime.on_exec(["live"], script)
    h.sync(pod(container(livenessProbe=exec_probe("live", failureThreshold=2))), await h.start())
    await h.until(lambda: h.manager.liveness_failed(UID) == {"app"})
    assert h.changes == [UID]
    assert h.events.events == [("Warning", "Unhealthy",
                                "Liveness probe failed: cat: can't open '/tmp/healthy'")] * 2
    await eventually(lambda: probe_tasks() == [])
    assert script.calls == 3


async def test_a_startup_probe_holds_liveness_and_readiness_back_until_it_succeeds(
    h: Harness,
) -> None:
    startup, live = Script(1, 1, 0), Script(0)
    h.runtime.on_exec(["started"], startup)
    h.runtime.on_exec(["live"], live)
    h.runtime.on_exec(["ready"], Script(0))
    spec = container(startupProbe=exec_probe("started", failureThreshold=5),
                     livenessProbe=exec_probe("live"), readinessProbe=exec_probe("ready"))
    h.sync(pod(spec), await h.start())
    assert h.manager.view(UID).started == {"app": False}
    await h.until(lambda: h.manager.view(UID).ready == {"app": True})
    assert h.manager.view(UID).started == {"app": True}
    await h.until(lambda: live.calls >= 1)
    commands = [command for _, command in h.runtime.called("exec_run")]
    third_startup = [i for i, c in enumerate(commands) if c == ("started",)][2]
    assert commands.index(("live",)) > third_startup
    assert commands.index(("ready",)) > third_startup
    assert startup.calls == 3
    assert all(t.get_name().split(":")[1] != "startup" for t in probe_tasks())
    assert h.events.messages() == ["Startup probe failed: "] * 2


async def test_a_startup_probe_failing_failure_threshold_times_fails_the_container(
    h: Harness,
) -> None:
    h.runtime.on_exec(["started"], Script(1, output=b"not yet"))
    live = Script(0)
    h.runtime.on_exec(["live"], live)
    spec = container(startupProbe=exec_probe("started", failureThreshold=3),
                     livenessProbe=exec_probe("live"))
    h.sync(pod(spec), await h.start())
    await h.until(lambda: h.manager.liveness_failed(UID) == {"app"})
    assert h.manager.view(UID).started == {"app": False}
    assert h.events.messages() == ["Startup probe failed: not yet"] * 3
    assert live.calls == 0


async def test_an_exec_probe_that_times_out_fails_with_the_kubelet_message(h: Harness) -> None:
    h.runtime.on_exec(["sleep", "10"], ExecTimedOut("exec timed out"))
    h.sync(pod(container(livenessProbe=exec_probe("sleep", "10", failureThreshold=1))),
           await h.start())
    await h.until(lambda: h.manager.liveness_failed(UID) == {"app"})
    assert h.events.messages() == ['Liveness probe failed: command "sleep 10" timed out']
    assert h.runtime.called("exec_run")[0][1] == ("sleep", "10")


async def test_a_probe_runs_at_once_and_then_every_period_seconds(h: Harness) -> None:
    ready = Script(0)
    h.runtime.on_exec(["ready"], ready)
    h.sync(pod(container(readinessProbe=exec_probe("ready"))), await h.start())
    await eventually(lambda: ready.calls == 1 and h.clock.pending == 1)
    h.clock.advance(PERIOD - 0.1)
    await asyncio.sleep(0)
    assert ready.calls == 1
    h.clock.advance(0.1)
    await eventually(lambda: ready.calls == 2 and h.clock.pending == 1)


async def test_initial_delay_counts_from_the_container_start(h: Harness) -> None:
    live, ready = Script(0), Script(0)
    h.runtime.on_exec(["live"], live)
    h.runtime.on_exec(["ready"], ready)
    spec = container(livenessProbe=exec_probe("live", initialDelaySeconds=30),
                     readinessProbe=exec_probe("ready"))
    h.sync(pod(spec), await h.start())
    for calls in (1, 2, 3):
        await eventually(lambda calls=calls: ready.calls == calls and h.clock.pending == 2)
        assert live.calls == 0
        h.clock.advance(PERIOD)
    await eventually(lambda: ready.calls == 4 and live.calls == 1)


async def test_a_container_past_its_initial_delay_is_probed_at_once(h: Harness) -> None:
    h.runtime.on_exec(["ready"], Script(0))
    running = await h.start()
    h.clock.advance(3600)
    probe = exec_probe("ready", initialDelaySeconds=60, periodSeconds=600)
    h.sync(pod(container(readinessProbe=probe)), running)
    await eventually(lambda: h.manager.view(UID).ready == {"app": True})


async def test_a_restarted_container_gets_fresh_results_and_fresh_loops(h: Harness) -> None:
    h.runtime.on_exec(["ready"], Script(0))
    h.runtime.on_exec(["live"], Script(1))
    spec = pod(container(readinessProbe=exec_probe("ready"),
                         livenessProbe=exec_probe("live", failureThreshold=1)))
    first = await h.start()
    h.sync(spec, first)
    await h.until(lambda: h.manager.liveness_failed(UID) == {"app"})
    await h.until(lambda: h.manager.view(UID).ready == {"app": True})
    h.runtime.on_exec(["ready"], Script(1))
    second = await h.start()
    h.sync(spec, second)
    assert h.manager.liveness_failed(UID) == set()
    assert h.manager.view(UID).ready == {"app": False}
    await eventually(lambda: all(second.container_id[:12] in t.get_name() for t in probe_tasks()))


async def test_a_container_that_stopped_running_is_no_longer_probed(h: Harness) -> None:
    h.runtime.on_exec(["ready"], Script(0))
    spec = pod(container(readinessProbe=exec_probe("ready")))
    h.sync(spec, await h.start())
    await h.until(lambda: h.manager.view(UID).ready == {"app": True})
    h.sync(spec)
    assert h.manager.view(UID).ready == {}
    await eventually(lambda: probe_tasks() == [])


async def test_remove_stops_every_probe_loop_of_the_pod(h: Harness) -> None:
    h.runtime.on_exec(["ready"], Script(0))
    probe = exec_probe("ready")
    spec = pod(container("a", readinessProbe=probe, livenessProbe=probe),
               container("b", readinessProbe=probe))
    h.sync(spec, await h.start("a"), await h.start("b"))
    assert len(probe_tasks()) == 3
    h.manager.remove(UID)
    await eventually(lambda: probe_tasks() == [])
    assert h.manager.view(UID).ready == {}


async def test_close_stops_every_probe_loop(h: Harness) -> None:
    h.runtime.on_exec(["ready"], Script(0))
    h.sync(pod(container(readinessProbe=exec_probe("ready"))), await h.start())
    await h.manager.close()
    assert probe_tasks() == []


async def test_an_http_probe_reaches_a_named_port_with_its_path_and_headers(
    h: Harness, server: dict[str, Any],
) -> None:
    probe = {"httpGet": {"path": "/healthz", "port": "web",
                         "httpHeaders": [{"name": "X-Probe", "value": "yes"}]}, **FAST}
    spec = container(ports=[{"name": "web", "containerPort": server["port"]}],
                     readinessProbe=probe)
    h.sync(pod(spec), await h.start())
    await h.until(lambda: h.manager.view(UID).ready == {"app": True})
    path, headers = server["requests"][0]
    assert path == "/healthz"
    assert headers["X-Probe"] == "yes"
    assert headers["User-Agent"].startswith("kube-probe/")


async def test_an_http_probe_answered_with_500_fails_with_the_status_code(
    h: Harness, server: dict[str, Any],
) -> None:
    probe = {"httpGet": {"path": "/healthz", "port": server["port"]}, "failureThreshold": 1, **FAST}
    h.sync(pod(container(readinessProbe=probe)), await h.start())
    await h.until(lambda: h.manager.view(UID).ready == {"app": True})
    server["status"] = 500
    await h.until(lambda: h.manager.view(UID).ready == {"app": False})
    assert h.events.messages()[0] == (
        "Readiness probe failed: HTTP probe failed with statuscode: 500")


async def test_an_http_probe_to_a_closed_port_fails_with_connection_refused(h: Harness) -> None:
    port = free_port()
    probe = {"httpGet": {"path": "/healthz", "port": port}, "failureThreshold": 1, **FAST}
    h.sync(pod(container(livenessProbe=probe)), await h.start())
    await h.until(lambda: h.manager.liveness_failed(UID) == {"app"})
    assert h.events.messages() == [
        f'Liveness probe failed: Get "http://127.0.0.1:{port}/healthz": '
        f"dial tcp 127.0.0.1:{port}: connect: connection refused"]


async def test_an_http_probe_without_an_answer_in_time_fails(
    h: Harness, server: dict[str, Any],
) -> None:
    server["hang"] = True
    probe = {"httpGet": {"port": server["port"]}, "failureThreshold": 1,
             "periodSeconds": 0.005, "timeoutSeconds": 0.05}
    h.sync(pod(container(livenessProbe=probe)), await h.start())
    await h.until(lambda: h.manager.liveness_failed(UID) == {"app"})
    assert h.events.messages() == [
        f'Liveness probe failed: Get "http://127.0.0.1:{server["port"]}/": '
        "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"]


async def test_a_tcp_probe_follows_whether_the_port_accepts_connections(h: Harness) -> None:
    listener = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    probe = {"tcpSocket": {"port": "tcp"}, "failureThreshold": 1, **FAST}
    spec = container(ports=[{"name": "tcp", "containerPort": port}], readinessProbe=probe)
    h.sync(pod(spec), await h.start())
    await h.until(lambda: h.manager.view(UID).ready == {"app": True})
    listener.close()
    await listener.wait_closed()
    await h.until(lambda: h.manager.view(UID).ready == {"app": False})
    assert h.events.messages()[0] == (
        f"Readiness probe failed: dial tcp 127.0.0.1:{port}: connect: connection refused")


async def test_an_unknown_port_name_is_an_error_that_counts_neither_way(h: Harness) -> None:
    probe = {"tcpSocket": {"port": "nope"}, "failureThreshold": 1, **FAST}
    h.sync(pod(container(livenessProbe=probe)), await h.start())
    await h.until(lambda: len(h.events.messages()) >= 3)
    assert h.manager.liveness_failed(UID) == set()
    assert h.events.messages()[0].startswith(
        "Liveness probe errored and resulted in unknown state: couldn't find port: nope")


async def test_a_grpc_probe_fails_as_unsupported(h: Harness) -> None:
    probe = {"grpc": {"port": 9090}, "failureThreshold": 1, **FAST}
    h.sync(pod(container(livenessProbe=probe)), await h.start())
    await h.until(lambda: h.manager.liveness_failed(UID) == {"app"})
    assert h.events.messages() == ["Liveness probe failed: gRPC probes are not supported by minik"]


async def test_probe_results_are_counted_per_type_and_result(h: Harness) -> None:
    h.runtime.on_exec(["ready"], Script(0, 1))
    h.sync(pod(container(readinessProbe=exec_probe("ready"))), await h.start())
    labels = {"probe_type": "Readiness", "namespace": "shop", "pod": "web", "container": "app"}

    def count(result: str) -> float | None:
        return h.registry.get_sample_value("minik_prober_probe_total", {**labels, "result": result})

    await h.until(lambda: (count("failed") or 0) >= 1)
    assert count("successful") == 1
    h.manager.remove(UID)
    assert count("successful") is None
