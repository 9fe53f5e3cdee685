"""Opening host paths component by component, what a bind of them exposes, and staging.

The staging tests bind-mount for real and skip where that is not allowed
(not root).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.host_paths import (
    Exposed,
    PathError,
    open_beneath,
    open_host_path,
    open_host_path_volume,
)
from agent.mounts import mount_points_under
from agent.protected import Protected
from agent.staging import Staging, StagingError


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Path]:
    """A unix socket that the tests treat as the engine's (the real one is never used)."""
    path = tmp_path / "engine" / "docker.sock"
    path.parent.mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    yield path
    sock.close()


@pytest.fixture
def protected(engine: Path, tmp_path: Path) -> Protected:
    (tmp_path / "home" / "agent").mkdir(parents=True)
    return Protected({engine: "the Docker socket", tmp_path / "home": "minik's home"})


@contextlib.contextmanager
def flipping(link: Path, targets: list[str], *, every: float = 0.0) -> Iterator[None]:
    """While in the block, a thread points `link` at each target in turn, atomically
    (a new link renamed over it), every `every` seconds (0: as fast as it can)."""
    stop = threading.Event()
    spare = link.with_name(link.name + ".new")

    def flip() -> None:
        while not stop.is_set():
            for target in targets:
                os.symlink(target, spare)
                os.replace(spare, link)
                stop.wait(every)

    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    try:
        yield
    finally:
        stop.set()
        flipper.join()


def exposed(protected: Protected, path: Path | str) -> str | None:
    with open_host_path(str(path)) as opened:
        return protected.exposed_by(opened)


