"""DockerExecSession over a socket pair, with the engine's side of the exec faked: the
session needs nothing of the runtime but the `ExecEngine` calls."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from agent.docker_exec import DockerAttachSession, DockerExecSession, OpenStreams
from agent.runtime import STDERR, STDOUT


class Engine:
    """An exec whose process runs until `exit_code` is set."""

    def __init__(self) -> None:
        self.exit_code: int | None = None
        self.polls = 0
        self.resized: list[tuple[int, int]] = []
        self.killed: list[str] = []

    async def exec_resize(self, exec_id: str, *, width: int, height: int) -> None:
        self.resized.append((width, height))

    async def exec_exit_code(self, exec_id: str) -> int | None:
        self.polls += 1
        if self.polls == 3:
            self.exit_code = 7
        return self.exit_code

    async def exec_kill(self, exec_id: str) -> None:
        self.killed.append(exec_id)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    yield ours, theirs
    ours.close()
    theirs.close()


def frame(stream: int, payload: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


def session(engine: Engine, sock: socket.socket, streams: OpenStreams, released: list[bool],
            *, tty: bool = False) -> DockerExecSession:
    return DockerExecSession(engine, "exec-1", sock, tty=tty, open_streams=streams,
                             release=lambda: released.append(True))


async def test_frames_are_split_into_stdout_and_stderr_until_the_socket_ends(
        pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    exec_session = session(Engine(), ours, set(), [])
    theirs.sendall(frame(STDOUT, b"out\n") + frame(STDERR, b"err\n")[:5])
    theirs.sendall(frame(STDERR, b"err\n")[5:] + frame(STDOUT, b""))
    theirs.shutdown(socket.SHUT_WR)
    assert await exec_session.read() == (STDOUT, b"out\n")
    assert await exec_session.read() == (STDERR, b"err\n")
    assert await exec_session.read() is None


async def test_stdin_reaches_the_process_and_closing_it_ends_the_input(
        pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    exec_session = session(Engine(), ours, set(), [], tty=True)
    await exec_session.write_stdin(b"hello")
    await exec_session.close_stdin()
    assert theirs.recv(16) == b"hello"
    assert theirs.recv(16) == b""


async def test_wait_polls_the_engine_until_the_process_has_ended(
        pair: tuple[socket.socket, socket.socket]) -> None:
    engine = Engine()
    exec_session = session(engine, pair[0], set(), [])
    assert await exec_session.wait() == 7
    assert await exec_session.wait() == 7
    assert engine.polls == 3


async def test_a_resize_reaches_the_engine_only_for_a_tty(
        pair: tuple[socket.socket, socket.socket]) -> None:
    engine = Engine()
    await session(engine, pair[0], set(), []).resize(80, 24)
    assert engine.resized == []
    await session(engine, pair[1], set(), [], tty=True).resize(80, 24)
    assert engine.resized == [(80, 24)]


async def test_closing_a_running_session_kills_its_process_and_leaves_the_open_streams(
        pair: tuple[socket.socket, socket.socket]) -> None:
    engine, streams, released = Engine(), set(), []
    exec_session = session(engine, pair[0], streams, released)
    assert len(streams) == 1
    await exec_session.close()
    await exec_session.close()
    assert engine.killed == ["exec-1"]
    assert streams == set() and released == [True]
    assert pair[0].fileno() == -1
    assert await exec_session.read() is None


async def test_closing_a_finished_session_kills_nothing(
        pair: tuple[socket.socket, socket.socket]) -> None:
    engine = Engine()
    engine.exit_code = 0
    exec_session = session(engine, pair[0], set(), [])
    assert await exec_session.wait() == 0
    await exec_session.close()
    assert engine.killed == []


def test_the_runtime_closing_its_streams_closes_the_session(
        pair: tuple[socket.socket, socket.socket]) -> None:
    streams: OpenStreams = set()
    released: list[bool] = []
    session(Engine(), pair[0], streams, released)
    for closer in list(streams):
        closer()
    assert streams == set() and released == [True] and pair[0].fileno() == -1


class Container:
    """The engine's side of an attach: the container's terminal size."""

    def __init__(self) -> None:
        self.resized: list[tuple[str, int, int]] = []

    async def container_resize(self, container_id: str, *, width: int, height: int) -> None:
        self.resized.append((container_id, width, height))


async def test_an_attach_resizes_the_containers_terminal_and_outlives_the_end_of_stdin(
        pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    engine, streams, released = Container(), set(), []
    attach = DockerAttachSession(engine, "container-1", ours, tty=True, open_streams=streams,
                                 release=lambda: released.append(True))
    await attach.write_stdin(b"typed\r")
    await attach.close_stdin()
    await attach.resize(101, 33)
    assert theirs.recv(16) == b"typed\r"
    theirs.sendall(b"got typed\r\n")
    assert await attach.read() == (STDOUT, b"got typed\r\n")
    assert engine.resized == [("container-1", 101, 33)]
    theirs.shutdown(socket.SHUT_WR)
    assert await attach.read() is None
    assert await attach.wait() == 0
    await attach.close()
    assert streams == set() and released == [True]
