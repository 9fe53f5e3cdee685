"""`-o name|yaml|json|jsonpath=|custom-columns=`: fetched objects printed as kubectl prints them.

`minik get` prints a whole read this way, and `minik get -w` each watched
object; both hand over (type, object) pairs.
"""

from __future__ import annotations

from typing import Any

from minik.api.resources import ResourceType
from minik.cli import jsonpath
from minik.cli.context import fail
from minik.cli.printing import (
    GET_MIN_WIDTH,
    GET_PADDING,
    TabWriter,
    as_list,
    object_name,
    to_json,
    to_yaml,
)


def custom_columns(spec: str, objects: list[dict[str, Any]], no_headers: bool) -> str:
    columns = [part.split(":", 1) for part in spec.split(",") if part]
    if any(len(c) != 2 for c in columns):
        fail("error: custom-columns format specified but no custom columns given")
    paths = [jsonpath.parse(jsonpath.relaxed(expr))[0] for _, expr in columns]
    lines = [] if no_headers else [[header for header, _ in columns]]
    for obj in objects:
        cells = [",".join(jsonpath.format_value(v) for v in jsonpath.evaluate(p, obj))
                 for p in paths]
        lines.append([cell or "<none>" for cell in cells])
    return TabWriter(minwidth=GET_MIN_WIDTH, padding=GET_PADDING).render(lines)


def render_objects(output: str, pairs: list[tuple[ResourceType, dict[str, Any]]],
                   *, single: bool, no_headers: bool) -> str:
    """`-o yaml|json|name|jsonpath=|custom-columns=` for fetched objects."""
    if output == "name":
        return "".join(object_name(rt, obj) + "\n" for rt, obj in pairs)
    objects = [obj for _, obj in pairs]
    if output.startswith("custom-columns="):
        return custom_columns(output.split("=", 1)[1], objects, no_headers)
    doc = objects[0] if single and len(objects) == 1 else as_list(objects)
    if output == "yaml":
        return to_yaml(doc)
    if output == "json":
        return to_json(doc)
    template = output.split("=", 1)[1] if "=" in output else ""
    try:
        return jsonpath.render(template, doc)
    except jsonpath.JsonPathError as e:
        fail(f"error: error parsing jsonpath {template}, {e}")
