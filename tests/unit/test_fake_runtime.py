"""FakeRuntime keeps Docker's observable rules; labels identify containers stably."""

from __future__ import annotations

import asyncio
import ipaddress
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from agent import labels
from agent.fake_runtime import FakeRuntime
from agent.runtime import (
    STDOUT,
    ContainerNotFound,
    ContainerSpec,
    ExecResult,
    ExecTimedOut,
    ImageNotFound,
    ImagePullFailed,
    NameInUse,
    NetworkNotFound,
    Runtime,
    RuntimeFailure,
    RuntimeUnavailable,
)
from minik.machinery.clock import ManualClock

POD = {"metadata": {"namespace": "shop", "name": "web-7d9f", "uid": "0f1e2d3c-aaaa-bbbb"}}
PAUSE, BUSYBOX = "minik/pause:1.0", "minik/busybox:1.35"
DOCKER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=datetime(2024, 1, 1, tzinfo=UTC).timestamp())


@pytest.fixture
def fake(clock: ManualClock) -> FakeRuntime:
    return FakeRuntime(images=(PAUSE, BUSYBOX), clock=clock)


def spec(name: str, image: str = BUSYBOX, **fields: object) -> ContainerSpec:
    return ContainerSpec(name=name, image=image, **fields)  # type: ignore[arg-type]


async def run(fake: FakeRuntime, name: str, image: str = BUSYBOX, **fields: object) -> str:
    container_id = await fake.create(spec(name, image, **fields))
    await fake.start(container_id)
    return container_id


# --- labels -----------------------------------------------------------------


def test_sandbox_and_container_labels_name_the_pod() -> None:
    sandbox = labels.sandbox_labels("dev", POD)
    assert sandbox[labels.INSTANCE] == "dev"
    assert (sandbox[labels.POD_NAMESPACE], sandbox[labels.POD_NAME], sandbox[labels.POD_UID]) \
        == ("shop", "web-7d9f", "0f1e2d3c-aaaa-bbbb")
    assert labels.is_sandbox(sandbox) and sandbox[labels.CONTAINER_NAME] == "POD"
    app = labels.container_labels("dev", POD, "nginx", "abc123def456", 3)
    assert not labels.is_sandbox(app)
    assert (app[labels.CONTAINER_NAME], app[labels.CONTAINER_HASH]) == ("nginx", "abc123def456")
    assert labels.restart_count(app) == 3 and labels.attempt(app) == 3
    assert labels.PodRef.from_labels(app) == labels.PodRef.of(POD)
    assert all(k.startswith("minik.dev/") for k in app)


def test_pod_ref_accepts_dicts_models_and_refuses_pods_without_uid() -> None:
    model = SimpleNamespace(metadata=SimpleNamespace(namespace="shop", name="web-7d9f",
                                                     uid="0f1e2d3c-aaaa-bbbb"))
    assert labels.PodRef.of(model) == labels.PodRef.of(POD)
    assert labels.PodRef.from_labels({}) is None
    with pytest.raises(ValueError, match="uid"):
        labels.PodRef.of({"metadata": {"name": "x"}})


def test_restart_count_of_a_garbled_label_is_zero() -> None:
    assert labels.restart_count({labels.RESTART_COUNT: "many"}) == 0
    assert labels.restart_count({}) == 0


def test_container_names_follow_docker_rules() -> None:
    name = labels.container_name_for("dev", POD, "nginx", 2)
    assert name == "minik-dev_web-7d9f_shop_nginx_0f1e2d3c_2"
    assert labels.container_name_for("dev", POD) == "minik-dev_web-7d9f_shop_POD_0f1e2d3c_0"
    odd = labels.container_name_for("my instance", POD, "a/b:c", 0)
    assert DOCKER_NAME.match(odd) and "/" not in odd and " " not in odd


def test_container_hash_is_stable_and_sensitive_to_any_change() -> None:
    container = {"name": "web", "image": "minik/web:v1", "ports": [{"containerPort": 8080}]}
    digest = labels.hash_container(container)
    assert re.fullmatch(r"[0-9a-f]{12}", digest)
    assert labels.hash_container(dict(reversed(container.items()))) == digest
    assert labels.hash_container({**container, "image": "minik/web:v2"}) != digest
    assert labels.hash_container({**container, "env": []}) != digest
    assert labels.hash_container({"name": "web"}) == "447f02909fac"