def test_a_path_is_opened_through_its_links_where_the_kernel_would_go(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f").write_text("x")
    os.symlink("a/b", tmp_path / "rel")
    os.symlink(str(tmp_path / "a"), tmp_path / "abs")
    os.symlink("../b/f", tmp_path / "a" / "b" / "up")
    for path in ("rel/f", "abs/b/f", "a/b/up", "a/./b/../b/f", "abs/b/up"):
        with open_host_path(f"{tmp_path}/{path}") as opened:
            assert opened.path == str(tmp_path / "a" / "b" / "f"), path
            assert os.path.samefile(f"/proc/self/fd/{opened.fd}", tmp_path / "a" / "b" / "f")


def test_a_link_loop_a_missing_path_and_a_file_in_the_middle_are_errors(tmp_path: Path) -> None:
    os.symlink("loop-b", tmp_path / "loop-a")
    os.symlink("loop-a", tmp_path / "loop-b")
    (tmp_path / "file").write_text("x")
    with pytest.raises(PathError, match="Too many levels of symbolic links"):
        open_host_path(str(tmp_path / "loop-a"))
    with pytest.raises(PathError, match="No such file or directory"):
        open_host_path(str(tmp_path / "missing"))
    with pytest.raises(PathError, match="Not a directory"):
        open_host_path(str(tmp_path / "file" / "x"))
    with pytest.raises(PathError, match="not an absolute path"):
        open_host_path("relative/path")


def test_or_create_types_create_through_the_walk_with_the_kubelets_modes(tmp_path: Path) -> None:
    with open_host_path_volume(str(tmp_path / "d1" / "d2"), "DirectoryOrCreate",
                               create=True) as opened:
        assert opened.is_dir
    assert (tmp_path / "d1").stat().st_mode & 0o777 == 0o755
    with open_host_path_volume(str(tmp_path / "d1" / "f"), "FileOrCreate", create=True):
        pass
    assert (tmp_path / "d1" / "f").stat().st_mode & 0o777 == 0o644
    with pytest.raises(PathError, match=f"cannot create {tmp_path}/no/f"):
        open_host_path_volume(str(tmp_path / "no" / "f"), "FileOrCreate", create=True)
    with pytest.raises(PathError, match="is not a directory"):
        open_host_path_volume(str(tmp_path / "none"), "DirectoryOrCreate", create=False)
    with pytest.raises(PathError, match="is not a socket file"):
        open_host_path_volume(str(tmp_path / "d1" / "f"), "Socket", create=True)


def test_beneath_a_volume_links_are_followed_but_never_out_of_it(tmp_path: Path) -> None:
    volume = tmp_path / "vol"
    (volume / "real").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    os.symlink("real", volume / "rel")
    os.symlink(str(volume / "real"), volume / "abs-in")
    os.symlink("../vol/real", volume / "out-and-back")
    os.symlink("../outside", volume / "escape")
    os.symlink(str(tmp_path / "outside"), volume / "abs-out")
    os.symlink("/", volume / "root")
    with open_host_path(str(volume)) as top:
        for sub in ("rel", "abs-in", "out-and-back", "real/.."):
            with open_beneath(top, sub) as opened:
                assert opened.path in (str(volume / "real"), str(volume)), sub
        for sub in ("escape", "abs-out", "root", "root/run", "real/../.."):
            with pytest.raises(PathError, match="resolves outside the volume"):
                open_beneath(top, sub)


def test_missing_directories_are_made_only_inside_the_volume(tmp_path: Path) -> None:
    volume = tmp_path / "vol"
    volume.mkdir()
    (tmp_path / "outside").mkdir()
    os.symlink("../outside", volume / "escape")
    with open_host_path(str(volume)) as top:
        with open_beneath(top, "a/b", dir_mode=0o750) as made:
            assert made.path == str(volume / "a" / "b")
        assert (volume / "a").stat().st_mode & 0o777 == 0o750
        with pytest.raises(PathError, match="does not exist"):
            open_beneath(top, "escape/new", dir_mode=0o777)
        with pytest.raises(PathError, match="does not exist"):
            open_beneath(top, "c")
    assert not (tmp_path / "outside" / "new").exists() and not (volume / "c").exists()


def test_the_socket_a_directory_above_it_and_the_home_are_exposed(
        protected: Protected, engine: Path, tmp_path: Path) -> None:
    os.symlink(str(engine.parent), tmp_path / "link")
    os.link(engine, tmp_path / "hard.sock")
    (tmp_path / "harmless").mkdir()
    assert exposed(protected, engine) == "the Docker socket"
    assert exposed(protected, engine.parent) == "the Docker socket"
    assert exposed(protected, tmp_path / "link") == "the Docker socket"
    assert exposed(protected, tmp_path / "link" / "docker.sock") == "the Docker socket"
    assert exposed(protected, tmp_path / "hard.sock") == "the Docker socket"
    assert exposed(protected, "/") == "the Docker socket"
    assert exposed(protected, tmp_path / "home" / "agent") == "minik's home"
    assert exposed(protected, tmp_path / "harmless") is None


@pytest.fixture
def staging(tmp_path: Path) -> Iterator[Staging]:
    pods = tmp_path / "pods"
    stage = Staging(pods)
    probe = tmp_path / "probe"
    probe.mkdir()
    with open_host_path(str(probe)) as opened:
        try:
            stage.stage("probe", "c", 0, opened)
        except StagingError:
            pytest.skip("cannot bind-mount here (not root?)")
    stage.unstage("probe")
    yield stage
    for uid in stage.pods():
        stage.unstage(uid)


def test_a_staged_mount_is_what_was_opened_whatever_the_path_becomes(
        staging: Staging, tmp_path: Path, engine: Path) -> None:
    harmless = tmp_path / "harmless"
    harmless.mkdir()
    (harmless / "note").write_text("harmless")
    link = tmp_path / "link"
    os.symlink(str(harmless), link)
    with open_host_path(str(link)) as opened:
        os.unlink(link)
        os.symlink(str(engine.parent), link)
        staged = staging.stage("pod", "c", 0, opened)
    assert os.listdir(staged) == ["note"]
    assert staged in mount_points_under(tmp_path / "pods")
    assert os.stat(tmp_path / "pods" / "pod" / "staged").st_mode & 0o777 == 0o700


def test_staging_again_keeps_the_same_file_and_replaces_another(
        staging: Staging, tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two.txt").write_text("two")
    with open_host_path(str(tmp_path / "one")) as opened:
        first = staging.stage("pod", "c", 0, opened)
        assert staging.stage("pod", "c", 0, opened) == first
    assert len(mount_points_under(first)) == 1
    with open_host_path(str(tmp_path / "two.txt")) as opened:
        again = staging.stage("pod", "c", 0, opened)
    assert again == first and Path(again).read_text() == "two"
    assert len(mount_points_under(again)) == 1


def test_pinning_refuses_what_exposes_a_protected_path_and_binds_nothing(
        staging: Staging, tmp_path: Path, protected: Protected, engine: Path) -> None:
    volume = tmp_path / "vol"
    volume.mkdir()
    os.symlink(str(engine.parent), volume / "to-engine")
    with open_host_path(str(engine.parent)) as top, pytest.raises(Exposed) as info:
        staging.pin("pod", "c", 0, top, protected=protected)
    assert info.value.what == "the Docker socket"
    with open_host_path(str(tmp_path)) as top, pytest.raises(Exposed):
        staging.pin("pod", "c", 1, top, "vol/to-engine", protected=protected)
    assert not mount_points_under(tmp_path / "pods")


def test_unstaging_unmounts_and_leaves_the_host_files_alone(
        staging: Staging, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "precious").write_text("keep me")
    (data / "file").write_text("keep me too")
    with open_host_path(str(data)) as opened:
        staging.stage("pod", "a", 0, opened)
    with open_host_path(str(data / "file")) as opened:
        staging.stage("pod", "b", 3, opened)
    assert Staging(tmp_path / "pods").pods() == {"pod"}, "found again after a restart"
    assert Staging(tmp_path / "pods").unstage("pod")
    assert not mount_points_under(tmp_path / "pods")
    assert not (tmp_path / "pods" / "pod" / "staged").exists()
    assert (data / "sub" / "precious").read_text() == "keep me"
    assert (data / "file").read_text() == "keep me too"


def test_a_link_flipped_to_the_socket_while_pods_stage_never_binds_the_socket(
        staging: Staging, tmp_path: Path, protected: Protected, engine: Path) -> None:
    harmless = tmp_path / "harmless"
    harmless.mkdir()
    link = tmp_path / "link"
    os.symlink(str(harmless), link)
    outcomes = {"refused": 0, "staged": 0}
    with flipping(link, [str(engine.parent), str(harmless)]):
        for attempt in range(2000):
            if attempt >= 200 and all(outcomes.values()):
                break
            try:
                with open_host_path(str(link)) as top:
                    staged = staging.pin("pod", "c", attempt, top, protected=protected)
            except Exposed:
                outcomes["refused"] += 1
                continue
            outcomes["staged"] += 1
            assert os.listdir(staged) == [], "the staged mount is the harmless directory"
    assert outcomes["refused"] and outcomes["staged"], outcomes


def test_a_link_that_cannot_be_read_leaks_no_descriptor(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As /proc/2/exe (a kernel thread's) does: readlink fails on the opened link."""
    os.symlink("target", tmp_path / "link")

    def unreadable(path: str, *, dir_fd: int | None = None) -> str:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)

    monkeypatch.setattr(os, "readlink", unreadable)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        with pytest.raises(PathError, match="No such file or directory"):
            open_host_path(str(tmp_path / "link" / "x"))
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_file_swapped_while_it_is_created_is_neither_chmodded_nor_used(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    victim = tmp_path / "victim"
    victim.write_text("not yours")
    victim.chmod(0o600)
    created = tmp_path / "new"
    real_open = os.open

    def swapping_open(path: Any, flags: int, mode: int = 0o777, *,
                      dir_fd: int | None = None) -> int:
        fd = real_open(path, flags, mode, dir_fd=dir_fd)
        if flags & os.O_CREAT:
            os.unlink(created)
            os.link(victim, created)
        return fd

    monkeypatch.setattr(os, "open", swapping_open)
    with pytest.raises(PathError, match="replaced while it was being created"):
        open_host_path_volume(str(created), "FileOrCreate", create=True)
    monkeypatch.undo()
    assert victim.stat().st_mode & 0o7777 == 0o600


def test_nothing_is_created_inside_a_protected_path(
        protected: Protected, tmp_path: Path) -> None:
    home = tmp_path / "home"
    for path, kind in ((home / "purge-requested", "FileOrCreate"),
                       (home / "store.db", "DirectoryOrCreate"),
                       (home / "new" / "deep", "DirectoryOrCreate")):
        with pytest.raises(PathError, match="creating inside minik's home requires a "
                                            "privileged container"):
            open_host_path_volume(str(path), kind, create=True, protected=protected)
        assert not path.exists() and not (home / "new").exists()
    with open_host_path(str(tmp_path)) as top, pytest.raises(
            PathError, match="cannot be created: creating inside minik's home"):
        open_beneath(top, "home/agent/made", dir_mode=0o755, protected=protected)
    assert not (home / "agent" / "made").exists()
    with open_host_path_volume(str(tmp_path / "beside" / "dir"), "DirectoryOrCreate",
                               create=True, protected=protected):
        pass


def started_as_server(pid: int, timeout: float = 10.0) -> None:
    """Wait until `pid` has exec'd its command line: just after the fork it is still pytest's."""
    deadline = time.monotonic() + timeout
    while b"minik.server" not in Path(f"/proc/{pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline, f"process {pid} never showed its command line"
        time.sleep(0.01)


def test_on_a_node_the_engines_state_and_minik_homes_are_protected_but_proc_sys_dev_are_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = Protected.for_node()
    for path in ("/proc", "/sys", "/dev", "/dev/null", "/proc/self/status"):
        assert exposed(node, path) is None, path
    for path in ("/var/lib/docker", "/run/docker", "/run/containerd"):
        if os.path.exists(path):
            assert exposed(node, path) == "the container engine's state", path
    default, running = tmp_path / "default-home", tmp_path / "running-home"
    for home in (default, running):
        (home / "agent").mkdir(parents=True)
    monkeypatch.setenv("MINIK_HOME", str(default))
    server = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()",
                               "minik.server", "--home", str(running)],
                              stdin=subprocess.PIPE)
    try:
        started_as_server(server.pid)
        for home in (default, running):
            assert exposed(node, home / "agent") == "another minik's home"
        assert exposed(node.with_paths({running: "minik's home"}), running) == "minik's home"
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait()
    assert exposed(Protected.for_node(), running) is None
