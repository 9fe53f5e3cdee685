"""The pod action plan and the status it leads to, without a runtime."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from agent import labels
from agent.plan import compute_pod_actions, container_backoff
from agent.podstate import PodRuntimeState, group_by_pod
from agent.runtime import ContainerInfo
from agent.status import ProbeView, final_phase, pod_status
from minik.machinery.backoff import Backoff
from minik.machinery.clock import ManualClock

T0 = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
NOW = T0.timestamp() + 100


def pod(restart_policy: str = "Always", *, init: bool = False, memory: str = "") -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "minik/busybox:1.35"}
    if memory:
        container["resources"] = {"limits": {"memory": memory}}
    spec: dict[str, Any] = {"restartPolicy": restart_policy, "containers": [container]}
    if init:
        spec["initContainers"] = [{"name": "setup", "image": "minik/busybox:1.35"}]
    return {"metadata": {"name": "p", "namespace": "default", "uid": "u1"}, "spec": spec,
            "status": {}}


def sandbox(state: str = "running", attempt: int = 0) -> ContainerInfo:
    return ContainerInfo(id=f"sb{attempt}", name="sb", image="minik/pause:1.0", image_id="",
                         labels=labels.sandbox_labels("i", pod(), attempt=attempt), state=state,
                         created_at=T0, started_at=T0, ip_address="10.244.0.2")


def app(p: dict[str, Any], name: str = "app", *, state: str = "running", exit_code: int = 0,
        restarts: int = 0, finished: float = 50, oom: bool = False,
        init: bool = False) -> ContainerInfo:
    spec = next(c for c in p["spec"]["initContainers" if init else "containers"]
                if c["name"] == name)
    return ContainerInfo(
        id=f"{name}{restarts}", name=name, image=spec["image"], image_id="sha256:x",
        labels=labels.container_labels("i", p, name, labels.hash_container(spec), restarts),
        state=state, exit_code=None if state == "running" else exit_code, oom_killed=oom,
        created_at=T0 + dt.timedelta(seconds=restarts + 1), started_at=T0,
        finished_at=None if state == "running" else T0 + dt.timedelta(seconds=finished),
    )


def state_of(*infos: ContainerInfo) -> PodRuntimeState:
    return group_by_pod(infos).get("u1", PodRuntimeState("u1"))


def at(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def backoff() -> Backoff:
    return container_backoff(ManualClock(start=NOW))


def test_a_new_pod_gets_a_sandbox_first() -> None:
    actions = compute_pod_actions(pod(), state_of(), backoff=backoff())
    assert actions.create_sandbox and actions.sandbox_attempt == 0 and not actions.start


def test_with_a_sandbox_the_app_container_starts() -> None:
    actions = compute_pod_actions(pod(), state_of(sandbox()), backoff=backoff())
    assert [(s.name, s.restart_count) for s in actions.start] == [("app", 0)]


def test_init_containers_run_before_app_containers() -> None:
    p = pod(init=True)
    first = compute_pod_actions(p, state_of(sandbox()), backoff=backoff())
    assert [(s.name, s.init) for s in first.start] == [("setup", True)]
    running = compute_pod_actions(p, state_of(sandbox(), app(p, "setup", init=True)),
                                  backoff=backoff())
    assert running.empty
    done = compute_pod_actions(
        p, state_of(sandbox(), app(p, "setup", init=True, state="exited")), backoff=backoff())
    assert [s.name for s in done.start] == ["app"]


def test_a_failed_init_container_fails_the_pod_under_never() -> None:
    p = pod("Never", init=True)
    failed = app(p, "setup", init=True, state="exited", exit_code=1)
    actions = compute_pod_actions(p, state_of(sandbox(), failed), backoff=backoff())
    assert actions.failed and not actions.start


def test_the_first_restart_is_immediate_and_later_ones_back_off() -> None:
    p = pod()
    book = backoff()
    crashed = state_of(sandbox(), app(p, state="exited", exit_code=1, finished=99))
    first = compute_pod_actions(p, crashed, backoff=book)
    assert [(s.name, s.restart_count) for s in first.start] == [("app", 1)]
    book.next("u1/app")
    again = state_of(sandbox(), app(p, state="exited", exit_code=1, restarts=1, finished=99))
    waiting = compute_pod_actions(p, again, backoff=book)
    assert not waiting.start
    reason, message = waiting.waiting["app"]
    assert reason == "CrashLoopBackOff" and message.startswith("back-off 10s")


def test_restart_policy_decides_whether_an_exited_container_runs_again() -> None:
    for policy, code, restarts in (("Never", 1, False), ("OnFailure", 0, False),
                                   ("OnFailure", 2, True), ("Always", 0, True)):
        p = pod(policy)
        actions = compute_pod_actions(
            p, state_of(sandbox(), app(p, state="exited", exit_code=code)), backoff=backoff())
        assert bool(actions.start) is restarts, (policy, code)


def test_a_changed_spec_or_failed_liveness_kills_the_running_container() -> None:
    p = pod()
    running = state_of(sandbox(), app(p))
    assert compute_pod_actions(p, running, backoff=backoff()).empty
    assert compute_pod_actions(p, running, backoff=backoff(), liveness_failed={"app"}).kill
    changed = pod()
    changed["spec"]["containers"][0]["image"] = "minik/busybox:1.36"
    kill = compute_pod_actions(changed, running, backoff=backoff()).kill
    assert [k.name for k in kill] == ["app"] and "definition changed" in kill[0].message


def test_a_dead_sandbox_is_recreated_and_its_containers_killed() -> None:
    p = pod()
    actions = compute_pod_actions(p, state_of(sandbox("exited"), app(p)), backoff=backoff())
    assert actions.create_sandbox and actions.kill_all and actions.sandbox_attempt == 1


def test_a_finished_pod_needs_no_new_sandbox() -> None:
    p = pod("Never")
    done = state_of(sandbox("exited"), app(p, state="exited", exit_code=0))
    assert not compute_pod_actions(p, done, backoff=backoff()).create_sandbox


def test_a_pod_whose_phase_is_terminal_never_runs_again() -> None:
    for policy, phase in (("Never", "Succeeded"), ("OnFailure", "Succeeded"), ("Never", "Failed")):
        p = pod(policy)
        p["status"] = {"phase": phase}
        gone = compute_pod_actions(p, state_of(), backoff=backoff())
        assert gone.empty, (policy, phase)
        exited = state_of(sandbox("exited"), app(p, state="exited", exit_code=1))
        assert compute_pod_actions(p, exited, backoff=backoff()).empty, (policy, phase)
        running = compute_pod_actions(p, state_of(sandbox()), backoff=backoff())
        assert running.kill_all and not running.start and not running.create_sandbox


def test_a_terminal_status_is_kept_when_the_containers_are_gone() -> None:
    p = pod("Never")
    p["status"] = status_of(p, state_of(sandbox("exited"), app(p, state="exited")))
    assert p["status"]["phase"] == "Succeeded"
    assert status_of(p, state_of()) == p["status"]
    assert status_of(p, state_of(sandbox("exited"), app(p, state="exited")))["phase"] == (
        "Succeeded")


def test_old_attempts_beyond_the_last_two_are_removed() -> None:
    p = pod()
    attempts = [app(p, state="exited", exit_code=1, restarts=r) for r in range(4)]
    actions = compute_pod_actions(p, state_of(sandbox(), *attempts), backoff=backoff())
    assert sorted(actions.remove) == ["app0", "app1"]


def test_an_attempt_created_but_never_started_goes_once_a_later_attempt_exists() -> None:
    p = pod("Never")
    stale = dataclasses.replace(app(p, state="created"), exit_code=None, finished_at=None,
                                started_at=None)
    alone = compute_pod_actions(p, state_of(sandbox(), stale), backoff=backoff())
    assert [(s.name, s.restart_count) for s in alone.start] == [("app", 1)]
    assert not alone.remove, "the only attempt stays until the next one exists"
    ran = app(p, state="exited", restarts=1)
    later = compute_pod_actions(p, state_of(sandbox(), ran, stale), backoff=backoff())
    assert later.remove == ["app0"] and not later.start


def status_of(p: dict[str, Any], state: PodRuntimeState, **waiting: tuple[str, str]) -> dict:
    return pod_status(p, state, waiting=waiting, probes=ProbeView(), host_ip="127.0.0.1",
                      now=T0)


def test_status_of_a_running_pod_is_ready_with_its_ip() -> None:
    p = pod()
    status = status_of(p, state_of(sandbox(), app(p)))
    assert status["phase"] == "Running" and status["podIP"] == "10.244.0.2"
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
    assert status["containerStatuses"][0]["containerID"] == "docker://app0"


def test_status_shows_crash_loop_with_last_state_and_restart_count() -> None:
    p = pod()
    crashed = app(p, state="exited", exit_code=1, restarts=2)
    status = status_of(p, state_of(sandbox(), crashed),
                       app=("CrashLoopBackOff", "back-off 20s restarting failed container"))
    c = status["containerStatuses"][0]
    assert c["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert c["lastState"]["terminated"]["exitCode"] == 1 and c["restartCount"] == 2
    assert status["phase"] == "Running"


def test_an_oom_kill_is_reported_with_exit_code_137() -> None:
    p = pod("Never", memory="8Mi")
    status = status_of(p, state_of(sandbox(), app(p, state="exited", exit_code=137)))
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "OOMKilled" and terminated["exitCode"] == 137
    assert status["phase"] == "Failed"


def test_phases_follow_the_containers() -> None:
    p = pod("Never")
    assert status_of(p, state_of())["phase"] == "Pending"
    assert status_of(p, state_of(sandbox(), app(p, state="exited")))["phase"] == "Succeeded"
    waiting = status_of(p, state_of(sandbox()), app=("ErrImagePull", "no"))
    assert waiting["phase"] == "Pending"
    assert waiting["containerStatuses"][0]["state"]["waiting"]["reason"] == "ErrImagePull"


def test_an_unchanged_pod_yields_an_identical_status() -> None:
    p = pod()
    state = state_of(sandbox(), app(p))
    first = status_of(p, state)
    p["status"] = first
    later = pod_status(p, state, waiting={}, probes=ProbeView(), host_ip="127.0.0.1",
                       now=T0 + dt.timedelta(minutes=5))
    assert later == first


def never_started(p: dict[str, Any], *, restarts: int = 0) -> ContainerInfo:
    """What Docker leaves when a start fails (a missing binary): "created", an error, 127."""
    info = app(p, state="created", restarts=restarts)
    return dataclasses.replace(info, exit_code=127, error="exec: no such file", finished_at=None,
                               started_at=None,
                               created_at=at(NOW - 1))


def test_a_container_that_could_not_start_backs_off_like_a_crash() -> None:
    p = pod()
    book = backoff()
    first = compute_pod_actions(p, state_of(sandbox(), never_started(p)), backoff=book)
    assert [(s.name, s.restart_count, s.retry) for s in first.start] == [("app", 1, True)]
    book.next("u1/app")
    again = compute_pod_actions(p, state_of(sandbox(), never_started(p, restarts=1)),
                                backoff=book)
    assert not again.start and again.waiting["app"][0] == "CrashLoopBackOff"


def test_a_container_that_could_not_start_ends_a_pod_that_never_restarts() -> None:
    p = pod("Never")
    state = state_of(sandbox(), never_started(p))
    assert compute_pod_actions(p, state, backoff=backoff()).empty
    status = pod_status(p, state, waiting={}, probes=ProbeView(), host_ip="127.0.0.1",
                        now=T0)
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("StartError", 127)
    assert terminated["message"] == "exec: no such file"
    assert status["phase"] == "Failed"


def test_a_container_the_engine_would_not_create_waits_out_its_back_off() -> None:
    p = pod()
    book = backoff()
    book.next("u1/app")
    waiting = compute_pod_actions(p, state_of(sandbox()), backoff=book,
                                  failed_creates={"app": at(NOW - 5)})
    assert not waiting.start and waiting.waiting["app"][0] == "CrashLoopBackOff"
    later = compute_pod_actions(p, state_of(sandbox()), backoff=book,
                                failed_creates={"app": at(NOW - 11)})
    assert [(s.name, s.restart_count, s.retry) for s in later.start] == [("app", 0, True)]


def test_a_condition_keeps_its_transition_time_even_a_null_one_until_its_status_changes() -> None:
    p = pod()
    state = state_of(sandbox(), app(p))
    p["status"] = {"conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": None},
        {"type": "Initialized", "status": "False", "lastTransitionTime": None},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
    ]}
    since = {c["type"]: c["lastTransitionTime"] for c in status_of(p, state)["conditions"]}
    assert since["Ready"] is None, "the kubelet keeps the old time while the status holds"
    assert since["PodScheduled"] == "2026-01-01T00:00:00Z"
    assert since["Initialized"] == since["ContainersReady"] == "2026-11-24T00:00:00Z"


def test_a_disruption_target_set_by_an_eviction_is_kept_in_the_agent_s_status() -> None:
    p = pod("Never")
    target = {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}
    p["status"] = {"conditions": [{"type": "Ready", "status": "True"}, target]}
    status = status_of(p, state_of(sandbox(), app(p)))
    assert [c["type"] for c in status["conditions"]][-1] == "DisruptionTarget"
    assert status["conditions"][-1] == target


def test_a_deleted_pod_s_final_phase_is_failed_unless_every_container_exited_zero() -> None:
    p = pod("Always")
    killed = status_of(p, state_of(sandbox(), app(p, state="exited", exit_code=137)))
    done = status_of(p, state_of(sandbox(), app(p, state="exited", exit_code=0)))
    assert killed["phase"] == "Running" and final_phase(killed) == "Failed"
    assert final_phase(done) == "Succeeded"
