"""`minik cordon`, `uncordon` and `drain`: take a node out of scheduling, and empty it.

As kubectl's `cordon`/`drain` (`k8s.io/kubectl/pkg/drain`): cordon sends a
strategic merge patch of `spec.unschedulable`. Drain cordons, lists the
node's pods (`fieldSelector=spec.nodeName=<node>`) and sorts them as
kubectl's filters do: mirror pods are skipped; DaemonSet pods are skipped
with `--ignore-daemonsets` (an error otherwise); pods with emptyDir volumes
need `--delete-emptydir-data`, pods without a controller `--force` (finished
pods need neither). Refusals are all reported at once and nothing is
evicted. Then every pod is evicted through `pods/<name>/eviction` (one
attempt per pod per round): a 429 (a PodDisruptionBudget says no) is
retried after 5 s, and an evicted pod is waited for until it is gone (or
replaced by a pod of another uid). `--timeout` bounds the whole drain.
Output lines are kubectl's: `node/x cordoned`, `evicting pod ns/p`,
`pod/p evicted`, `node/x drained`; warnings and errors go to stderr.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import click

from minik.api.durations import format_duration
from minik.api.errors import ApiError
from minik.cli.context import CliContext, fail, handle_errors, pass_context
from minik.cli.delete import parse_duration
from minik.cli.printing import compact_json
from minik.client.rest import RestClient

STRATEGIC = "application/strategic-merge-patch+json"
RETRY_AFTER = 5.0
POLL = 1.0
MIRROR = "kubernetes.io/config.mirror"
DAEMONSET_FATAL = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)"
DAEMONSET_WARNING = "ignoring DaemonSet-managed Pods"
LOCAL_STORAGE_FATAL = "Pods with local storage (use --delete-emptydir-data to override)"
LOCAL_STORAGE_WARNING = "deleting Pods with local storage"
UNMANAGED_FATAL = "cannot delete Pods that declare no controller (use --force to override)"
UNMANAGED_WARNING = "deleting Pods that declare no controller"


def go_duration(seconds: float) -> str:
    """Go's `time.Duration.String` for whole seconds: `5s`, `1m0s`, `1h2m3s`."""
    return format_duration(int(seconds))


def node_path(name: str) -> str:
    return f"/api/v1/nodes/{name}"


def set_schedulable(client: RestClient, name: str, *, cordon: bool) -> str:
    """Patch `spec.unschedulable`; the line kubectl prints."""
    node = client.request("GET", node_path(name))
    verb = "cordoned" if cordon else "uncordoned"
    if bool((node.get("spec") or {}).get("unschedulable")) == cordon:
        return f"node/{name} already {verb}"
    patch = {"spec": {"unschedulable": True if cordon else None}}
    client.request("PATCH", node_path(name), body=compact_json(patch).encode(),
                   content_type=STRATEGIC)
    return f"node/{name} {verb}"


@dataclass(frozen=True)
class DrainFlags:
    ignore_daemonsets: bool = False
    delete_emptydir_data: bool = False
    force: bool = False


@dataclass
class Plan:
    """Pods to evict, and kubectl's warnings and refusals, each grouped by its message."""

    evict: list[dict[str, Any]] = field(default_factory=list)
    warnings: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    refusals: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def warning_text(self) -> str:
        return "; ".join(f"{m}: {', '.join(p)}" for m, p in self.warnings.items())

    def errors(self) -> list[str]:
        return [f"cannot delete {m}: {', '.join(p)}" for m, p in self.refusals.items()]


def _controller(pod: dict[str, Any]) -> dict[str, Any] | None:
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), None)


def plan_drain(client: RestClient, pods: list[dict[str, Any]], flags: DrainFlags) -> Plan:
    """kubectl's filters, in its order: daemonset, mirror, local storage, unreplicated."""
    plan = Plan()
    for pod in pods:
        md = pod["metadata"]
        shown = f"{md.get('namespace')}/{md['name']}"
        ref = _controller(pod)
        if ref is not None and ref.get("kind") == "DaemonSet":
            if _daemonset_gone(client, md.get("namespace", ""), ref["name"]) and flags.force:
                plan.evict.append(pod)
            elif flags.ignore_daemonsets:
                plan.warnings[DAEMONSET_WARNING].append(shown)
            else:
                plan.refusals[DAEMONSET_FATAL].append(shown)
            continue
        if MIRROR in (md.get("annotations") or {}):
            continue
        finished = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        if not finished and any("emptyDir" in v for v in (pod.get("spec") or {}).get(
                "volumes") or []):
            if not flags.delete_emptydir_data:
                plan.refusals[LOCAL_STORAGE_FATAL].append(shown)
                continue
            plan.warnings[LOCAL_STORAGE_WARNING].append(shown)
        if not finished and ref is None:
            if not flags.force:
                plan.refusals[UNMANAGED_FATAL].append(shown)
                continue
            plan.warnings[UNMANAGED_WARNING].append(shown)
        plan.evict.append(pod)
    return plan


def _daemonset_gone(client: RestClient, namespace: str, name: str) -> bool:
    try:
        client.request("GET", f"/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}")
    except ApiError as e:
        if e.code == 404:
            return True
        raise
    return False


