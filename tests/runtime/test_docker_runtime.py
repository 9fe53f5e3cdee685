"""DockerRuntime against the real engine: each test labels what it makes and removes it."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from agent import labels
from agent.docker_runtime import DockerRuntime
from agent.runtime import (
    STDERR,
    STDOUT,
    BindMount,
    ContainerInfo,
    ContainerNotFound,
    ContainerSpec,
    ExecTimedOut,
    ImageNotFound,
    ImagePullFailed,
    NameInUse,
    Runtime,
    RuntimeFailure,
    RuntimeUnavailable,
    TmpfsMount,
)
from tests.runtime.conftest import Engine, eventually

BUSYBOX = "minik/busybox:1.35"
STAMP = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z ")


async def exited(engine: Engine, container_id: str) -> ContainerInfo | None:
    info = await engine.runtime.inspect(container_id)
    return info if info.state == "exited" else None


async def test_docker_runtime_satisfies_the_runtime_protocol(engine: Engine) -> None:
    assert isinstance(engine.runtime, Runtime)
    assert re.match(r"\d+\.\d+", await engine.runtime.version())


async def test_the_engine_says_where_it_keeps_its_state_and_which_process_it_is(
        engine: Engine) -> None:
    info = await engine.runtime.engine()
    shown = subprocess.run(["docker", "info", "--format", "{{.DockerRootDir}}"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert info.root_dir == shown
    assert info.pid is not None
    assert os.readlink(f"/proc/{info.pid}/ns/mnt").startswith("mnt:")


async def test_an_unreachable_engine_raises_runtime_unavailable(tmp_path: Path) -> None:
    runtime = DockerRuntime(f"unix://{tmp_path}/missing.sock", timeout=2)
    try:
        with pytest.raises(RuntimeUnavailable):
            await runtime.version()
        with pytest.raises(RuntimeUnavailable):
            await runtime.list({})
    finally:
        await runtime.close()


async def test_a_network_is_created_reused_and_removed(engine: Engine) -> None:
    net = await engine.network()
    again = await engine.runtime.ensure_network(net.name, subnet=net.subnet, gateway=None,
                                                labels=engine.selector)
    assert again == net
    assert net.gateway and ipaddress.ip_address(net.gateway) in ipaddress.ip_network(net.subnet)
    with pytest.raises(RuntimeFailure, match="exists with subnet"):
        await engine.runtime.ensure_network(net.name, subnet="10.199.254.0/24", gateway=None,
                                            labels=engine.selector)
    await engine.runtime.remove_network(net.name)
    await engine.runtime.remove_network(net.name)


async def test_pod_containers_share_localhost_and_the_sandbox_has_a_pod_ip(
    engine: Engine,
) -> None:
    net = await engine.network()
    sandbox = await engine.run("pause", "minik/pause:1.0", network_mode=net.name,
                               hostname="web-pod")
    joined = f"container:{sandbox}"
    await engine.run("web", "minik/web:v1", network_mode=joined)
    client = await engine.run("client", args=["sleep", "300"], network_mode=joined)

    info = await engine.runtime.inspect(sandbox)
    assert info.state == "running" and info.pid
    assert info.ip_address and ipaddress.ip_address(info.ip_address) in ipaddress.ip_network(
        net.subnet)

    async def fetch() -> bytes | None:
        result = await engine.runtime.exec_run(
            client, ["timeout", "5", "wget", "-q", "-O-", "http://localhost:8080/"], timeout=10)
        return result.output if result.exit_code == 0 else None

    assert await eventually(fetch, what="httpd on localhost") == b"v1\n"
    hostname = await engine.runtime.exec_run(client, ["hostname"], timeout=5)
    assert hostname.output == b"web-pod\n"


async def test_list_filters_by_labels_and_reports_exit_codes(engine: Engine) -> None:
    crashed = await engine.run("crash", args=["sh", "-c", "exit 7"], labels={"role": "a"})
    running = await engine.run("sleep", args=["sleep", "300"], labels={"role": "b"})

    async def crash_seen() -> list[ContainerInfo] | None:
        infos = await engine.runtime.list({**engine.selector, "role": "a"})
        return infos if infos and infos[0].state == "exited" else None

    [info] = await eventually(crash_seen, what="the crash in list()")
    assert (info.id, info.exit_code, info.oom_killed) == (crashed, 7, False)
    # Docker may stamp StartedAt after a fast exit's FinishedAt; both are reported as given.
    assert info.finished_at and info.started_at
    everything = {i.id: i for i in await engine.runtime.list(engine.selector)}
    assert set(everything) == {crashed, running}
    assert everything[running].state == "running" and everything[running].exit_code is None
    assert everything[crashed] == info


async def test_a_memory_hog_is_oom_killed_with_exit_code_137(engine: Engine) -> None:
    hog = "x=$(head -c 64m /dev/zero | tr '\\0' a); sleep 1"
    container = await engine.run("hog", args=["sh", "-c", hog], memory_limit=8 << 20)
    info = await eventually(lambda: exited(engine, container), what="the OOM kill")
    assert info.exit_code == 137
    listed = await engine.runtime.list(engine.selector)
    assert [(i.exit_code, i.oom_killed) for i in listed] == [(137, info.oom_killed)]
    # Some kernels lose the flag (moby#38352); exit code 137 is what we trust.
    assert info.oom_killed or info.exit_code == 137


async def test_stop_kills_a_container_that_ignores_sigterm_after_the_timeout(
    engine: Engine,
) -> None:
    stubborn = await engine.run("stubborn", args=["sleep", "300"])
    started = time.monotonic()
    await engine.runtime.stop(stubborn, timeout=1)
    elapsed = time.monotonic() - started
    info = await engine.runtime.inspect(stubborn)
    assert (info.state, info.exit_code) == ("exited", 137)
    assert 0.9 <= elapsed < 5
    await engine.runtime.stop(stubborn, timeout=1)
    await engine.runtime.kill(stubborn)


async def test_stop_with_a_custom_signal_then_sigkill(engine: Engine) -> None:
    polite = await engine.run("polite", "minik/web:v1")
    stubborn = await engine.run("stubborn", args=["sleep", "300"])
    started = time.monotonic()
    await engine.runtime.stop(polite, timeout=10, signal="SIGINT")
    assert time.monotonic() - started < 5
    assert (await engine.runtime.inspect(polite)).exit_code == 0
    await engine.runtime.stop(stubborn, timeout=0.5, signal="SIGUSR1")
    assert (await engine.runtime.inspect(stubborn)).exit_code == 137


async def test_logs_with_tail_timestamps_and_follow(engine: Engine) -> None:
    script = "echo one; echo two >&2; read x; echo three"
    container = await engine.run("talker", args=["sh", "-c", script], stdin_open=True)

    async def two_lines() -> bytes | None:
        data = b"".join([c async for c in engine.runtime.logs(container)])
        return data if data.count(b"\n") >= 2 else None

    assert sorted((await eventually(two_lines)).splitlines()) == [b"one", b"two"]
    tail = b"".join([c async for c in engine.runtime.logs(container, tail=1)])
    assert tail.count(b"\n") == 1
    stamped = b"".join([c async for c in engine.runtime.logs(container, timestamps=True)])
    assert all(STAMP.match(line) for line in stamped.splitlines())

    collected: list[bytes] = []

    async def follow() -> None:
        async for chunk in engine.runtime.logs(container, follow=True):
            collected.append(chunk)

    follower = asyncio.create_task(follow())
    await engine.runtime.exec_run(container, ["sh", "-c", "echo three > /proc/1/fd/1"],
                                  timeout=5)

    async def has_three() -> bool:
        return b"three" in b"".join(collected)

    await eventually(has_three, what="a followed line")
    await engine.runtime.kill(container)
    async with asyncio.timeout(10):
        await follower
    assert sorted(b"".join(collected).splitlines()) == [b"one", b"three", b"two"]


async def test_follow_ends_when_the_container_stops(engine: Engine) -> None:
    container = await engine.run("counter", args=["sh", "-c", "echo a; sleep 1; echo b"])
    async with asyncio.timeout(10):
        data = b"".join([c async for c in engine.runtime.logs(container, follow=True)])
    assert data == b"a\nb\n"


async def test_a_consumer_that_stops_following_releases_the_stream(engine: Engine) -> None:
    container = await engine.run("chatty", args=["sh", "-c", "echo hi; sleep 300"])
    follower = engine.runtime.logs(container, follow=True)
    async with asyncio.timeout(10):
        assert await anext(follower) == b"hi\n"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(follower), 0.3)
        await follower.aclose()
    assert not engine.runtime._client.open


async def test_exec_echoes_stdin_separates_stderr_and_propagates_exit_codes(
    engine: Engine,
) -> None:
    container = await engine.run("box", args=["sleep", "300"])
    session = await engine.runtime.exec(container, ["cat"], stdin=True, tty=False)
    await session.write_stdin(b"hello\n")
    assert await session.read() == (STDOUT, b"hello\n")
    await session.close_stdin()
    assert await session.read() is None
    assert await session.wait() == 0
    await session.close()

    session = await engine.runtime.exec(container, ["sh", "-c", "echo out; echo err >&2; exit 3"],
                                        stdin=False, tty=False)
    frames = []
    while (frame := await session.read()) is not None:
        frames.append(frame)
    assert sorted(frames) == [(STDOUT, b"out\n"), (STDERR, b"err\n")]
    assert await session.wait() == 3
    await session.close()
    result = await engine.runtime.exec_run(container, ["sh", "-c", "exit 3"], timeout=5)
    assert (result.exit_code, result.output) == (3, b"")


async def test_a_tty_exec_can_be_resized(engine: Engine) -> None:
    container = await engine.run("tty", args=["sleep", "300"])
    session = await engine.runtime.exec(container, ["sh"], stdin=True, tty=True)
    await session.resize(120, 40)
    await session.write_stdin(b"stty size; exit 5\n")
    output = b""
    async with asyncio.timeout(10):
        while (frame := await session.read()) is not None:
            assert frame[0] == STDOUT
            output += frame[1]
    assert b"40 120" in output
    assert await session.wait() == 5
    await session.close()


async def test_exec_run_timeout_kills_the_command(engine: Engine) -> None:
    container = await engine.run("box", args=["sleep", "300"])
    started = time.monotonic()
    with pytest.raises(ExecTimedOut):
        await engine.runtime.exec_run(container, ["sleep", "123"], timeout=0.5)
    assert time.monotonic() - started < 3

    async def gone() -> bool:
        ps = await engine.runtime.exec_run(container, ["ps"], timeout=5)
        return b"sleep 123" not in ps.output

    await eventually(gone, what="the timed-out exec to be killed")


async def test_spec_fields_reach_the_container(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("from host\n")
    tmp_path.chmod(0o755)
    container = await engine.run(
        "spec", args=["sleep", "300"], env={"B": "2", "A": "1"}, working_dir="/tmp",
        user="1000:1000", extra_hosts={"db.local": "10.9.9.9"},
        mounts=[BindMount(str(tmp_path), "/data", read_only=True),
                TmpfsMount("/scratch", size_bytes=1 << 20)])
    script = ("id -u; pwd; echo $B$A; cat /data/f; touch /data/x 2>/dev/null || echo ro; "
              "touch /scratch/ok && echo tmpfs; grep db.local /etc/hosts | cut -f1")
    result = await engine.runtime.exec_run(container, ["sh", "-c", script], timeout=5)
    assert result.output.decode().split() == [
        "1000", "/tmp", "21", "from", "host", "ro", "tmpfs", "10.9.9.9"]


async def test_images_present_absent_and_unpullable(engine: Engine) -> None:
    image = await engine.runtime.image("minik/web:v1")
    assert image and "minik/web:v1" in image.tags and image.id.startswith("sha256:")
    assert image.config.exposed_ports == ["8080/tcp"] and image.config.env["VERSION"] == "v1"
    assert await engine.runtime.image("minik/absent:0") is None
    with pytest.raises(ImageNotFound):
        await engine.runtime.create(engine.spec("ghost", "minik/absent:0"))
    started = time.monotonic()
    with pytest.raises(ImagePullFailed, match=re.escape("127.0.0.1:5999")):
        await engine.runtime.pull("127.0.0.1:5999/nothing:1")
    assert time.monotonic() - started < 10


async def test_missing_containers(engine: Engine) -> None:
    with pytest.raises(ContainerNotFound):
        await engine.runtime.inspect("minik-no-such-container")
    with pytest.raises(ContainerNotFound):
        await engine.runtime.start("minik-no-such-container")
    await engine.runtime.remove("minik-no-such-container")


async def test_a_stale_name_is_reclaimed_but_a_running_one_is_not(engine: Engine) -> None:
    stale = await engine.runtime.create(engine.spec("named", args=["true"]))
    fresh = await engine.runtime.create(engine.spec("named", args=["true"]))
    assert fresh != stale
    with pytest.raises(ContainerNotFound):
        await engine.runtime.inspect(stale)
    await engine.runtime.start(fresh)
    await engine.runtime.remove(fresh)
    running = await engine.run("busy", args=["sleep", "300"])
    with pytest.raises(NameInUse) as caught:
        await engine.runtime.create(engine.spec("busy"))
    assert caught.value.container_id == running


async def test_stats_of_a_running_container(engine: Engine) -> None:
    container = await engine.run("stats", args=["sleep", "300"])
    stats = await engine.runtime.stats(container)
    assert stats.memory_working_set_bytes > 0 and stats.cpu_usage_ns > 0
    assert stats.memory_usage_bytes >= stats.memory_working_set_bytes
    assert stats.memory_rss_bytes > 0


async def test_stats_of_a_container_with_its_own_network_count_its_interfaces(
        engine: Engine) -> None:
    container = await engine.run("netstats", args=["sleep", "300"])
    stats = await engine.runtime.stats(container)
    assert [i.name for i in stats.interfaces] == ["eth0"]


async def behind_its_back(verb: str, container_id: str) -> None:
    """A docker CLI command, as a user would type it: the runtime's cache knows nothing."""
    process = await asyncio.create_subprocess_exec(
        "/usr/bin/docker", verb, container_id, stdout=asyncio.subprocess.DEVNULL)
    assert await asyncio.wait_for(process.wait(), 30) == 0


