"""A real minik instance for end-to-end tests, and ways to drive it.

`Cluster.start()` runs `minik up -d` with a temporary home, a free port and
a unique instance name, and a node address (127.0.0.x) of its own, so that
instances running at once or one after another never share a NodePort;
`kubectl()` runs the real kubectl against it (with
its own cache directory, so discovery is never stale), `minik()` runs
minik's CLI, and `api` is a REST client with the instance's token.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minik.cli.lifecycle import process_alive
from minik.client.rest import RestClient
from minik.kubeconfig import load_kubeconfig

KUBECTL = os.environ.get("MINIK_TEST_KUBECTL", "/usr/bin/kubectl")
MINIK = str(Path(sys.executable).with_name("minik"))


def sleeper_template(app: str) -> str:
    """A workload's `template:` (at two spaces) of one busybox container that sleeps."""
    return f"""\
  template:
    metadata: {{labels: {{app: {app}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: minik/busybox:1.35
        command: [sleep, "3600"]
"""


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/usr/bin/docker", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


NODE_ADDRESS_COUNTER = Path("/tmp/minik-e2e-node-address")
NODE_ADDRESSES = 250
"""Test instances take 127.0.0.3 .. 127.0.0.252 in turn, host-wide (127.0.0.1 is the
default of a user's minik, 127.0.0.2 is left alone)."""


def next_node_address() -> str:
    """The next test node address, from a counter shared by every test process (flock)."""
    fd = os.open(NODE_ADDRESS_COUNTER, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        text = os.read(fd, 32).decode().strip()
        count = (int(text) + 1) % NODE_ADDRESSES if text.isdigit() else 0
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, str(count).encode())
    finally:
        os.close(fd)
    return f"127.0.0.{3 + count}"


def eventually(check: Callable[[], Any], *, timeout: float = 15.0, interval: float = 0.05,
               what: str = "condition") -> Any:
    """Poll `check` until it returns a truthy value; fail with the last value after timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r})")


@dataclass
class Cluster:
    home: Path
    name: str
    port: int
    scratch: Path
    _api: RestClient | None = field(default=None, repr=False)

    @classmethod
    def start(cls, tmp: Path, *, extra: tuple[str, ...] = ()) -> Cluster:
        cluster = cls(tmp / "home", f"e2e-{uuid.uuid4().hex[:8]}", free_port(), tmp / "scratch")
        cluster.scratch.mkdir(parents=True, exist_ok=True)
        if "--node-address" not in extra:
            extra = ("--node-address", next_node_address(), *extra)
        cluster._up(*extra)
        return cluster

    def _up(self, *extra: str) -> None:
        """`minik up -d`; a server that does not come up is stopped, not left running."""
        try:
            self.minik("up", "-d", "--name", self.name, "--port", str(self.port), *extra)
        except BaseException:
            self.stop()
            raise

    @property
    def kubeconfig(self) -> Path:
        return self.home / "kubeconfig"

    @property
    def pid(self) -> int | None:
        try:
            return int((self.home / "server.pid").read_text())
        except (OSError, ValueError):
            return None

    @property
    def api(self) -> RestClient:
        if self._api is None:
            self._api = RestClient(load_kubeconfig(self.kubeconfig))
        return self._api

    def _env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.scratch), "KUBECONFIG": str(self.kubeconfig)}

    def run(self, argv: list[str], *, check: bool, input: str | None,
            timeout: float) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(argv, input=input, capture_output=True, text=True,
                                env=self._env(), timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {result.returncode}\nstdout:\n{result.stdout}\n"
                f"stderr:\n{result.stderr}"
            )
        return result

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        argv = [KUBECTL, "--kubeconfig", str(self.kubeconfig),
                "--cache-dir", str(self.scratch / "kube-cache"), *args]
        return self.run(argv, check=check, input=input, timeout=timeout)

    def minik(self, *args: str, check: bool = True, input: str | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.run([MINIK, "--home", str(self.home), *args], check=check, input=input,
                        timeout=timeout)

    def stop(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None
        # A server that does not stop in time is killed below, never left running.
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.minik("down", "--purge", check=False)
        pid = self.pid
        if pid is not None and process_alive(pid):
            os.kill(pid, signal.SIGKILL)
        self._remove_leftovers()

    def _remove_leftovers(self) -> None:
        """What `down --purge` could not reach (a test that ended with the server
        stopped or killed): this instance's containers, then its pod network."""
        selector = f"label=minik.dev/instance={self.name}"
        for listing, removal in ((["ps", "-aq"], ["rm", "-f"]),
                                 (["network", "ls", "-q"], ["network", "rm"])):
            found = _docker(*listing, "--filter", selector).stdout.split()
            if found:
                _docker(*removal, *found)

    def kill(self) -> None:
        """kill -9 the server, as a crash would."""
        pid = self.pid
        assert pid is not None, "server not running"
        os.kill(pid, signal.SIGKILL)
        eventually(lambda: not process_alive(pid), what=f"pid {pid} gone")
        self._drop_api()

    def down(self) -> None:
        """`minik down`: a clean stop, its store kept."""
        self.minik("down")
        self._drop_api()

    def _drop_api(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None

    def restart(self) -> None:
        self._up()

