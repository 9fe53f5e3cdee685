"""`minik top node|pod`: resource usage from `metrics.k8s.io`, printed as `kubectl top` prints it.

The requests are kubectl's: discovery first (no `metrics.k8s.io/v1beta1`
is "Metrics API not available"), then NodeMetrics with the Nodes (for the
percentages of their allocatable, or capacity with `--show-capacity`), or
PodMetrics alone. CPU is printed in millicores rounded up and memory in
whole MiB rounded down, as kubectl's `Quantity.MilliValue()` and
`Value() / 2^20` give them; `--sort-by` sorts by the largest first, and
otherwise nodes by name and pods by namespace and name. The table is
kubectl's tab writer's: every cell, the last one too, ends in a tab, so a
line keeps its padding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import click

from minik.api.models.quantity import milli_value, parse_quantity
from minik.cli.context import CliContext, fail, handle_errors, pass_context
from minik.cli.printing import GET_MIN_WIDTH, GET_PADDING, TabWriter

if TYPE_CHECKING:
    from minik.client.rest import RestClient

METRICS = "/apis/metrics.k8s.io/v1beta1"
SORT_KEYS = ("cpu", "memory")
NODE_COLUMNS = ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
POD_COLUMNS = ["NAME", "CPU(cores)", "MEMORY(bytes)"]
UNKNOWN = "<unknown>"


def millicores(quantity: str | None) -> int:
    """kubectl's `MilliValue()` of an absent-or-given usage."""
    return milli_value(quantity or "0")


def mebibytes(quantity: str | None) -> int:
    """kubectl's `Value() / (1024*1024)`: whole bytes rounded up, then whole MiB down."""
    return math.ceil(parse_quantity(quantity or "0")) // (1024 * 1024)


def _usage_cells(usage: dict[str, str]) -> list[str]:
    return [f"{millicores(usage.get('cpu'))}m", f"{mebibytes(usage.get('memory'))}Mi"]


def _percent(used: str | None, available: str | None) -> str:
    """kubectl's percentage: the usage's milli-value over the available milli-value."""
    total = millicores(available)
    return f"{int(millicores(used) / total * 100) if total else 0}%"


def render(lines: Sequence[Sequence[str]]) -> str:
    """kubectl's tab writer, each cell tab-terminated."""
    writer = TabWriter(minwidth=GET_MIN_WIDTH, padding=GET_PADDING)
    return writer.render([[*line, ""] for line in lines])


def _metrics_available(client: RestClient) -> None:
    groups = client.request("GET", "/apis").get("groups") or []
    versions = {v.get("version") for g in groups if g.get("name") == "metrics.k8s.io"
                for v in g.get("versions") or []}
    if "v1beta1" not in versions:
        fail("error: Metrics API not available")


def _sort_key(sort_by: str | None, usage: dict[str, str]) -> int:
    if sort_by == "cpu":
        return -millicores(usage.get("cpu"))
    return -math.ceil(parse_quantity(usage.get("memory") or "0"))


def node_table(metrics: list[dict[str, Any]], available: dict[str, dict[str, str]], *,
               sort_by: str | None, no_headers: bool) -> str:
    """kubectl's node table; nodes without metrics last, as `<unknown>`."""
    if sort_by:
        metrics = sorted(metrics, key=lambda m: _sort_key(sort_by, m.get("usage") or {}))
    else:
        metrics = sorted(metrics, key=lambda m: m["metadata"]["name"])
    lines = [] if no_headers else [NODE_COLUMNS]
    missing = dict(available)
    for m in metrics:
        name, usage = m["metadata"]["name"], m.get("usage") or {}
        resources = missing.pop(name, None) or {}
        cpu, memory = _usage_cells(usage)
        line = [name, cpu]
        if resources:
            line.append(_percent(usage.get("cpu"), resources.get("cpu")))
        line.append(memory)
        if resources:
            line.append(_percent(usage.get("memory"), resources.get("memory")))
        lines.append(line)
    lines += [[name, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN] for name in missing]
    return render(lines)


def _pod_usage(pod: dict[str, Any]) -> dict[str, str]:
    """A pod's usage: the sum of its containers'."""
    cpu = sum((parse_quantity(c["usage"].get("cpu") or "0") for c in pod.get("containers") or []),
              Decimal(0))
    memory = sum((parse_quantity(c["usage"].get("memory") or "0")
                  for c in pod.get("containers") or []), Decimal(0))
    return {"cpu": str(cpu), "memory": str(memory)}


