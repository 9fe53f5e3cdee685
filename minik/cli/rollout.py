"""`minik scale`, `minik set image` and `minik rollout ...`: kubectl's workload verbs.

Each sends what kubectl sends (shared/reference/kubectl-wire.md §3.6, §5):
scale merge-patches the `scale` subresource; set image, rollout restart and
pause/resume send strategic merge patches with their kubectl field
managers; undo JSON-patches the deployment's template with the chosen
ReplicaSet's (its `pod-template-hash` label removed). History is read from
the ReplicaSets the deployment controls, by their revision annotation.
`rollout status` follows the deployment until kubectl's four conditions
hold and exits 1 on ProgressDeadlineExceeded or after `--timeout`.
StatefulSets and DaemonSets have their own status, history and undo
(`rollout_revisions`); restart is the same patch for all three kinds.
Output lines and exit codes are kubectl's.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import click

from minik.api.resources import REGISTRY, ResourceType
from minik.api.revisions import HASH_LABEL, REVISION, equal_ignore_hash, revision
from minik.cli import rollout_revisions as revisions
from minik.cli.apply import SMP
from minik.cli.context import CliContext, fail, handle_errors, pass_context
from minik.cli.describe import PrefixWriter
from minik.cli.describe_pod import describe_template
from minik.cli.describe_workloads import selector_string
from minik.cli.label import CHANGE_CAUSE, MERGE_PATCH
from minik.cli.printing import compact_json
from minik.cli.targets import parse_args
from minik.client.paths import collection_path, object_path
from minik.client.rest import RestClient

JSON_PATCH = "application/json-patch+json"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
STATUS_POLL = 0.5
SCALABLE = ("Deployment", "ReplicaSet", "StatefulSet")


def _one(args: tuple[str, ...], verb: str) -> tuple[ResourceType, str]:
    """`TYPE NAME` or `TYPE/NAME`, exactly one object."""
    targets = parse_args(args)
    if len(targets) != 1 or len(targets[0].names) != 1:
        fail(f"error: {verb} needs exactly one resource, as <type>/<name> or <type> <name>")
    return targets[0].rt, targets[0].names[0]


def _deployment(args: tuple[str, ...], verb: str,
                kinds: tuple[str, ...] = ("Deployment",)) -> tuple[ResourceType, str]:
    rt, name = _one(args, verb)
    if rt.kind not in kinds:
        fail(f'error: no {verb.split()[-1]} support for kind "{rt.kind}"')
    return rt, name


ROLLING = ("Deployment", "StatefulSet", "DaemonSet")
REVISIONED = ("StatefulSet", "DaemonSet")
"""Kinds whose history is ControllerRevisions."""
VIEWERS = {"StatefulSet": revisions.stateful_set_status_message,
           "DaemonSet": revisions.daemon_set_status_message}


def _patch(client: RestClient, path: str, body: Any, content_type: str,
           manager: str | None = None) -> Any:
    params = {"fieldManager": manager} if manager else None
    return client.request("PATCH", path, params=params, body=compact_json(body).encode(),
                          content_type=content_type)


@click.command()
@click.argument("args", nargs=-1, required=True)
@click.option("--replicas", type=int, required=True, help="The new desired number of replicas.")
@pass_context
@handle_errors
def scale(ctx: CliContext, args: tuple[str, ...], replicas: int) -> None:
    """Set a new size for a Deployment, ReplicaSet or StatefulSet."""
    if replicas < 0:
        fail("error: The --replicas=COUNT flag is required, and COUNT must be greater than or "
             "equal to 0")
    namespace = ctx.namespace
    client = ctx.client()
    for target in parse_args(args):
        if target.rt.kind not in SCALABLE:
            fail(f"error: cannot scale {target.rt.qualified_kind}")
        for name in target.names:
            _patch(client, object_path(target.rt, namespace, name, "scale"),
                   {"spec": {"replicas": replicas}}, MERGE_PATCH)
            click.echo(f"{target.rt.qualified_kind}/{name} scaled")


@click.group("set")
def set_group() -> None:
    """Change fields of existing objects."""


@set_group.command("image")
@click.argument("args", nargs=-1, required=True)
@pass_context
@handle_errors
def set_image(ctx: CliContext, args: tuple[str, ...]) -> None:
    """Update container images: minik set image deployment/web web=minik/web:v2."""
    resources = tuple(a for a in args if "=" not in a)
    images = dict(a.split("=", 1) for a in args if "=" in a)
    if not images:
        fail("error: at least one image update is required")
    rt, name = _one(resources, "set image")
    path = object_path(rt, ctx.namespace, name)
    client = ctx.client()
    obj = client.request("GET", path)
    _patch(client, path, _image_patch(obj, images), SMP, "kubectl-set")
    click.echo(f"{rt.qualified_kind}/{name} image updated")


def _image_patch(obj: dict[str, Any], images: dict[str, str]) -> dict[str, Any]:
    """The SMP that sets the images (`*`: every container), as kubectl builds it."""
    path = {"Pod": ("spec",), "CronJob": ("spec", "jobTemplate", "spec", "template", "spec")}
    keys = path.get(obj.get("kind", ""), ("spec", "template", "spec"))
    pod_spec = obj
    for key in keys:
        pod_spec = pod_spec.get(key) or {}
    patch: dict[str, Any] = {}
    named: set[str] = set()
    for field in ("initContainers", "containers"):
        containers = pod_spec.get(field) or []
        changed = [{"image": images.get(c["name"], images.get("*")), "name": c["name"]}
                   for c in containers if c["name"] in images or "*" in images]
        if changed:
            patch[f"$setElementOrder/{field}"] = [{"name": c["name"]} for c in containers]
            patch[field] = changed
            named.update(c["name"] for c in changed)
    missing = [n for n in images if n != "*" and n not in named]
    if missing:
        fail(f'error: unable to find container named "{missing[0]}"')
    for key in reversed(keys):
        patch = {key: patch}
    return patch


@click.group()
def rollout() -> None:
    """Manage the rollout of a Deployment, StatefulSet or DaemonSet."""


@rollout.command("status")
@click.argument("args", nargs=-1, required=True)
@click.option("--timeout", default="0s", help="How long to wait (0 waits forever), e.g. 5m.")
@click.option("-w", "--watch", default=True, help="Wait until the rollout is done.")
@pass_context
@handle_errors
def rollout_status(ctx: CliContext, args: tuple[str, ...],
                   timeout: str, watch: bool) -> None:
    """Wait for a deployment's rollout to finish; exit 1 if it cannot."""
    rt, name = _deployment(args, "rollout status", ROLLING)
    viewer = VIEWERS.get(rt.kind, status_message)
    path = object_path(rt, ctx.namespace, name)
    client = ctx.client()
    limit = _seconds(timeout)
    deadline = time.monotonic() + limit if limit else None
    said = ""
    while True:
        message, done = viewer(client.request("GET", path))
        if message != said:
            click.echo(message)
            said = message
        if done or not watch:
            return
        if deadline is not None and time.monotonic() >= deadline:
            fail("error: timed out waiting for the condition")
        time.sleep(STATUS_POLL)


