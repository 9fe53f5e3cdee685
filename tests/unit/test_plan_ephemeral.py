"""Ephemeral containers in the pod action plan, the container spec and the status, without a
runtime: started once (in the target's process namespace), never restarted, reported."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from agent import labels
from agent.containers import PodContext, container_spec
from agent.fake_runtime import FakeRuntime
from agent.plan import backoff_key, compute_pod_actions
from agent.runtime import ContainerInfo
from agent.status import ProbeView, pod_status
from tests.unit.test_plan import NOW, T0, app, at, backoff, pod, sandbox, state_of
from tests.unit.test_pod_sync import BUSYBOX, NETWORK, PAUSE, Pods, make_syncer


def debugged(*, target: str | None = "app", init: bool = False) -> dict[str, Any]:
    p = pod(init=init)
    container: dict[str, Any] = {"name": "dbg", "image": "minik/busybox:1.35", "stdin": True,
                                 "tty": True}
    if target:
        container["targetContainerName"] = target
    p["spec"]["ephemeralContainers"] = [container]
    return p


def ephemeral(p: dict[str, Any], *, state: str = "running", exit_code: int = 0) -> ContainerInfo:
    spec = p["spec"]["ephemeralContainers"][0]
    return ContainerInfo(
        id="dbg0", name="dbg", image=spec["image"], image_id="sha256:x",
        labels=labels.container_labels("i", p, "dbg", labels.hash_container(spec), 0),
        state=state, exit_code=None if state == "running" else exit_code,
        created_at=T0 + dt.timedelta(seconds=5), started_at=T0 + dt.timedelta(seconds=5),
        finished_at=None if state == "running" else T0 + dt.timedelta(seconds=6))


def test_an_ephemeral_container_starts_once_in_its_running_targets_process_namespace() -> None:
    p = debugged()
    actions = compute_pod_actions(p, state_of(sandbox(), app(p)), backoff=backoff())
    [start] = actions.start
    assert (start.name, start.ephemeral, start.pid_target, start.restart_count) == (
        "dbg", True, "app0", 0)


def test_an_ephemeral_container_waits_for_its_target_to_run() -> None:
    p = debugged()
    actions = compute_pod_actions(p, state_of(sandbox(), app(p, state="exited", exit_code=1,
                                                             finished=99)),
                                  backoff=backoff())
    assert "dbg" not in [s.name for s in actions.start]
    assert actions.waiting["dbg"][0] == "ContainerCreating"


def test_an_ephemeral_container_starts_while_init_containers_still_run() -> None:
    p = debugged(target=None, init=True)
    actions = compute_pod_actions(p, state_of(sandbox(), app(p, "setup", init=True)),
                                  backoff=backoff())
    assert [(s.name, s.pid_target) for s in actions.start] == [("dbg", None)]


def test_an_ephemeral_container_that_ended_is_never_restarted() -> None:
    p = debugged()
    done = compute_pod_actions(p, state_of(sandbox(), app(p), ephemeral(p, state="exited",
                                                                        exit_code=1)),
                               backoff=backoff())
    assert done.empty


def test_the_ephemeral_container_joins_the_sandbox_and_its_targets_pid_namespace() -> None:
    p = debugged()
    ctx = PodContext("i", p, "minik-net", "minik/pause:1.0", None)
    spec = container_spec(ctx, p["spec"]["ephemeralContainers"][0], sandbox_id="sb0",
                          restart_count=0, env={}, mounts=[], pid_target="app0")
    assert (spec.network_mode, spec.ipc_mode, spec.pid_mode) == (
        "container:sb0", "container:sb0", "container:app0")
    assert spec.stdin_open and spec.tty


def test_ephemeral_containers_are_reported_running_then_terminated_and_never_ready() -> None:
    p = debugged()
    now = T0 + dt.timedelta(seconds=10)
    running = pod_status(p, state_of(sandbox(), app(p), ephemeral(p)), waiting={},
                         probes=ProbeView(), host_ip="127.0.0.1", now=now)
    [status] = running["ephemeralContainerStatuses"]
    assert "running" in status["state"] and status["ready"] is False
    assert [s["name"] for s in running["containerStatuses"]] == ["app"]
    ended = pod_status(p, state_of(sandbox(), app(p), ephemeral(p, state="exited")), waiting={},
                       probes=ProbeView(), host_ip="127.0.0.1", now=now)
    [status] = ended["ephemeralContainerStatuses"]
    assert status["state"]["terminated"]["reason"] == "Completed"
    assert ended["phase"] == "Running"


async def test_the_agent_starts_a_debugger_in_its_targets_process_namespace_and_reports_it(
        tmp_path: Path) -> None:
    runtime = FakeRuntime(images=(PAUSE, BUSYBOX))
    await runtime.ensure_network(NETWORK, subnet="10.99.0.0/16", gateway=None, labels={})
    pods = Pods()
    syncer = make_syncer(runtime, pods, {}, tmp_path)
    pod = pods.add("web")
    await syncer.sync("uid-web")
    pod["spec"]["ephemeralContainers"] = [{"name": "dbg", "image": BUSYBOX, "command": ["ps"],
                                           "targetContainerName": "c"}]
    await syncer.sync("uid-web")
    target = next(c for c in runtime.containers.values()
                  if c.spec.labels.get(labels.CONTAINER_NAME) == "c")
    debugger = next(c for c in runtime.containers.values()
                    if c.spec.labels.get(labels.CONTAINER_NAME) == "dbg")
    assert debugger.state == "running" and debugger.spec.pid_mode == f"container:{target.id}"
    [status] = pod["status"]["ephemeralContainerStatuses"]
    assert "running" in status["state"]
    runtime.exit(debugger.id, 0)
    await syncer.sync("uid-web")
    [status] = pod["status"]["ephemeralContainerStatuses"]
    assert status["state"]["terminated"]["exitCode"] == 0
    await syncer.sync("uid-web")
    assert [c.state for c in runtime.containers.values()
            if c.spec.labels.get(labels.CONTAINER_NAME) == "dbg"] == ["exited"]


def test_an_ephemeral_container_the_engine_would_not_create_is_retried_after_a_back_off(
        ) -> None:
    p, book = debugged(target=None), backoff()
    failed = {"dbg": at(NOW - 1)}
    first = compute_pod_actions(p, state_of(sandbox(), app(p)), backoff=book,
                                failed_creates=failed)
    assert [(s.name, s.retry, s.ephemeral) for s in first.start] == [("dbg", True, True)]
    book.next(backoff_key("u1", "dbg"))
    again = compute_pod_actions(p, state_of(sandbox(), app(p)), backoff=book,
                                failed_creates=failed)
    assert not again.start and again.waiting["dbg"][0] == "CrashLoopBackOff"
