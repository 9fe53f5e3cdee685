"""`minik get -w`: print the current state, then every change as it happens.

Same requests as kubectl: a collection is listed and watched from the
list's resourceVersion; a single object is read, then watched with a
`metadata.name` field selector from resourceVersion 0, whose first event (the
synthetic ADDED of the current state) is skipped because it was printed
already. Tables come one row per event; the writer remembers column widths
so rows stay aligned with the header printed earlier.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from minik.api.errors import ApiError
from minik.api.resources import ResourceType
from minik.cli.context import fail, server_error_line
from minik.cli.output import render_objects
from minik.cli.printing import (
    GET_MIN_WIDTH,
    GET_PADDING,
    TableOptions,
    TablePrinter,
    TabWriter,
    object_name,
    to_json,
    to_yaml,
)
from minik.cli.targets import Target
from minik.client.paths import collection_path

if TYPE_CHECKING:
    from minik.cli.get import Query  # get starts the watch: a type, not an import, back

MULTIPLE = ("error: watch is only supported on individual resources and resource collections "
            "- more than 1 resource was found")


class EventPrinter:
    """Prints watched objects in one output format, keeping table widths."""

    def __init__(self, rt: ResourceType, output: str, options: TableOptions) -> None:
        self.rt = rt
        self.output = output
        self.table = TablePrinter(options)
        self.writer = TabWriter(minwidth=GET_MIN_WIDTH, padding=GET_PADDING, remember=True)
        self.count = 0

    def print(self, obj: dict[str, Any]) -> None:
        if self.output in ("", "wide"):
            lines = self.table.lines(obj)
            if lines:
                click.echo(self.writer.render(lines), nl=False)
        elif str(obj.get("kind", "")).endswith("List"):
            for item in obj.get("items") or []:
                self._print_object({"apiVersion": self.rt.api_version, "kind": self.rt.kind,
                                    **item})
        else:
            self._print_object(obj)
        sys.stdout.flush()

    def _print_object(self, obj: dict[str, Any]) -> None:
        self.count += 1
        if self.output == "name":
            click.echo(object_name(self.rt, obj))
        elif self.output == "json":
            click.echo(to_json(obj), nl=False)
        elif self.output == "yaml":
            click.echo(("---\n" if self.count > 1 else "") + to_yaml(obj), nl=False)
        else:
            click.echo(render_objects(self.output, [(self.rt, obj)], single=True,
                                      no_headers=True), nl=False)


def _watch_params(query: Query, name: str | None, rv: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if query.selector:
        params["labelSelector"] = query.selector
    selectors = [s for s in (query.field_selector, name and f"metadata.name={name}") if s]
    if selectors:
        params["fieldSelector"] = ",".join(selectors)
    params["resourceVersion"] = rv
    params["watch"] = "true"
    return params


def _initial(query: Query, rt: ResourceType, name: str | None) -> tuple[dict[str, Any], str]:
    if name:
        return query.one(rt, name), "0"
    listed = query.collection(rt)
    return listed, str((listed.get("metadata") or {}).get("resourceVersion") or "0")


def watch(query: Query, targets: list[Target], opts: dict[str, Any], output: str) -> None:
    if len(targets) != 1 or len(targets[0].names) > 1:
        fail(MULTIPLE)
    rt = targets[0].rt
    name = targets[0].names[0] if targets[0].names else None
    printer = EventPrinter(rt, output, TableOptions(
        wide=output == "wide", with_namespace=query.namespace is None and rt.namespaced,
        show_labels=opts["show_labels"], label_columns=tuple(opts["label_columns"]),
        no_headers=opts["no_headers"]))
    current, rv = _initial(query, rt, name)
    if not opts["watch_only"]:
        printer.print(current)
    skip_first = name is not None
    path = collection_path(rt, query.namespace if rt.namespaced else None)
    try:
        for event in query.client.watch(path, params=_watch_params(query, name, rv),
                                        accept=query.accept):
            if skip_first:
                skip_first = False
                continue
            obj = event.get("object") or {}
            if event.get("type") == "ERROR":
                error = ApiError.from_status(obj, code=int(obj.get("code") or 500))
                fail(server_error_line(error))
            printer.print(obj)
    except KeyboardInterrupt:
        sys.exit(130)
