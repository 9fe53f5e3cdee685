"""`minik get`: list or read objects and print them as kubectl does.

Human output asks the server for a Table (the Accept header kubectl sends)
and prints its pre-formatted cells; every other format asks for full
objects. Several names of one type form one table; several types print one
table each, names prefixed with `kind.group/`, separated by blank lines.
`-w` prints the table, then one row per watch event from the list's
resourceVersion, keeping column widths from growing back and forth.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from minik.api.errors import ApiError
from minik.api.resources import ResourceType
from minik.cli import jsonpath
from minik.cli.context import CliContext, fail, handle_errors, pass_context, server_error_line
from minik.cli.getwatch import watch
from minik.cli.manifests import ManifestError, load
from minik.cli.output import render_objects
from minik.cli.printing import (
    GET_MIN_WIDTH,
    GET_PADDING,
    TableOptions,
    TablePrinter,
    TabWriter,
)
from minik.cli.targets import Target, parse_args, rt_for_object
from minik.client.paths import collection_path, object_path

if TYPE_CHECKING:
    from minik.client.rest import RestClient

ACCEPT_TABLE = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
LIST_CHUNK = 500
NO_TYPE = (
    'You must specify the type of resource to get. Use "minik api-resources" for a complete '
    "list of supported resources.\n\nerror: Required resource not specified.\n"
    "See 'minik get -h' for help and examples"
)


@dataclass
class Query:
    """Where and how to read: namespace (None = all), selectors, Accept."""

    client: RestClient
    namespace: str | None
    selector: str | None = None
    field_selector: str | None = None
    table: bool = False
    sort_by: str | None = None

    @property
    def accept(self) -> str:
        return ACCEPT_TABLE if self.table else "application/json"

    def list_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.selector:
            params["labelSelector"] = self.selector
        if self.field_selector:
            params["fieldSelector"] = self.field_selector
        if self.table and self.sort_by:
            params["includeObject"] = "Object"
        else:
            params["limit"] = LIST_CHUNK
        return params

    def collection(self, rt: ResourceType) -> dict[str, Any]:
        """A whole list (following `continue`), Table rows or items merged."""
        params = self.list_params()
        path = collection_path(rt, self.namespace if rt.namespaced else None)
        result = self.client.request("GET", path, params=params, accept=self.accept)
        key = "rows" if self.table else "items"
        while (result.get("metadata") or {}).get("continue"):
            more = self.client.request(
                "GET", path, accept=self.accept,
                params={**params, "continue": result["metadata"]["continue"]})
            result[key] = (result.get(key) or []) + (more.get(key) or [])
            result["metadata"] = more.get("metadata") or {}
        return result

    def one(self, rt: ResourceType, name: str, namespace: str | None = None) -> dict[str, Any]:
        params = {"includeObject": "Object"} if self.table and self.sort_by else None
        ns = namespace or self.namespace
        return self.client.request("GET", object_path(rt, ns if rt.namespaced else None, name),
                                   params=params, accept=self.accept)


@dataclass
class Fetched:
    """What one target produced: Tables or objects, and NotFound-style errors."""

    rt: ResourceType
    results: list[dict[str, Any]] = field(default_factory=list)
    errors: list[ApiError] = field(default_factory=list)


def fetch(query: Query, target: Target, *, ignore_not_found: bool,
          namespaces: dict[str, str] | None = None) -> Fetched:
    fetched = Fetched(target.rt)
    if not target.names:
        fetched.results.append(query.collection(target.rt))
        return fetched
    for name in target.names:
        try:
            ns = (namespaces or {}).get(name)
            fetched.results.append(query.one(target.rt, name, ns))
        except ApiError as e:
            if not (ignore_not_found and e.code == 404):
                fetched.errors.append(e)
    return fetched


def sort_key(expression: str) -> Any:
    """A sort key over objects from a `--sort-by` JSONPath: numbers first, then text."""
    path = jsonpath.parse(jsonpath.relaxed(expression))[0]

    def key(obj: dict[str, Any]) -> tuple[int, Any]:
        values = jsonpath.evaluate(path, obj)
        value = values[0] if values else ""
        return (0, value) if isinstance(value, (int, float)) else (1, str(value))

    return key


def sort_rows(table: dict[str, Any], expression: str) -> None:
    key = sort_key(expression)
    table["rows"] = sorted(table.get("rows") or [], key=lambda row: key(row.get("object") or {}))


def print_tables(fetched: list[Fetched], options: dict[str, Any], *,
                 all_namespaces: bool) -> bool:
    """Print each type's rows as one aligned table; True if anything was printed."""
    forced = options.pop("with_kind", False)
    with_kind = forced or len([f for f in fetched if f.results]) > 1
    written = False
    for f in fetched:
        printer = TablePrinter(TableOptions(
            with_namespace=all_namespaces and f.rt.namespaced,
            kind_prefix=f.rt.qualified_kind if with_kind else None, **options))
        lines = [line for table in f.results for line in printer.lines(table)]
        if not lines:
            continue
        if written and not options.get("no_headers"):
            click.echo("")
        click.echo(TabWriter(minwidth=GET_MIN_WIDTH, padding=GET_PADDING).render(lines),
                   nl=False)
        written = True
    return written