@dataclass
class Evictions:
    """Evicts the planned pods, retrying refusals, until all are gone or time runs out."""

    client: RestClient
    grace_period: int
    deadline: float | None
    retry_at: dict[str, float] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)

    def run(self, pods: list[dict[str, Any]], timeout: float) -> list[str]:
        """Evict every pod; the errors left when the timeout ran out."""
        for pod in pods:
            key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
            self.pods[key], self.retry_at[key] = pod, 0.0
        while self.retry_at or self.waiting:
            if self.deadline is not None and time.monotonic() >= self.deadline:
                return self._timed_out(timeout)
            for key in [k for k, at in self.retry_at.items() if at <= time.monotonic()]:
                self._evict(key)
            for key in list(self.waiting):
                self._check_gone(key)
            if self.retry_at or self.waiting:
                time.sleep(POLL)
        return []

    def _evict(self, key: str) -> None:
        namespace, name = key.split("/", 1)
        click.echo(f"evicting pod {key}")
        body: dict[str, Any] = {"apiVersion": "policy/v1", "kind": "Eviction",
                                "metadata": {"name": name, "namespace": namespace}}
        if self.grace_period >= 0:
            body["deleteOptions"] = {"gracePeriodSeconds": self.grace_period}
        try:
            self.client.request("POST", f"/api/v1/namespaces/{namespace}/pods/{name}/eviction",
                                body=body)
        except ApiError as e:
            if e.code == 404:
                del self.retry_at[key]
                return
            if e.code != 429:
                raise
            click.echo(f'error when evicting pods/"{name}" -n "{namespace}" (will retry after '
                       f"5s): {e.message}", err=True)
            self.retry_at[key] = time.monotonic() + RETRY_AFTER
            return
        del self.retry_at[key]
        self.waiting[key] = self.pods[key]["metadata"].get("uid", "")

    def _check_gone(self, key: str) -> None:
        namespace, name = key.split("/", 1)
        try:
            pod = self.client.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
        except ApiError as e:
            if e.code != 404:
                raise
            pod = None
        if pod is None or pod["metadata"].get("uid") != self.waiting[key]:
            del self.waiting[key]
            click.echo(f"pod/{name} evicted")

    def _timed_out(self, timeout: float) -> list[str]:
        errors = []
        for key in self.retry_at:
            namespace, name = key.split("/", 1)
            errors.append(f'error when evicting pods/"{name}" -n "{namespace}": global timeout '
                          f"reached: {go_duration(timeout)}")
        for key in self.waiting:
            namespace, name = key.split("/", 1)
            errors.append(f'error when waiting for pod "{name}" in namespace "{namespace}" to '
                          "terminate: context deadline exceeded")
        return errors


def _aggregate(errors: list[str]) -> str:
    return errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]"


def _fail_drain(node: str, errors: list[str]) -> None:
    fail(f'error: unable to drain node "{node}" due to error: {_aggregate(errors)}, continuing '
         f"command...\nThere are pending nodes to be drained:\n {node}\n" + "\n".join(errors))


def drain_node(ctx: CliContext, node: str, flags: DrainFlags, *, grace_period: int,
               timeout: float) -> None:
    client = ctx.client()
    click.echo(set_schedulable(client, node, cordon=True))
    listed = client.request("GET", "/api/v1/pods",
                            params={"fieldSelector": f"spec.nodeName={node}"})["items"]
    plan = plan_drain(client, listed, flags)
    if plan.refusals:
        _fail_drain(node, plan.errors())
    if plan.warnings:
        click.echo(f"Warning: {plan.warning_text()}", err=True)
    deadline = time.monotonic() + timeout if timeout > 0 else None
    errors = Evictions(client, grace_period, deadline).run(plan.evict, timeout)
    if errors:
        pending = sorted(e.split('"')[1] for e in errors)
        click.echo(f'There are pending pods in node "{node}" when an error occurred: '
                   f"{_aggregate(errors)}", err=True)
        for name in pending:
            click.echo(f"pod/{name}", err=True)
        _fail_drain(node, errors)
    click.echo(f"node/{node} drained")


@click.command("cordon")
@click.argument("node")
@pass_context
@handle_errors
def cordon(ctx: CliContext, node: str) -> None:
    """Mark a node unschedulable."""
    click.echo(set_schedulable(ctx.client(), node, cordon=True))


@click.command("uncordon")
@click.argument("node")
@pass_context
@handle_errors
def uncordon(ctx: CliContext, node: str) -> None:
    """Mark a node schedulable again."""
    click.echo(set_schedulable(ctx.client(), node, cordon=False))


@click.command("drain")
@click.argument("node")
@click.option("--ignore-daemonsets", is_flag=True, help="Leave DaemonSet-managed pods alone.")
@click.option("--delete-emptydir-data", is_flag=True,
              help="Evict pods with emptyDir volumes (their data is lost).")
@click.option("--force", is_flag=True, help="Evict pods that no controller manages.")
@click.option("--grace-period", type=int, default=-1,
              help="Seconds each pod gets to stop; -1 uses the pod's own.")
@click.option("--timeout", default="0s", help="How long to drain before giving up (0: forever).")
@pass_context
@handle_errors
def drain(ctx: CliContext, node: str, ignore_daemonsets: bool, delete_emptydir_data: bool,
          force: bool, grace_period: int, timeout: str) -> None:
    """Cordon a node and evict its pods, respecting PodDisruptionBudgets."""
    flags = DrainFlags(ignore_daemonsets, delete_emptydir_data, force)
    drain_node(ctx, node, flags, grace_period=grace_period, timeout=parse_duration(timeout))
