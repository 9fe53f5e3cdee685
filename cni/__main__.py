"""`python -m cni`: the node network process (Service proxy and cluster DNS).

The minik server starts it once the pod network exists
(`minik.server.node_network`) and restarts it with back-off when it dies.
It must never outlive the server, or a kill -9 of minik would leave ports
held and addresses on `lo`: it asks the kernel for SIGTERM when its parent
dies (`PR_SET_PDEATHSIG`), checks that the parent did not die before
that, and on SIGTERM (from the kernel, or from the server stopping it)
stops cleanly: listeners closed, addresses removed. The data path runs on
uvloop.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import logging
import os
import signal
import sys

import uvloop

from cni.node import NodeNetwork, NodeNetworkConfig
from minik.home import Home

PR_SET_PDEATHSIG = 1

log = logging.getLogger("cni")


def die_with_parent(parent: int) -> None:
    """SIGTERM this process when its parent dies; exit now if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:
        log.error("the minik server (pid %d) is gone; not starting", parent)
        sys.exit(0)


def parse(argv: list[str]) -> tuple[NodeNetworkConfig, int | None]:
    parser = argparse.ArgumentParser(prog="python -m cni")
    parser.add_argument("--home", required=True)
    parser.add_argument("--name", required=True, help="the instance name")
    parser.add_argument("--node-address", default="127.0.0.1")
    parser.add_argument("--loadbalancer-range", default="127.0.1.0/24")
    parser.add_argument("--node-ip", default=None,
                        help="the node's address on the pod network (the bridge gateway)")
    parser.add_argument("--metrics-port", type=int, default=0)
    parser.add_argument("--dns-upstream", action="append", default=[],
                        help="HOST[:PORT] cluster DNS forwards other names to (repeatable)")
    parser.add_argument("--parent-pid", type=int, default=None,
                        help="exit with this process (the minik server)")
    args = parser.parse_args(argv)
    config = NodeNetworkConfig(Home.at(args.home), args.name, node_address=args.node_address,
                               loadbalancer_range=args.loadbalancer_range, node_ip=args.node_ip,
                               metrics_port=args.metrics_port,
                               dns_upstream=tuple(args.dns_upstream))
    return config, args.parent_pid


async def run(config: NodeNetworkConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    node = NodeNetwork(config)
    try:
        await node.start()
        log.info("node network of %r running", config.instance)
        await stop.wait()
    finally:
        await node.stop()
        log.info("node network of %r stopped", config.instance)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config, parent = parse(sys.argv[1:] if argv is None else argv)
    if parent is not None:
        die_with_parent(parent)
    uvloop.run(run(config))


if __name__ == "__main__":
    main()