def pod_table(metrics: list[dict[str, Any]], *, containers: bool, with_namespace: bool,
              sort_by: str | None, no_headers: bool, total: bool = False) -> str:
    """kubectl's pod table: a line per pod (or per container with `containers`), and with
    `total` kubectl's `--sum` lines under the usage columns."""
    if sort_by:
        metrics = sorted(metrics, key=lambda m: _sort_key(sort_by, _pod_usage(m)))
    elif with_namespace:
        metrics = sorted(metrics, key=lambda m: (m["metadata"].get("namespace", ""),
                                                 m["metadata"]["name"]))
    else:
        metrics = sorted(metrics, key=lambda m: m["metadata"]["name"])
    header = (["NAMESPACE"] if with_namespace else []) + (["POD"] if containers else [])
    lines = [] if no_headers else [[*header, *POD_COLUMNS]]
    for m in metrics:
        prefix = [m["metadata"].get("namespace", "")] if with_namespace else []
        if containers:
            members = m.get("containers") or []
            if sort_by:
                members = sorted(members, key=lambda c: _sort_key(sort_by, c["usage"]))
            lines += [[*prefix, m["metadata"]["name"], c["name"], *_usage_cells(c["usage"])]
                      for c in members]
        else:
            lines.append([*prefix, m["metadata"]["name"], *_usage_cells(_pod_usage(m))])
    if total:
        width = len(header) + len(POD_COLUMNS)
        everything = {"containers": [c for m in metrics for c in m.get("containers") or []]}
        lines.append([*[""] * (width - 2), "________", "________"])
        lines.append([*[""] * (width - 2), *_usage_cells(_pod_usage(everything))])
    return render(lines)


def _check_sort(sort_by: str | None) -> None:
    if sort_by and sort_by not in SORT_KEYS:
        fail("error: --sort-by accepts only cpu or memory")


def _check_name(name: str | None, selector: str | None) -> None:
    if name and selector:
        fail("error: only one of NAME or --selector can be provided")


ALIASES = {"nodes": "node", "no": "node", "pods": "pod", "po": "pod"}


class _AliasedGroup(click.Group):
    """A group whose commands answer to kubectl's aliases too (`top nodes`, `top po`)."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, ALIASES.get(cmd_name, cmd_name))


@click.group("top", cls=_AliasedGroup)
def top() -> None:
    """Display resource (CPU/memory) usage of nodes or pods."""


@top.command("node")
@click.argument("name", required=False)
@click.option("-l", "--selector", default=None, help="Label selector to filter on.")
@click.option("--sort-by", default=None, help="Sort by cpu or memory.")
@click.option("--no-headers", is_flag=True, help="Print no header line.")
@click.option("--show-capacity", is_flag=True,
              help="Percentages of the nodes' capacity instead of their allocatable.")
@pass_context
@handle_errors
def top_node(ctx: CliContext, name: str | None, selector: str | None, sort_by: str | None,
             no_headers: bool, show_capacity: bool) -> None:
    """Display resource (CPU/memory) usage of nodes."""
    _check_sort(sort_by)
    _check_name(name, selector)
    client = ctx.client()
    _metrics_available(client)
    params = {"labelSelector": selector} if selector else None
    if name:
        metrics = [client.request("GET", f"{METRICS}/nodes/{name}")]
        nodes = [client.request("GET", f"/api/v1/nodes/{name}")]
    else:
        metrics = client.request("GET", f"{METRICS}/nodes", params=params).get("items") or []
        if not metrics:
            fail("error: metrics not available yet")
        nodes = client.request("GET", "/api/v1/nodes", params=params).get("items") or []
    field = "capacity" if show_capacity else "allocatable"
    available = {n["metadata"]["name"]: (n.get("status") or {}).get(field) or {} for n in nodes}
    click.echo(node_table(metrics, available, sort_by=sort_by, no_headers=no_headers), nl=False)


@top.command("pod")
@click.argument("name", required=False)
@click.option("-A", "--all-namespaces", is_flag=True, help="Across all namespaces.")
@click.option("-l", "--selector", default=None, help="Label selector to filter on.")
@click.option("--field-selector", default=None, help="Field selector to filter on.")
@click.option("--containers", is_flag=True, help="Print each container's usage.")
@click.option("--sort-by", default=None, help="Sort by cpu or memory.")
@click.option("--no-headers", is_flag=True, help="Print no header line.")
@click.option("--sum", "total", is_flag=True, help="Print the sum of the usage.")
@pass_context
@handle_errors
def top_pod(ctx: CliContext, name: str | None, all_namespaces: bool, selector: str | None,
            field_selector: str | None, containers: bool, sort_by: str | None,
            no_headers: bool, total: bool) -> None:
    """Display resource (CPU/memory) usage of pods."""
    _check_sort(sort_by)
    _check_name(name, selector)
    client = ctx.client()
    _metrics_available(client)
    namespace = None if all_namespaces else ctx.namespace
    base = f"{METRICS}/namespaces/{namespace}/pods" if namespace else f"{METRICS}/pods"
    params = {k: v for k, v in (("labelSelector", selector),
                                ("fieldSelector", field_selector)) if v}
    if name:
        metrics = [client.request("GET", f"{base}/{name}")]
    else:
        metrics = client.request("GET", base, params=params or None).get("items") or []
    if not metrics:
        _verify_empty(client, namespace, params)
        click.echo("No resources found" if namespace is None
                   else f"No resources found in {namespace} namespace.", err=True)
        return
    click.echo(pod_table(metrics, containers=containers, with_namespace=all_namespaces,
                         sort_by=sort_by, no_headers=no_headers, total=total), nl=False)


def _verify_empty(client: RestClient, namespace: str | None, params: dict[str, str]) -> None:
    """No metrics: an error if there are pods (their metrics are not there yet), as kubectl."""
    path = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
    if client.request("GET", path, params=params or None).get("items"):
        fail("error: metrics not available yet")