def _with_type(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": rt.api_version, "kind": rt.kind, **obj}


def objects_of(fetched: list[Fetched]) -> Iterator[tuple[ResourceType, dict[str, Any]]]:
    for f in fetched:
        for result in f.results:
            if "items" in result and result.get("kind", "").endswith("List"):
                yield from ((f.rt, _with_type(f.rt, item)) for item in result["items"] or [])
            else:
                yield f.rt, result


OUTPUTS = ("", "wide", "yaml", "json", "name")


def check_output(output: str) -> None:
    if output in OUTPUTS or (output.split("=", 1)[0] in (
            "jsonpath", "custom-columns") and "=" in output):
        return
    fail(f'error: unable to match a printer suitable for the output format "{output}", '
         "allowed formats are: custom-columns,json,jsonpath,name,wide,yaml")


def targets_from_files(filenames: tuple[str, ...], default_ns: str
                       ) -> tuple[list[Target], dict[str, str]]:
    try:
        manifests = load(filenames)
    except ManifestError as e:
        fail(f"error: {e}")
    targets: list[Target] = []
    namespaces: dict[str, str] = {}
    for m in manifests:
        rt = rt_for_object(m.obj)
        if rt is None:
            fail(f'error: the server doesn\'t have a resource type "{m.kind}"')
        namespaces[m.name] = m.namespace or default_ns
        if targets and targets[-1].rt == rt:
            targets[-1] = Target(rt, (*targets[-1].names, m.name))
        else:
            targets.append(Target(rt, (m.name,)))
    return targets, namespaces


def report(errors: list[ApiError]) -> None:
    for error in errors:
        click.echo(server_error_line(error), err=True)
    if errors:
        sys.exit(1)


def no_resources(targets: list[Target], namespace: str | None) -> None:
    if namespace and all(t.rt.namespaced for t in targets):
        click.echo(f"No resources found in {namespace} namespace.", err=True)
    else:
        click.echo("No resources found", err=True)


def print_raw(ctx: CliContext, path: str) -> None:
    """`--raw /path`: the server's answer, byte for byte."""
    for chunk in ctx.client().stream(path, accept="application/json, */*"):
        sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()


def resolve_targets(ctx: CliContext, args: tuple[str, ...], opts: dict[str, Any],
                    namespace: str | None) -> tuple[list[Target], dict[str, str] | None]:
    if opts["filenames"]:
        return targets_from_files(opts["filenames"], ctx.namespace)
    targets = parse_args(args)
    if not targets:
        click.echo(NO_TYPE, err=True)
        sys.exit(1)
    if namespace is None and any(t.names for t in targets):
        fail("error: a resource cannot be retrieved by name across all namespaces")
    return targets, None


def run_get(ctx: CliContext, args: tuple[str, ...], opts: dict[str, Any]) -> None:
    if opts["raw"]:
        if args:
            fail("error: arguments may not be passed when --raw is specified")
        print_raw(ctx, opts["raw"])
        return
    output = opts["output"] or ""
    check_output(output)
    if opts["show_labels"] and output not in ("", "wide"):
        fail(f"error: --show-labels option cannot be used with {output} printer")
    namespace = None if opts["all_namespaces"] else ctx.namespace
    targets, namespaces = resolve_targets(ctx, args, opts, namespace)
    human = output in ("", "wide")
    query = Query(ctx.client(), namespace, opts["selector"], opts["field_selector"],
                  table=human, sort_by=opts["sort_by"])
    if opts["watch"] or opts["watch_only"]:
        watch(query, targets, opts, output)
        return
    fetched = [fetch(query, t, ignore_not_found=opts["ignore_not_found"],
                     namespaces=namespaces) for t in targets]
    errors = [e for f in fetched for e in f.errors]
    if human:
        print_human(fetched, targets, opts, output, namespace, errors)
    else:
        print_objects(fetched, targets, opts, output)
    report(errors)


def print_objects(fetched: list[Fetched], targets: list[Target], opts: dict[str, Any],
                  output: str) -> None:
    pairs = list(objects_of(fetched))
    if opts["sort_by"]:
        key = sort_key(opts["sort_by"])
        pairs.sort(key=lambda pair: key(pair[1]))
    single = len(targets) == 1 and len(targets[0].names) == 1
    if pairs or not (single or opts["ignore_not_found"]):
        click.echo(render_objects(output, pairs, single=single, no_headers=opts["no_headers"]),
                   nl=False)


def print_human(fetched: list[Fetched], targets: list[Target], opts: dict[str, Any],
                output: str, namespace: str | None, errors: list[ApiError]) -> None:
    if opts["sort_by"]:
        for f in fetched:
            for table in f.results:
                sort_rows(table, opts["sort_by"])
    options = {"wide": output == "wide", "show_labels": opts["show_labels"],
               "label_columns": tuple(opts["label_columns"]), "no_headers": opts["no_headers"],
               "with_kind": opts["show_kind"] or len(targets) > 1}
    written = print_tables(fetched, options, all_namespaces=namespace is None)
    if not written and not errors and not opts["ignore_not_found"]:
        no_resources(targets, namespace)


def get_options(fn: Any) -> Any:
    options = [
        click.argument("args", nargs=-1),
        click.option("-o", "--output", default="",
                     help="wide, yaml, json, name, jsonpath=..., custom-columns=..."),
        click.option("-l", "--selector", help="Label selector, e.g. app=web,tier!=db."),
        click.option("--field-selector", help="Field selector, e.g. status.phase=Running."),
        click.option("-A", "--all-namespaces", is_flag=True, help="All namespaces."),
        click.option("-f", "--filename", "filenames", multiple=True,
                     help="Read the objects named in these manifests."),
        click.option("-w", "--watch", is_flag=True, help="Then watch for changes."),
        click.option("--watch-only", is_flag=True, help="Watch without listing first."),
        click.option("--show-labels", is_flag=True, help="Add a LABELS column."),
        click.option("-L", "--label-columns", multiple=True, help="Label keys as columns."),
        click.option("--show-kind", is_flag=True, help="Prefix names with their kind."),
        click.option("--no-headers", is_flag=True, help="Omit the header line."),
        click.option("--ignore-not-found", is_flag=True, help="Exit 0 for missing objects."),
        click.option("--sort-by", help="JSONPath to sort by, e.g. .metadata.name."),
        click.option("--raw", help="Print the raw answer of this server path."),
    ]
    return functools.reduce(lambda f, decorator: decorator(f), reversed(options), fn)


@click.command("get")
@get_options
@pass_context
@handle_errors
def get(ctx: CliContext, args: tuple[str, ...], **opts: Any) -> None:
    """Display one or many resources."""
    run_get(ctx, args, opts)
