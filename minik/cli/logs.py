"""`minik logs`: print a container's log, as `kubectl logs` does.

`TYPE/NAME` of a workload or Service (`job/x`, `deploy/x`, ...) stands
for the first of its pods as kubectl orders them (see `attachable`). Like
kubectl it first reads the pod to choose the container (`-c`, else
the `kubectl.kubernetes.io/default-container` annotation, else the first
container, saying which when there are several), then streams
`pods/{name}/log` and copies the bytes as they arrive: with `-f` the
answer stays open until the container stops or the user interrupts.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import click

from minik.api.resources import REGISTRY
from minik.cli.attachable import attachable_type, first_pod_for_logs
from minik.cli.context import CliContext, fail, handle_errors, pass_context
from minik.client.paths import object_path

DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
POD_PREFIXES = ("pod/", "pods/", "po/")
DURATION = re.compile(r"(\d+)(h|m|s)")
UNITS = {"h": 3600, "m": 60, "s": 1}


def pod_name(arg: str) -> str:
    """`p`, `pod/p` or `pods/p`; other kinds are refused."""
    for prefix in POD_PREFIXES:
        if arg.startswith(prefix):
            return arg[len(prefix):]
    if "/" in arg:
        fail(f"minik selects pods by name only, not {arg!r}")
    return arg


def target_pod(ctx: CliContext, arg: str, *, timeout: float) -> dict[str, Any]:
    """The pod `arg` names: itself, or the first pod of the workload or Service it names."""
    if "/" not in arg or arg.startswith(POD_PREFIXES):
        return ctx.client().request("GET", pod_path(ctx, pod_name(arg)))
    type_name, _, name = arg.partition("/")
    rt = attachable_type(type_name)
    obj = ctx.client().request("GET", object_path(rt, ctx.namespace, name))
    return first_pod_for_logs(ctx, rt, obj, arg, timeout=timeout)


def pod_path(ctx: CliContext, name: str, subresource: str | None = None) -> str:
    rt = REGISTRY.by_kind("v1", "Pod")
    assert rt is not None
    return object_path(rt, ctx.namespace, name, subresource)


def choose_container(pod: dict[str, Any], requested: str | None) -> str:
    """The container kubectl would pick, printing `Defaulted container ...` as it does."""
    if requested:
        return requested
    spec = pod.get("spec") or {}
    names = [c["name"] for c in spec.get("containers") or []]
    if not names:
        fail(f"pod {pod['metadata']['name']} has no containers")
    annotations = pod["metadata"].get("annotations") or {}
    asked = annotations.get(DEFAULT_CONTAINER)
    chosen: str = asked if isinstance(asked, str) and asked in names else names[0]
    if len(names) > 1 or spec.get("initContainers"):
        listed = names + [f"{c['name']} (init)" for c in spec.get("initContainers") or []]
        click.echo(f'Defaulted container "{chosen}" out of: {", ".join(listed)}', err=True)
    return chosen


def seconds(duration: str, flag: str = "since") -> int:
    """`1h30m`, `5m` or `10s` as seconds."""
    parts = DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        fail(f'invalid argument "{duration}" for "--{flag}" flag: use a duration like 5s, 2m '
             "or 3h")
    return sum(int(n) * UNITS[u] for n, u in parts)


def log_params(container: str, *, follow: bool, previous: bool, tail: int,
               timestamps: bool, since: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {"container": container}
    for flag, value in (("follow", follow), ("previous", previous),
                        ("timestamps", timestamps)):
        if value:
            params[flag] = "true"
    if tail >= 0:
        params["tailLines"] = tail
    if since:
        params["sinceSeconds"] = seconds(since)
    return params


@click.command("logs")
@click.argument("pod")
@click.option("-c", "--container", help="Print the logs of this container.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("-p", "--previous", is_flag=True,
              help="Print the logs of the previous, terminated instance of the container.")
@click.option("--tail", type=int, default=-1, help="Lines of recent log to show (-1: all).")
@click.option("--timestamps", is_flag=True, help="Prefix each line with its time.")
@click.option("--since", help="Only newer logs, e.g. 5s, 2m or 3h.")
@click.option("--pod-running-timeout", default="20s",
              help="How long to wait for a pod of TYPE/NAME to exist, e.g. 20s.")
@pass_context
@handle_errors
def logs(ctx: CliContext, pod: str, container: str | None, follow: bool, previous: bool,
         tail: int, timestamps: bool, since: str | None, pod_running_timeout: str) -> None:
    """Print the logs of a container in a pod, or in the first pod of TYPE/NAME."""
    client = ctx.client()
    obj = target_pod(ctx, pod, timeout=seconds(pod_running_timeout, "pod-running-timeout"))
    name = obj["metadata"]["name"]
    params = log_params(choose_container(obj, container), follow=follow, previous=previous,
                        tail=tail, timestamps=timestamps, since=since)
    out = sys.stdout.buffer
    try:
        for chunk in client.stream(pod_path(ctx, name, "log"), params=params,
                                   accept="application/json, */*"):
            out.write(chunk)
            out.flush()
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
