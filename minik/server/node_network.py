"""The node network process (`python -m cni`: Service proxy and cluster DNS), as a child.

The data path copies every byte a Service carries, so it runs off the API
server's event loop, in a process of its own, which the server starts once
the pod network exists (the agent ensures it; the wiring hands it this
process's `start`) and supervises: when the child exits unasked, `run`
fails and the supervisor starts it again after a growing delay. The child
asks for SIGTERM when the server dies (`PR_SET_PDEATHSIG`, given the
server's pid to check against), so a kill -9 of minik never leaves a port
held or an address on `lo`. `stop` (on `minik down`) sends SIGTERM, waits
for the child to remove its listeners and addresses, and kills it when it
takes too long; then whatever addresses of the instance are still on
`lo` (a child killed -9 leaves them) are removed here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys

from cni.proxy.addresses import AddressError, LoopbackAddresses
from minik.server.config import ServerConfig

log = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0


class NodeNetworkProcess:
    def __init__(self, config: ServerConfig, *, node_ip: str | None) -> None:
        self.config = config
        self.node_ip = node_ip
        self._process: asyncio.subprocess.Process | None = None

    def command(self) -> list[str]:
        config = self.config
        argv = [sys.executable, "-m", "cni", "--home", str(config.home.root),
                "--name", config.name, "--node-address", config.node_address,
                "--loadbalancer-range", config.loadbalancer_range,
                "--parent-pid", str(os.getpid())]
        if self.node_ip:
            argv += ["--node-ip", self.node_ip]
        for upstream in config.dns_upstream:
            argv += ["--dns-upstream", upstream]
        return argv

    async def run(self) -> None:
        """Run the child until it exits (an error: the supervisor starts it again)."""
        self._process = await asyncio.create_subprocess_exec(
            *self.command(), stdin=asyncio.subprocess.DEVNULL)
        log.info("node network process started (pid %d)", self._process.pid)
        try:
            code = await self._process.wait()
        except asyncio.CancelledError:
            await self._terminate()
            raise
        raise RuntimeError(f"the node network process exited with {code}")

    async def _terminate(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), STOP_TIMEOUT)
        except TimeoutError:
            log.error("node network process (pid %d) did not stop in %.0fs; killing it",
                      process.pid, STOP_TIMEOUT)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def remove_addresses(self) -> None:
        """Remove the instance's addresses left on `lo` (by a child that was killed)."""
        try:
            left = await LoopbackAddresses(self.config.name).remove_all()
        except AddressError as e:
            log.error("removing the instance's ClusterIPs from lo: %s", e)
            return
        if left:
            log.info("removed %d ClusterIPs left on lo", len(left))