def _seconds(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    text = text.strip()
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        fail(f'error: invalid argument "{text}" for "--timeout" flag: time: invalid duration')


def status_message(d: dict[str, Any]) -> tuple[str, bool]:
    """kubectl's DeploymentStatusViewer: the line to print and whether the rollout is done."""
    name = d["metadata"]["name"]
    spec, status = d.get("spec") or {}, d.get("status") or {}
    waiting = f'Waiting for deployment "{name}" rollout to finish: '
    if d["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
        return "Waiting for deployment spec update to be observed...", False
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and \
                condition.get("reason") == "ProgressDeadlineExceeded":
            fail(f'error: deployment "{name}" exceeded its progress deadline')
    wanted = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    if updated < wanted:
        return f"{waiting}{updated} out of {wanted} new replicas have been updated...", False
    if status.get("replicas", 0) > updated:
        old = status.get("replicas", 0) - updated
        return f"{waiting}{old} old replicas are pending termination...", False
    if status.get("availableReplicas", 0) < updated:
        available = status.get("availableReplicas", 0)
        return f"{waiting}{available} of {updated} updated replicas are available...", False
    return f'deployment "{name}" successfully rolled out', True


def _history(client: RestClient, d: dict[str, Any]) -> list[dict[str, Any]]:
    """The ReplicaSets the deployment controls, oldest revision first."""
    rs_type = REGISTRY.get("replicasets")
    assert rs_type is not None
    selector = selector_string(d["spec"].get("selector"))
    listed = client.request("GET", collection_path(rs_type, d["metadata"].get("namespace")),
                            params={"labelSelector": selector})
    uid = d["metadata"]["uid"]
    owned = [rs for rs in listed.get("items") or []
             if any(ref.get("uid") == uid and ref.get("controller")
                    for ref in rs["metadata"].get("ownerReferences") or [])]
    return sorted(owned, key=revision)


@rollout.command("history")
@click.argument("args", nargs=-1, required=True)
@click.option("--revision", "wanted", type=int, default=0, help="Show this revision's template.")
@pass_context
@handle_errors
def rollout_history(ctx: CliContext, args: tuple[str, ...],
                    wanted: int) -> None:
    """List a deployment's revisions, or show one of them."""
    rt, name = _deployment(args, "rollout history", ROLLING)
    client = ctx.client()
    d = client.request("GET", object_path(rt, ctx.namespace, name))
    if rt.kind in REVISIONED:
        revisions.show_history(client, rt, d, wanted)
        return
    history = _history(client, d)
    if not history:
        click.echo("No rollout history found.")
        return
    if wanted:
        rs = next((r for r in history if revision(r) == wanted), None)
        if rs is None:
            fail("error: unable to find the specified revision")
        w = PrefixWriter()
        describe_template(w, _without_hash(rs["spec"]["template"]))
        click.echo(f"{rt.qualified_kind}/{name} with revision #{wanted}")
        click.echo(w.raw())
        return
    click.echo(f"{rt.qualified_kind}/{name} ")
    rows = [("REVISION", "CHANGE-CAUSE")] + [
        (str(revision(rs)), (rs["metadata"].get("annotations") or {}).get(CHANGE_CAUSE, "<none>"))
        for rs in history]
    width = max(len(r[0]) for r in rows)
    for number, cause in rows:
        click.echo(f"{number.ljust(width)}  {cause}")
    click.echo("")


def _without_hash(template: dict[str, Any]) -> dict[str, Any]:
    labels = {k: v for k, v in (template.get("metadata") or {}).get("labels", {}).items()
              if k != HASH_LABEL}
    return {**template, "metadata": {**(template.get("metadata") or {}), "labels": labels}}


@rollout.command("undo")
@click.argument("args", nargs=-1, required=True)
@click.option("--to-revision", type=int, default=0, help="The revision to go back to.")
@pass_context
@handle_errors
def rollout_undo(ctx: CliContext, args: tuple[str, ...],
                 to_revision: int) -> None:
    """Go back to an earlier revision (by default the one before the current)."""
    rt, name = _deployment(args, "rollout undo", ROLLING)
    if rt.kind in REVISIONED:
        revisions.undo(ctx.client(), rt, ctx.namespace, name, to_revision)
        return
    path = object_path(rt, ctx.namespace, name)
    client = ctx.client()
    d = client.request("GET", path)
    history = _history(client, d)
    if to_revision:
        rs = next((r for r in history if revision(r) == to_revision), None)
        if rs is None:
            fail(f"error: unable to find specified revision {to_revision} in history")
    else:
        if len(history) < 2:
            fail(f'error: no rollout history found for deployment "{name}"')
        rs = history[-2]
    template = _without_hash(rs["spec"]["template"])
    if equal_ignore_hash(template, d["spec"]["template"]):
        click.echo(f"{rt.qualified_kind}/{name} skipped rollback (current template already "
                   f"matches revision {revision(rs)})")
        return
    annotations = dict(d["metadata"].get("annotations") or {})
    cause = (rs["metadata"].get("annotations") or {}).get(CHANGE_CAUSE)
    if cause is not None:
        annotations[CHANGE_CAUSE] = cause
    annotations.pop(REVISION, None)
    _patch(client, path, [{"op": "replace", "path": "/spec/template", "value": template},
                          {"op": "replace", "path": "/metadata/annotations",
                           "value": annotations}], JSON_PATCH)
    click.echo(f"{rt.qualified_kind}/{name} rolled back")


@rollout.command("restart")
@click.argument("args", nargs=-1, required=True)
@pass_context
@handle_errors
def rollout_restart(ctx: CliContext, args: tuple[str, ...]) -> None:
    """Restart a deployment's pods with a rolling update."""
    rt, name = _deployment(args, "rollout restart", ROLLING)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
    _patch(ctx.client(), object_path(rt, ctx.namespace, name), body,
           SMP, "kubectl-rollout")
    click.echo(f"{rt.qualified_kind}/{name} restarted")


def _pause_command(verb: str, paused: bool) -> click.Command:
    @click.command(verb, help=f"{verb.capitalize()} a deployment's rollout.")
    @click.argument("args", nargs=-1, required=True)
    @pass_context
    @handle_errors
    def command(ctx: CliContext, args: tuple[str, ...]) -> None:
        rt, name = _deployment(args, f"rollout {verb}")
        path = object_path(rt, ctx.namespace, name)
        client = ctx.client()
        if bool(client.request("GET", path)["spec"].get("paused")) == paused:
            plural = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
            fail(f'error: {plural} "{name}" is {"already" if paused else "not"} paused')
        _patch(client, path, {"spec": {"paused": True if paused else None}}, SMP,
               "kubectl-rollout")
        click.echo(f"{rt.qualified_kind}/{name} {verb}d")

    return command


rollout.add_command(_pause_command("pause", True))
rollout.add_command(_pause_command("resume", False))
