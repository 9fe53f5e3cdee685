"""`minik delete`: remove objects named by argument, manifest, selector or `--all`.

One DELETE per object with a DeleteOptions body (`propagationPolicy`, and
`gracePeriodSeconds` when asked), as kubectl sends it; selectors and
`--all` list first, then delete what the list returned. With `--wait` (the
default) the command then reads each object until it is gone (404, or
replaced by a new object under the same name), bounded by `--timeout`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from minik.api.errors import ApiError
from minik.api.resources import ResourceType
from minik.cli.apply import ApplyError, load_manifests, report_errors
from minik.cli.context import CliContext, fail, handle_errors, pass_context
from minik.cli.targets import (
    Target,
    no_mapping_error,
    object_namespace,
    parse_args,
    rt_for_object,
)
from minik.client.paths import collection_path, object_path

if TYPE_CHECKING:
    from minik.client.rest import RestClient

CASCADE = {"background": "Background", "true": "Background", "orphan": "Orphan",
           "false": "Orphan", "foreground": "Foreground"}
FORCE_WARNING = ("Warning: Immediate deletion does not wait for confirmation that the running "
                 "resource has been terminated. The resource may continue to run on the cluster "
                 "indefinitely.")
NO_NAME = "error: resource(s) were provided, but no name was specified"
NO_ARGS = ("error: You must provide one or more resources by argument or filename.\n"
           "Example resource specifications include:\n   '-f rsrc.yaml'\n   "
           "'--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'")


@dataclass(frozen=True)
class Victim:
    """One object to delete."""

    rt: ResourceType
    namespace: str | None
    name: str
    source: str = ""

    @property
    def path(self) -> str:
        return object_path(self.rt, self.namespace, self.name)

    def describe(self, operation: str) -> str:
        return f'{self.rt.qualified_kind} "{self.name}" {operation}'


def parse_duration(text: str) -> float:
    """Go durations as kubectl takes them: `0`, `30s`, `2m`, `1h30m`, `500ms`."""
    if text in ("0", ""):
        return 0.0
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        fail(f'error: invalid argument "{text}" for "--timeout" flag: time: invalid duration '
             f'"{text}"')
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


def grace_period(grace: int, *, now: bool, force: bool) -> int:
    """kubectl's rules: --now is 1s, 0 without --force becomes 1, --force defaults to 0."""
    if now:
        if grace != -1:
            fail("error: --now and --grace-period cannot be specified together")
        return 1
    if grace == 0 and not force:
        return 1
    if force and grace < 0:
        return 0
    return grace


def delete_options(cascade: str, grace: int, *, dry_run: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"dryRun": ["All"]} if dry_run else {}
    if grace >= 0:
        body["gracePeriodSeconds"] = grace
    body["propagationPolicy"] = CASCADE[cascade]
    return body


def victims_from_targets(client: RestClient, targets: list[Target], namespace: str | None, *,
                         selector: str | None, field_selector: str | None,
                         everything: bool) -> list[Victim]:
    victims: list[Victim] = []
    for target in targets:
        ns = namespace if target.rt.namespaced else None
        if target.names and (selector or field_selector or everything):
            fail("error: name cannot be provided when a selector is specified")
        if target.names:
            victims += [Victim(target.rt, ns, name) for name in target.names]
            continue
        if not (selector or field_selector or everything):
            fail(NO_NAME)
        params = {k: v for k, v in (("labelSelector", selector),
                                    ("fieldSelector", field_selector)) if v}
        listed = client.request("GET", collection_path(target.rt, ns), params=params)
        for item in listed.get("items") or []:
            meta = item.get("metadata") or {}
            victims.append(Victim(target.rt, meta.get("namespace") or None, str(meta["name"])))
    return victims


def victims_from_files(filenames: tuple[str, ...], recursive: bool,
                       default_ns: str) -> tuple[list[Victim], list[ApplyError]]:
    victims, errors = [], []
    for manifest in load_manifests(filenames, recursive, "delete"):
        rt = rt_for_object(manifest.obj)
        if rt is None:
            errors.append(ApplyError(no_mapping_error(manifest.obj, manifest.source)))
            continue
        victims.append(Victim(rt, object_namespace(rt, manifest.obj, default_ns),
                              manifest.name, manifest.source))
    return victims, errors


def wait_gone(client: RestClient, victims: list[tuple[Victim, str | None]], timeout: float,
              *, clock: Callable[[], float] = time.monotonic,
              sleep: Callable[[float], None] = time.sleep) -> list[Victim]:
    """Read each object until it is gone; those still there at the deadline."""
    deadline = clock() + timeout if timeout > 0 else None
    pending = list(victims)
    delay = 0.05
    while pending:
        pending = [(v, uid) for v, uid in pending if not _gone(client, v, uid)]
        if not pending:
            break
        if deadline is not None and clock() >= deadline:
            return [v for v, _ in pending]
        sleep(delay)
        delay = min(delay * 2, 1.0)
    return []


