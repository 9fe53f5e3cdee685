"""`minik up`, `down`, `status`, `kubeconfig`, `version`: one instance's life.

`up` runs the server in the foreground, or with `-d` starts it as a detached
process (its output in `$MINIK_HOME/server.log`) and waits, with a progress
line, until the server says it is up - its node Ready, so a pod created at
once is scheduled at once (with `--disable-controllers agent` there is no
node to wait for) - and `/readyz` answers. The server writes its own pid
file, so `down` stops exactly the process this instance started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from minik import __version__
from minik.api.errors import ApiError
from minik.cli.context import CliContext, fail, pass_context
from minik.client.rest import ConnectionFailed, RestClient
from minik.home import (
    DEFAULT_NAME,
    DEFAULT_PORT,
    PURGE_SIGNAL,
    SERVER_MODULE,
    Home,
    open_private_log,
)
from minik.kubeconfig import KubeconfigError, load_kubeconfig

READY_TIMEOUT = 60.0


def process_alive(pid: int) -> bool:
    """True for a live process; a zombie (exited, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _is_server(pid: int) -> bool:
    """The process is a minik server (not an unrelated one that reused the pid)."""
    try:
        return SERVER_MODULE.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True


def running_pid(home: Home) -> int | None:
    """The pid of this home's live server, or None."""
    try:
        pid = int(home.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if process_alive(pid) and _is_server(pid) else None


def _ready(home: Home) -> bool:
    try:
        client = RestClient(load_kubeconfig(home.kubeconfig), timeout=2)
        client.request("GET", "/readyz")
        client.close()
        return True
    except (KubeconfigError, ConnectionFailed, ApiError, OSError):
        return False


def _server_command(
    home: Home, name: str, port: int, bind: str, extra: tuple[str, ...]
) -> list[str]:
    return [sys.executable, "-m", SERVER_MODULE, "--home", str(home.root), "--name", name,
            "--port", str(port), "--bind", bind, *extra]


def _server_env() -> dict[str, str]:
    """The server's environment: ours, with the C allocator for Python's objects.

    pymalloc keeps a 1 MiB arena as long as one object lives in it, so a burst
    of connections (a thousand watches opened and closed) left the server ~20 MB
    larger for good; on glibc's malloc the heap task hands the pages back (see
    `minik.apiserver.heap`), at no cost to throughput that `bench/api.py` can
    see. A PYTHONMALLOC the user set is kept.
    """
    return {"PYTHONMALLOC": "malloc", **os.environ}


def _log_tail(home: Home, lines: int = 20) -> str:
    try:
        return "\n".join(home.log_file.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_up(home: Home, process: subprocess.Popen[bytes], started: float) -> dict[str, Any]:
    """The instance record, once the server `process` says it is up and answers."""
    deadline = started + READY_TIMEOUT
    spinner = "|/-\\"
    tick = 0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            fail(f"minik server exited with code {process.returncode}:\n{_log_tail(home)}")
        info = instance_info(home)
        serving = info.get("pid") == process.pid
        if serving and info.get("up") and _ready(home):
            return info
        if sys.stderr.isatty():
            what = f"node {info.get('node')!r} to be Ready" if serving else "the API server"
            click.echo(f"\r\033[KWaiting for {what} {spinner[tick % 4]}", nl=False, err=True)
        tick += 1
        time.sleep(0.05)
    info = instance_info(home)
    if info.get("pid") == process.pid and info.get("node"):
        fail(f"minik serves, but its node {info['node']!r} is not Ready after "
             f"{READY_TIMEOUT:.0f}s; log: {home.log_file}")
    fail(f"minik server not ready after {READY_TIMEOUT:.0f}s; log: {home.log_file}")


def detach(home: Home, name: str, port: int, bind: str, extra: tuple[str, ...]) -> None:
    started = time.monotonic()
    home.kubeconfig.unlink(missing_ok=True)
    click.echo(f"Starting minik {name!r} on https://{bind}:{port} (home {home.root}) ...",
               err=True)
    with os.fdopen(open_private_log(home.log_file), "ab") as log:
        process = subprocess.Popen(
            _server_command(home, name, port, bind, extra),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env=_server_env(),
        )
    info = _wait_up(home, process, started)
    if sys.stderr.isatty():
        click.echo("\r\033[K", nl=False, err=True)
    node = (f"node {info['node']!r} is Ready" if info.get("node") else
            "no node: the agent is disabled, so pods stay Pending until a node joins")
    click.echo(f"minik is up in {time.monotonic() - started:.2f}s (pid {process.pid}); {node}.",
               err=True)
    click.echo(f"export KUBECONFIG={home.kubeconfig}", err=True)
    click.echo(str(home.kubeconfig))


def _network_options(**given: str | None) -> tuple[str, ...]:
    """The network flags given, for the server; the others it keeps from its last start."""
    extra: tuple[str, ...] = ()
    for option, value in given.items():
        if value:
            extra += ("--" + option.replace("_", "-"), value)
    return extra


def _metric_resolution(ctx: click.Context, param: click.Parameter, value: float) -> float:
    """0 (stats collection off), else at least a second as before."""
    if 0 < value < 1:
        raise click.BadParameter(f"{value} is neither 0 (off) nor at least 1 second",
                                 ctx=ctx, param=param)
    return value


@click.command()
@click.option("-d", "--detach", "detached", is_flag=True, help="Run in the background.")
@click.option("--name", default=DEFAULT_NAME, show_default=True,
              help="Instance name; labels every Docker resource minik creates.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int)
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--disable-controllers", default="",
              help="Comma-separated components to switch off (scheduler, agent, ...).")
@click.option("--node-name", default="", help="The node's name (default: the host name).")
@click.option("--pod-subnet", default=None,
              help="Pod network subnet (default: the first free /16 from 10.244.0.0).")
@click.option("--restart-backoff", default=10.0, show_default=True, type=float,
              help="Base of the container restart backoff, in seconds (doubles to 300).")
@click.option("--metric-resolution", default=15.0, show_default=True,
              type=click.FloatRange(min=0.0), callback=_metric_resolution,
              help="Seconds between samples of the containers' stats and scrapes of the "
                   "nodes' resource metrics (metrics.k8s.io, kubectl top); 0 turns both "
                   "off.")
@click.option("--service-cidr", default=None,
              help="ClusterIP range (default: kept from the last start, else the first "
                   "/16 from 10.96.0.0 that no other instance on this host holds).")
@click.option("--service-node-port-range", default=None,
              help="NodePort range FIRST-LAST (default: kept, else 30000-32767).")
@click.option("--node-address", default=None,
              help="Host address NodePorts listen on (default: kept, else 127.0.0.1).")
@click.option("--loadbalancer-range", default=None,
              help="Loopback range LoadBalancer Services take addresses from (default: kept, "
                   "else the first free /24 from 127.0.1.0).")
@click.option("--dns-upstream", multiple=True,
              help="HOST[:PORT] cluster DNS forwards other names to (repeatable; default: "
                   "kept, else the host's /etc/resolv.conf nameservers).")
@pass_context
def up(ctx: CliContext, detached: bool, name: str, port: int, bind: str,
       disable_controllers: str, node_name: str, pod_subnet: str | None,
       restart_backoff: float, metric_resolution: float, service_cidr: str | None,
       service_node_port_range: str | None, node_address: str | None,
       loadbalancer_range: str | None, dns_upstream: tuple[str, ...]) -> None:
    """Start minik (API server, controllers, node agent)."""
    home = ctx.home.ensure()
    loosened = home.make_private()
    if loosened:
        click.echo(home.describe_tightened(loosened), err=True)
    pid = running_pid(home)
    if pid is not None:
        click.echo(f"minik is already running (pid {pid}); kubeconfig: {home.kubeconfig}",
                   err=True)
        return
    extra: tuple[str, ...] = ("--restart-backoff", str(restart_backoff),
                              "--metric-resolution", str(metric_resolution))
    if disable_controllers:
        extra += ("--disable-controllers", disable_controllers)
    if node_name:
        extra += ("--node-name", node_name)
    if pod_subnet:
        extra += ("--pod-subnet", pod_subnet)
    extra += _network_options(service_cidr=service_cidr,
                              service_node_port_range=service_node_port_range,
                              node_address=node_address, loadbalancer_range=loadbalancer_range)
    for upstream in dns_upstream:
        extra += ("--dns-upstream", upstream)
    if detached:
        detach(home, name, port, bind, extra)
        return
    command = _server_command(home, name, port, bind, extra)
    os.execve(command[0], command, _server_env())


@click.command()
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for exit.")
@click.option("--purge", is_flag=True,
              help="Also remove the store, the volumes and the pod network.")
@pass_context
def down(ctx: CliContext, timeout: float, purge: bool) -> None:
    """Stop this instance: its containers go, its desired state stays (unless --purge)."""
    pid = running_pid(ctx.home)
    if pid is None:
        click.echo("minik is not running.", err=True)
        if purge:
            fail("--purge needs the server running: start it with `minik up -d`, then purge")
        return
    os.kill(pid, PURGE_SIGNAL if purge else signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running_pid(ctx.home) != pid:
            click.echo(f"minik stopped (pid {pid}).", err=True)
            if purge and (ctx.home.store.exists() or ctx.home.agent_dir.exists()):
                fail(f"minik did not purge {ctx.home.root}: see {ctx.home.log_file} "
                     f"(a mount left under {ctx.home.agent_dir} keeps the state)")
            return
        time.sleep(0.05)
    fail(f"minik (pid {pid}) did not stop within {timeout:.0f}s")


def instance_info(home: Home) -> dict[str, Any]:
    """What the server wrote of itself in the instance file ({} when nothing)."""
    try:
        return json.loads(home.instance_file.read_text())
    except (OSError, ValueError):
        return {}


@click.command()
@pass_context
def status(ctx: CliContext) -> None:
    """Say whether this instance runs and answers; exit 1 when it does not."""
    pid = running_pid(ctx.home)
    info = instance_info(ctx.home)
    if pid is None:
        click.echo(f"minik: stopped (home {ctx.home.root})")
        sys.exit(1)
    ready = _ready(ctx.home)
    click.echo(f"minik: {'running' if ready else 'starting'}")
    click.echo(f"name:       {info.get('name', '?')}")
    click.echo(f"pid:        {pid}")
    click.echo(f"server:     {info.get('server', '?')}")
    for label, key in (("services:", "serviceCIDR"), ("node addr:", "nodeAddress")):
        if info.get(key):
            click.echo(f"{label:<12}{info[key]}")
    if info.get("dns"):
        click.echo(f"dns:        {info['dns']} (dig @{info['dns']} web.default.svc.cluster.local)")
    click.echo(f"kubeconfig: {ctx.home.kubeconfig}")
    if not ready:
        sys.exit(1)


@click.command()
@pass_context
def kubeconfig(ctx: CliContext) -> None:
    """Print the path of this instance's kubeconfig."""
    if not ctx.home.kubeconfig.exists():
        fail(f"no kubeconfig at {ctx.home.kubeconfig}: run 'minik up' first")
    click.echo(str(ctx.home.kubeconfig))


@click.command()
@pass_context
def version(ctx: CliContext) -> None:
    """Print the client version and, when reachable, the server's."""
    click.echo(f"Client Version: v{__version__}")
    try:
        info = ctx.client().request("GET", "/version", timeout=5)
    except (ApiError, ConnectionFailed, SystemExit):
        return
    click.echo(f"Server Version: {info.get('gitVersion')}")