async def test_container_events_name_the_instances_containers_that_die_or_go(
        engine: Engine) -> None:
    seen: list[str] = []
    listed_after: dict[str, str | None] = {}

    async def follow() -> None:
        async for container_id in engine.runtime.container_events(engine.selector):
            infos = await engine.runtime.list(engine.selector)
            listed_after[container_id] = next(
                (i.state for i in infos if i.id == container_id), None)
            seen.append(container_id)

    follower = asyncio.create_task(follow())
    stranger = ""
    try:
        pings = 0
        async with asyncio.timeout(20):
            while not seen:  # the subscription is live once a ping is seen
                ping = await engine.run(f"ping-{pings}", args=["sleep", "300"])
                await engine.runtime.remove(ping, force=True)
                pings += 1
                await asyncio.sleep(0.2)
        stranger = await engine.runtime.create(ContainerSpec(
            name=f"{engine.instance}-stranger", image="minik/busybox:1.35",
            labels={labels.INSTANCE: f"{engine.instance}-other"}, args=["sleep", "300"]))
        target = await engine.run("target", args=["sleep", "300"])
        assert {i.id: i.state for i in await engine.runtime.list(engine.selector)}[target] == (
            "running")
        seen.clear()
        await engine.runtime.start(stranger)
        await engine.runtime.kill(stranger)
        await engine.runtime.remove(stranger, force=True)
        await behind_its_back("kill", target)
        async with asyncio.timeout(10):
            while target not in seen:
                await asyncio.sleep(0.05)
        assert listed_after[target] == "exited", "a list right after the event used the cache"
        await engine.runtime.remove(target, force=True)
        async with asyncio.timeout(10):
            while seen.count(target) < 2:
                await asyncio.sleep(0.05)
        assert stranger not in seen
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        if stranger:
            await engine.runtime.remove(stranger, force=True)
    assert not engine.runtime._client.open