def _gone(client: RestClient, victim: Victim, uid: str | None) -> bool:
    try:
        live = client.request("GET", victim.path)
    except ApiError as e:
        if e.code == 404:
            return True
        raise
    return bool(uid) and (live.get("metadata") or {}).get("uid") != uid


def _deleted_uid(response: Any) -> str | None:
    """The uid of what a DELETE removed: the object's, or a success Status's details."""
    if not isinstance(response, dict):
        return None
    if response.get("kind") == "Status":
        return (response.get("details") or {}).get("uid")
    return (response.get("metadata") or {}).get("uid")


def _error(victim: Victim, error: ApiError) -> ApplyError:
    if not victim.source:
        return ApplyError(error.message, error)
    message = f'error when deleting "{victim.source}": {error.message}'
    return ApplyError(message, ApiError(error.code, error.reason, message, error.details))


def run_delete(ctx: CliContext, args: tuple[str, ...], o: dict[str, Any]) -> None:
    selecting = o["all"] or o["selector"] or o["field_selector"]
    if o["all"] and (o["selector"] or o["field_selector"]):
        fail("error: cannot set --all and --selector at the same time")
    if selecting:
        o["ignore_not_found"] = True
    grace = grace_period(o["grace_period"], now=o["now"], force=o["force"])
    if o["force"] and grace == 0:
        click.echo(FORCE_WARNING, err=True)
    default_ns = ctx.namespace
    namespace = None if o["all_namespaces"] else default_ns
    client = ctx.client()
    unmapped: list[ApplyError] = []
    if o["filenames"]:
        victims, unmapped = victims_from_files(o["filenames"], o["recursive"], default_ns)
    elif args:
        victims = victims_from_targets(
            client, parse_args(args), namespace, selector=o["selector"],
            field_selector=o["field_selector"], everything=o["all"])
        if not victims and selecting:
            click.echo("No resources found")
            return
    else:
        fail(NO_ARGS)
    errors: list[ApplyError] = []
    deleted = delete_all(client, victims, o, grace, errors, ctx)
    if o["wait"] and deleted:
        for victim in wait_gone(client, deleted, parse_duration(o["timeout"])):
            errors.append(ApplyError("timed out waiting for the condition on "
                                     f"{victim.rt.qualified_name}/{victim.name}"))
    report_errors(errors + unmapped)


def delete_all(client: RestClient, victims: list[Victim], o: dict[str, Any], grace: int,
               errors: list[ApplyError], ctx: CliContext) -> list[tuple[Victim, str | None]]:
    dry_run = o["dry_run"] == "server"
    body = delete_options(o["cascade"], grace, dry_run=dry_run)
    suffix = " (server dry run)" if dry_run else ""
    deleted = []
    for victim in victims:
        try:
            response = client.request("DELETE", victim.path, body=body)
        except ApiError as e:
            if not (e.code == 404 and o["ignore_not_found"]):
                errors.append(_error(victim, e))
            continue
        finally:
            ctx.flush_warnings()
        operation = "force deleted" if grace == 0 else "deleted"
        click.echo(f"{victim.rt.qualified_kind}/{victim.name}" if o["output"] == "name"
                   else victim.describe(operation + suffix))
        if not dry_run:
            deleted.append((victim, _deleted_uid(response)))
    return deleted


@click.command("delete")
@click.argument("args", nargs=-1)
@click.option("-f", "--filename", "filenames", multiple=True, help="Delete what these name.")
@click.option("-R", "--recursive", is_flag=True, help="Read directories recursively.")
@click.option("-l", "--selector", help="Delete objects matching this label selector.")
@click.option("--field-selector", help="Delete objects matching this field selector.")
@click.option("--all", "all", is_flag=True, help="Delete every object of the types given.")
@click.option("-A", "--all-namespaces", is_flag=True, help="In all namespaces.")
@click.option("--cascade", default="background", type=click.Choice(sorted(CASCADE)),
              help="background, foreground or orphan dependents.")
@click.option("--grace-period", type=int, default=-1, help="Seconds to let pods stop.")
@click.option("--now", is_flag=True, help="Same as --grace-period=1.")
@click.option("--force", is_flag=True, help="Remove immediately (with --grace-period=0).")
@click.option("--ignore-not-found", is_flag=True, help="Missing objects are not an error.")
@click.option("--wait", type=click.BOOL, default=True, is_flag=False, flag_value=True,
              help="Wait until the objects are gone (default true).")
@click.option("--timeout", default="120s", help="How long to wait, e.g. 60s; 0 = forever.")
@click.option("-o", "--output", type=click.Choice(["name"]), help="Print only kind/name.")
@click.option("--dry-run", type=click.Choice(["none", "server"]), default="none")
@pass_context
@handle_errors
def delete(ctx: CliContext, args: tuple[str, ...], **opts: Any) -> None:
    """Delete resources by name, manifest, label selector or --all."""
    run_delete(ctx, args, opts)
