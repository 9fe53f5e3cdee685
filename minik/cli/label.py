"""`minik label` and `minik annotate`: change one metadata map of objects.

Both read each object, compute the new map (`k=v` sets, `k-` removes), and
send a JSON merge patch of just that map (`null` removes a key), with field
manager `kubectl-label` / `kubectl-annotate`. Without `--overwrite` a key
that already has a different value is an error, as in kubectl. The result
line says `labeled`, `unlabeled` or `not labeled` (`annotated` for
annotations), by kubectl's rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import click

from minik.api.errors import ApiError
from minik.cli.apply import ApplyError, report_errors
from minik.cli.context import CliContext, fail, handle_errors, pass_context
from minik.cli.delete import Victim, victims_from_files, victims_from_targets
from minik.cli.printing import compact_json
from minik.cli.targets import parse_args

MERGE_PATCH = "application/merge-patch+json"
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_VALUE = re.compile(rf"^({_NAME})?$")
CHANGE_CAUSE = "kubernetes.io/change-cause"
LABEL_VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


@dataclass(frozen=True)
class MapEdit:
    """Which metadata map, and what to set and remove in it."""

    field: str
    noun: str
    set: dict[str, str]
    remove: tuple[str, ...]


def split_args(args: tuple[str, ...], noun: str) -> tuple[list[str], list[str]]:
    """Resource arguments first, then `k=v` / `k-` changes."""
    resources: list[str] = []
    changes: list[str] = []
    for arg in args:
        if "=" in arg or arg.endswith("-"):
            changes.append(arg)
        elif changes:
            fail(f"error: all resources must be specified before {noun} changes: {arg}")
        else:
            resources.append(arg)
    return resources, changes


def parse_changes(changes: list[str], *, field: str, noun: str) -> MapEdit:
    """kubectl's parsing: label values are checked here, keys by the server."""
    if not changes:
        fail(f"error: at least one {noun} update is required")
    values: dict[str, str] = {}
    remove: list[str] = []
    for change in changes:
        if "=" in change:
            key, _, value = change.partition("=")
            if field == "labels" and "=" in value:
                fail(f"error: invalid {noun} spec: {change}")
            if field == "labels" and not _VALUE.match(value):
                fail(f'error: invalid label value: "{change}": {LABEL_VALUE_RULE}')
            values[key] = value
        else:
            remove.append(change[:-1])
    both = set(values) & set(remove)
    if both:
        if noun == "label":
            fail("error: can not both modify and remove a label in the same command")
        fail("error: can not both modify and remove the following annotation(s) in the same "
             f"command: {', '.join(sorted(both))}")
    return MapEdit(field, noun, values, tuple(remove))


def edit(current: dict[str, str], change: MapEdit, *, overwrite: bool) -> dict[str, Any]:
    """The merge patch of the map; raises ValueError naming conflicting keys."""
    taken = [(k, current[k]) for k, v in change.set.items()
             if k in current and current[k] != v and k != CHANGE_CAUSE]
    if taken and not overwrite:
        if change.field == "labels":
            raise ValueError("\n".join(f"'{k}' already has a value ({v}), and --overwrite is "
                                       "false" for k, v in taken))
        raise ValueError("--overwrite is false but found the following declared "
                         "annotation(s): " + "; ".join(f"'{k}' already has a value ({v})"
                                                        for k, v in taken))
    patch: dict[str, Any] = {k: v for k, v in change.set.items() if current.get(k) != v}
    patch.update({k: None for k in change.remove if k in current})
    return patch


def outcome(change: MapEdit, patch: dict[str, Any], *, overwrite: bool) -> str:
    """kubectl's wording: labeled / unlabeled / not labeled; always `annotated`."""
    if change.field == "annotations":
        return "annotated"
    if not patch:
        return "not labeled"
    removing = all(v is None for v in patch.values())
    return "unlabeled" if removing and not overwrite else "labeled"


def run(ctx: CliContext, args: tuple[str, ...], o: dict[str, Any], *, field: str,
        noun: str, manager: str) -> None:
    resources, changes = split_args(args, noun)
    change = parse_changes(changes, field=field, noun=noun)
    namespace = ctx.namespace
    client = ctx.client()
    problems: list[ApplyError] = []
    if o["filenames"]:
        victims, problems = victims_from_files(o["filenames"], False, namespace)
    elif resources:
        targets = parse_args(resources)
        named = any(t.names for t in targets)
        victims = victims_from_targets(
            client, targets, None if o["all_namespaces"] else namespace,
            selector=None if named else o["selector"], field_selector=None,
            everything=o["all"] and not named)
    else:
        fail("error: one or more resources must be specified as <resource> <name> or "
             "<resource>/<name>")
    for victim in victims:
        problem = update(ctx, victim, change, overwrite=o["overwrite"], manager=manager)
        if problem:
            problems.append(problem)
    report_errors(problems)


def update(ctx: CliContext, victim: Victim, change: MapEdit, *, overwrite: bool,
           manager: str) -> ApplyError | None:
    """Patch one object and print the outcome; the failure otherwise."""
    client = ctx.client()
    try:
        live = client.request("GET", victim.path)
        current = (live.get("metadata") or {}).get(change.field) or {}
        try:
            patch = edit(current, change, overwrite=overwrite)
        except ValueError as e:
            return ApplyError(str(e))
        for key in change.remove:
            if key not in current and change.field == "labels":
                click.echo(f'label "{key}" not found.')
        body = {"metadata": {change.field: patch}} if patch else {}
        client.request("PATCH", victim.path, params={"fieldManager": manager},
                       body=compact_json(body).encode(), content_type=MERGE_PATCH)
    except ApiError as e:
        return ApplyError(e.message, e)
    finally:
        ctx.flush_warnings()
    click.echo(f"{victim.rt.qualified_kind}/{victim.name} "
               f"{outcome(change, patch, overwrite=overwrite)}")
    return None


def _command(name: str, field: str, noun: str, summary: str) -> click.Command:
    @click.command(name, help=summary)
    @click.argument("args", nargs=-1)
    @click.option("--overwrite", is_flag=True, help=f"Allow replacing existing {noun}s.")
    @click.option("--all", "all", is_flag=True, help="Every object of the given types.")
    @click.option("-A", "--all-namespaces", is_flag=True, help="In all namespaces.")
    @click.option("-l", "--selector", help="Only objects matching this label selector.")
    @click.option("-f", "--filename", "filenames", multiple=True, help="Objects from manifests.")
    @pass_context
    @handle_errors
    def command(ctx: CliContext, args: tuple[str, ...], **opts: Any) -> None:
        run(ctx, args, opts, field=field, noun=noun, manager=f"kubectl-{name}")

    return command


label = _command("label", "labels", "label", "Add, change or remove labels of resources.")
annotate = _command("annotate", "annotations", "annotation",
                    "Add, change or remove annotations of resources.")
