"""A second Docker engine of a test's own, started with `--iptables=false --ip-masq=false`,
and removed with everything it left.

The shared engine is never restarted or reconfigured: this one has its own `--data-root`,
`--exec-root` (hence its own containerd), unix socket (no TCP listener), pid file, config
file (an empty one: the host's /etc/docker/daemon.json is not ours) and default bridge.
The bridge is one the test creates (`--bridge=<name>`), not `--bridge=none`: an engine
started with `--bridge=none` deletes the host's `docker0` at its start (libnetwork's
`removeDefaultBridgeInterface`), the default bridge of the shared engine. Images are
copied from the shared engine (`docker save | docker load`), which is all the test asks
of it. At the end: SIGTERM, a bounded wait, SIGKILL (and its containerd), then every
bridge and veth of this engine's networks that is still there, any mount left under its
directories, and the directories themselves.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pyroute2 import IPRoute

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""The engine's PATH: the system's, never a test's shims."""
DOCKERD = shutil.which("dockerd", path=SYSTEM_PATH) or "dockerd"
DOCKER = shutil.which("docker", path=SYSTEM_PATH) or "docker"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def free_subnets(count: int, *, within: str = "10.127.0.0/16",
                 prefixlen: int = 24) -> list[ipaddress.IPv4Network]:
    """`count` subnets of `within` that overlap no route of the host (so none of the shared
    engine's networks, whose bridges have routes, nor the host's own). 10.127.0.0/16 is
    below every subnet minik picks by itself (10.128 and up)."""
    with IPRoute() as ip:
        routes = [ipaddress.IPv4Network(f"{r.get_attr('RTA_DST')}/{r['dst_len']}", strict=False)
                  for r in ip.get_routes(family=2) if r["dst_len"]]
    free = [s for s in ipaddress.IPv4Network(within).subnets(new_prefix=prefixlen)
            if not any(s.overlaps(r) for r in routes)]
    return random.sample(free, count)


@dataclass
class PrivateEngine:
    root: Path
    bridge: str
    process: subprocess.Popen[bytes] | None = None
    bridges: set[str] = field(default_factory=set)
    """Every bridge this engine had (its own default bridge and its networks'), as seen by
    `network_bridges` while it ran: they must carry no rule, and are removed at the end."""

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def docker(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run([DOCKER, "-H", self.host, *args], capture_output=True,
                              text=True, timeout=timeout)

    def network_bridges(self) -> set[str]:
        """The bridges of this engine's networks now (remembered in `bridges`)."""
        listed = self.docker("network", "ls", "--no-trunc", "--filter", "driver=bridge",
                             "--format", "{{.ID}} {{.Name}}")
        assert listed.returncode == 0, listed.stderr
        for line in listed.stdout.split("\n"):
            if line:
                network_id, name = line.split(" ", 1)
                self.bridges.add(self.bridge if name == "bridge" else f"br-{network_id[:12]}")
        return set(self.bridges)

    def start(self, bridge_subnet: ipaddress.IPv4Network) -> None:
        with IPRoute() as ip:
            ip.link("add", ifname=self.bridge, kind="bridge")
            index = ip.link_lookup(ifname=self.bridge)[0]
            ip.addr("add", index=index, address=str(bridge_subnet[1]),
                    prefixlen=bridge_subnet.prefixlen)
        self.bridges.add(self.bridge)
        (self.root / "daemon.json").write_text("{}\n")
        argv = [DOCKERD, "--config-file", str(self.root / "daemon.json"),
                "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                "--pidfile", str(self.root / "dockerd.pid"), "-H", self.host,
                "--iptables=false", "--ip-masq=false", f"--bridge={self.bridge}"]
        with open(self.root / "dockerd.log", "wb") as log:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True,
                                            env={**os.environ, "PATH": SYSTEM_PATH})
        deadline = time.monotonic() + START_TIMEOUT
        while self.docker("version", "--format", "{{.Server.Version}}").returncode != 0:
            if self.process.poll() is not None:
                pytest.skip(f"dockerd cannot be started here (exit {self.process.returncode}):"
                            f" {self.log_tail()}")
            assert time.monotonic() < deadline, f"dockerd not serving: {self.log_tail()}"
            time.sleep(0.1)

    def load(self, images: tuple[str, ...], timeout: float = 60) -> None:
        """Copy `images` from the shared engine (the default socket, never DOCKER_HOST)."""
        shared_env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
        save = subprocess.Popen([DOCKER, "save", *images], stdout=subprocess.PIPE,
                                env=shared_env)
        try:
            loaded = subprocess.run([DOCKER, "-H", self.host, "load"], stdin=save.stdout,
                                    capture_output=True, text=True, timeout=timeout)
        finally:
            assert save.stdout is not None
            save.stdout.close()
            if save.poll() is None:
                save.kill()
            save.wait()
        assert loaded.returncode == 0 and save.returncode == 0, loaded.stderr

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "dockerd.log").read_text(errors="replace")[-2000:]
        return ""

    def remove(self) -> None:
        """Stop the engine by its pid and remove whatever of it is left."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                self.network_bridges()
            veths = self._veths()
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                self._kill_containerd()
        else:
            veths = self._veths()
        self._delete_links(veths | self.bridges)
        self._unmount()
        shutil.rmtree(self.root, ignore_errors=True)

    def _veths(self) -> set[str]:
        """The interfaces enslaved to this engine's bridges now."""
        with IPRoute() as ip:
            links = ip.get_links()
            masters = {link["index"] for link in links
                       if link.get_attr("IFLA_IFNAME") in self.bridges}
            return {link.get_attr("IFLA_IFNAME") for link in links
                    if link.get_attr("IFLA_MASTER") in masters}

    def _kill_containerd(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            pid = int((self.root / "exec" / "containerd" / "containerd.pid").read_text())
            os.kill(pid, signal.SIGKILL)

    @staticmethod
    def _delete_links(names: set[str]) -> None:
        with IPRoute() as ip:
            for name in names:
                for index in ip.link_lookup(ifname=name):
                    ip.link("del", index=index)

    def _unmount(self) -> None:
        """Mounts a killed engine left under its directories (netns, overlays), deepest
        first."""
        root = str(self.root)
        points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text()
                  .splitlines() if line.split()[4].startswith(root + "/")]
        for point in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, timeout=10)


@contextlib.contextmanager
def private_engine(bridge_subnet: ipaddress.IPv4Network,
                   images: tuple[str, ...]) -> Iterator[PrivateEngine]:
    """A running engine of the test's own holding `images`, removed on exit. Its root is
    short (a unix socket path is at most 107 bytes) and not under pytest's basetemp."""
    if os.geteuid() != 0 or not os.access(DOCKERD, os.X_OK):
        pytest.skip(f"a second engine needs root and dockerd (found: {DOCKERD})")
    engine = PrivateEngine(Path(tempfile.mkdtemp(prefix="minik-engine-", dir="/tmp")),
                           f"mkd{uuid.uuid4().hex[:8]}")
    try:
        engine.start(bridge_subnet)
        engine.load(images)
        yield engine
    finally:
        engine.remove()
