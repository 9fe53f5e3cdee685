"""`python -m minik.server`: run one minik server in the foreground (what `minik up` runs)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from minik.home import DEFAULT_NAME, DEFAULT_PORT, Home
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
    parser.add_argument("--node-address", default="127.0.0.1")
    parser.add_argument("--loadbalancer-range", default="127.0.1.0/24")
    args = parser.parse_args(argv)
    disabled = frozenset(c.strip() for c in args.disable_controllers.split(",") if c.strip())
    return ServerConfig(Home.at(args.home), args.name, args.port, args.bind, disabled,
                        node_name=args.node_name, pod_subnet=args.pod_subnet,
                        restart_backoff=args.restart_backoff, node_address=args.node_address,
                        loadbalancer_range=args.loadbalancer_range)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in filter(None, os.environ.get("MINIK_DEBUG", "").split(",")):
        logging.getLogger(name.strip()).setLevel(logging.DEBUG)
    config = _parse(sys.argv[1:] if argv is None else argv)
    try:
        asyncio.run(serve(config))
    except (OSError, StoreError) as e:
        logging.getLogger("minik").error("cannot start: %s", e)
        sys.exit(1)


if __name__ == "__main__":
    main()