# --- FakeRuntime ----------------------------------------------------------------


async def test_fake_runtime_satisfies_the_runtime_protocol(fake: FakeRuntime) -> None:
    assert isinstance(fake, Runtime)
    assert await fake.version()


async def test_a_pod_sandbox_gets_an_ip_and_its_containers_join_it(fake: FakeRuntime) -> None:
    net = await fake.ensure_network("minik", subnet="10.88.0.0/16", gateway=None, labels={})
    assert await fake.ensure_network("minik", subnet="10.88.0.0/16", gateway=None,
                                     labels={}) == net
    sandbox = await run(fake, "pod", PAUSE, network_mode="minik")
    app = await run(fake, "app", network_mode=f"container:{sandbox}")
    second = await run(fake, "pod2", PAUSE, network_mode="minik")
    ips = [(await fake.inspect(c)).ip_address for c in (sandbox, app, second)]
    assert ips == ["10.88.0.2", None, "10.88.0.3"]
    assert ipaddress.ip_address(ips[0]) in ipaddress.ip_network(net.subnet)
    with pytest.raises(RuntimeFailure, match="subnet"):
        await fake.ensure_network("minik", subnet="10.99.0.0/16", gateway=None, labels={})


async def test_ids_are_deterministic() -> None:
    first, second = FakeRuntime(images=(BUSYBOX,)), FakeRuntime(images=(BUSYBOX,))
    assert await first.create(spec("a")) == await second.create(spec("a"))


async def test_create_needs_the_image_and_a_known_network(fake: FakeRuntime) -> None:
    with pytest.raises(ImageNotFound):
        await fake.create(spec("x", "minik/absent:1"))
    with pytest.raises(NetworkNotFound):
        await fake.create(spec("x", network_mode="nonet"))
    with pytest.raises(ContainerNotFound):
        await fake.create(spec("x", network_mode="container:nothing"))


async def test_a_container_cannot_join_a_stopped_sandbox(fake: FakeRuntime) -> None:
    sandbox = await fake.create(spec("pod", PAUSE))
    app = await fake.create(spec("app", network_mode=f"container:{sandbox}"))
    with pytest.raises(RuntimeFailure, match="non running"):
        await fake.start(app)


async def test_exits_and_oom_kills_show_in_list_by_label(fake: FakeRuntime,
                                                         clock: ManualClock) -> None:
    crashing = await run(fake, "a", labels={"pod": "1"})
    hog = await run(fake, "b", labels={"pod": "2"})
    clock.advance(5)
    fake.exit(crashing, 7)
    fake.exit(hog, 137, oom=True)
    [a] = await fake.list({"pod": "1"})
    assert (a.id, a.state, a.exit_code, a.oom_killed) == (crashing, "exited", 7, False)
    assert a.finished_at and a.started_at and a.finished_at - a.started_at == timedelta(seconds=5)
    [b] = await fake.list({"pod": "2"})
    assert (b.exit_code, b.oom_killed) == (137, True)
    assert len(await fake.list({})) == 2


async def test_exit_on_start_makes_a_crash_loop(fake: FakeRuntime) -> None:
    fake.add_image("crasher:1")
    fake.exit_on_start("crasher:1", 1)
    container = await run(fake, "c", "crasher:1")
    info = await fake.inspect(container)
    assert (info.state, info.exit_code) == ("exited", 1)


async def test_stop_and_kill_end_a_container_and_are_idempotent(fake: FakeRuntime) -> None:
    stopped, killed = await run(fake, "s"), await run(fake, "k")
    await fake.stop(stopped, timeout=30)
    await fake.stop(stopped, timeout=30)
    await fake.kill(killed, "KILL")
    await fake.kill(killed, "SIGTERM")
    assert (await fake.inspect(stopped)).exit_code == 143
    assert (await fake.inspect(killed)).exit_code == 137
    assert fake.called("stop") == [(stopped, 30, None)] * 2


async def test_remove_absent_is_fine_but_a_running_container_needs_force(
    fake: FakeRuntime,
) -> None:
    container = await run(fake, "r")
    await fake.remove("nothing")
    with pytest.raises(RuntimeFailure):
        await fake.remove(container, force=False)
    await fake.remove(container)
    with pytest.raises(ContainerNotFound):
        await fake.inspect(container)


