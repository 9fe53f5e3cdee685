"""`python -m minik.server`: run one minik server in the foreground (what `minik up` runs)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from minik.home import DEFAULT_NAME, DEFAULT_PORT, Home
from minik.server import settings
from minik.server.config import ServerConfig
from minik.server.process import serve
from minik.store import StoreError


def _parse(argv: list[str]) -> ServerConfig:
    parser = argparse.ArgumentParser(prog="minik-server")
    parser.add_argument("--home")
    parser.add_argument("--name", default=DEFAULT_NAME)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--disable-controllers", default="")
    parser.add_argument("--node-name", default="")
    parser.add_argument("--pod-subnet", default=None)
    parser.add_argument("--restart-backoff", type=float, default=10.0)
    parser.add_argument("--metric-resolution", type=float, default=15.0)
    parser.add_argument("--service-cidr")
    parser.add_argument("--service-node-port-range")
    parser.add_argument("--node-address")
    parser.add_argument("--loadbalancer-range")
    parser.add_argument("--dns-upstream", action="append", default=[])
    args = parser.parse_args(argv)
    disabled = frozenset(c.strip() for c in args.disable_controllers.split(",") if c.strip())
    home = Home.at(args.home).ensure()
    network = settings.resolve(
        home, service_cidr=args.service_cidr, node_port_range=args.service_node_port_range,
        node_address=args.node_address, loadbalancer_range=args.loadbalancer_range,
        dns_upstream=tuple(args.dns_upstream))
    return ServerConfig(home, args.name, args.port, args.bind, disabled,
                        node_name=args.node_name, pod_subnet=args.pod_subnet,
                        restart_backoff=args.restart_backoff,
                        metric_resolution=args.metric_resolution,
                        service_cidr=network.service_cidr,
                        node_port_range=network.node_port_range,
                        node_address=network.node_address,
                        loadbalancer_range=network.loadbalancer_range,
                        dns_upstream=network.dns_upstream)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in filter(None, os.environ.get("MINIK_DEBUG", "").split(",")):
        logging.getLogger(name.strip()).setLevel(logging.DEBUG)
    try:
        config = _parse(sys.argv[1:] if argv is None else argv)
    except settings.SettingsError as e:
        logging.getLogger("minik").error("cannot start: %s", e)
        sys.exit(1)
    try:
        asyncio.run(serve(config))
    except (OSError, StoreError) as e:
        logging.getLogger("minik").error("cannot start: %s", e)
        sys.exit(1)


if __name__ == "__main__":
    main()