async def test_names_are_unique_unless_the_holder_is_stale(fake: FakeRuntime) -> None:
    stale = await fake.create(spec("n"))
    fresh = await fake.create(spec("n"))
    assert stale != fresh and [c.id for c in await fake.list({})] == [fresh]
    await fake.start(fresh)
    with pytest.raises(NameInUse) as caught:
        await fake.create(spec("n"))
    assert caught.value.container_id == fresh


async def test_pull_outcomes(fake: FakeRuntime) -> None:
    fake.pullable.add("minik/new:1")
    fake.pull_errors["minik/bad:1"] = "manifest unknown"
    assert await fake.image("minik/new:1") is None
    assert (await fake.pull("minik/new:1")).tags == ["minik/new:1"]
    assert await fake.image("minik/new:1") is not None
    with pytest.raises(ImagePullFailed, match="manifest unknown"):
        await fake.pull("minik/bad:1")
    with pytest.raises(ImagePullFailed):
        await fake.pull("127.0.0.1:5999/nothing:1")


async def test_injected_failures_and_an_unavailable_engine(fake: FakeRuntime) -> None:
    container = await fake.create(spec("f"))
    fake.fail("start", RuntimeFailure("port is already allocated"))
    with pytest.raises(RuntimeFailure, match="already allocated"):
        await fake.start(container)
    await fake.start(container)
    fake.available = False
    with pytest.raises(RuntimeUnavailable):
        await fake.list({})
    assert [c.method for c in fake.calls].count("start") == 2


async def test_logs_tail_timestamps_and_follow(fake: FakeRuntime,
                                               clock: ManualClock) -> None:
    container = await run(fake, "l")
    fake.write_log(container, b"one\n")
    clock.advance(1)
    fake.write_log(container, b"two\n")
    assert [c async for c in fake.logs(container)] == [b"one\n", b"two\n"]
    assert [c async for c in fake.logs(container, tail=1)] == [b"two\n"]
    assert [c async for c in fake.logs(container, since=clock.wall())] == [b"two\n"]
    [stamped] = [c async for c in fake.logs(container, tail=1, timestamps=True)]
    assert stamped == b"2024-01-01T00:00:01.000000Z two\n"

    follower = fake.logs(container, follow=True, tail=1)
    assert await anext(follower) == b"two\n"
    later = asyncio.ensure_future(anext(follower))
    fake.write_log(container, b"three\n")
    assert await asyncio.wait_for(later, 1) == b"three\n"
    fake.exit(container, 0)
    assert [c async for c in follower] == []


async def test_exec_echoes_stdin_and_scripted_commands(fake: FakeRuntime) -> None:
    container = await run(fake, "e")
    session = await fake.exec(container, ["cat"], stdin=True, tty=True)
    await session.resize(80, 24)
    await session.write_stdin(b"hi\n")
    await session.close_stdin()
    assert await session.read() == (STDOUT, b"hi\n")
    assert await session.read() is None
    assert await session.wait() == 0
    fake.on_exec(["sh", "-c", "exit 3"], ExecResult(3, b""))
    fake.on_exec(["slow"], ExecTimedOut("slow did not finish"))
    assert (await fake.exec_run(container, ["sh", "-c", "exit 3"], timeout=1)).exit_code == 3
    with pytest.raises(ExecTimedOut):
        await fake.exec_run(container, ["slow"], timeout=1)
    fake.exit(container, 0)
    with pytest.raises(RuntimeFailure, match="not running"):
        await fake.exec_run(container, ["true"], timeout=1)


async def test_stats_and_networks_in_use(fake: FakeRuntime) -> None:
    await fake.ensure_network("minik", subnet="10.88.0.0/16", gateway="10.88.0.1", labels={})
    container = await run(fake, "s", PAUSE, network_mode="minik")
    fake.set_stats(container, cpu_usage_ns=5, memory_bytes=4096)
    stats = await fake.stats(container)
    assert (stats.cpu_usage_ns, stats.memory_working_set_bytes) == (5, 4096)
    with pytest.raises(RuntimeFailure, match="active endpoints"):
        await fake.remove_network("minik")
    await fake.remove(container)
    await fake.remove_network("minik")
    await fake.remove_network("minik")
