"""Output formats of the kubectl-like verbs: tables, YAML, JSON, names.

Human output is the server's Table (`columnDefinitions` + pre-formatted
`rows[].cells`), laid out by `TabWriter`, a port of Go's `text/tabwriter`
(the aligner behind both `kubectl get`, minimum width 6 and padding 3, and
`kubectl describe`, padding 2). Copying its column-block rule exactly is
what makes `describe` output line up the way kubectl's does.

Machine output mirrors kubectl's printers: JSON with 4-space indentation,
sorted keys and HTML-escaped `<>&`; YAML with sorted keys, double-quoted
strings where a plain scalar would read as another type, and literal blocks
for multi-line strings (as go-yaml writes them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from minik.api.resources import ResourceType

GET_MIN_WIDTH = 6
GET_PADDING = 3


class TabWriter:
    """Go's `text/tabwriter` for space padding: align tab-terminated cells."""

    def __init__(self, *, minwidth: int = 0, padding: int = 2, remember: bool = False) -> None:
        self.minwidth = minwidth
        self.padding = padding
        self.remember = remember
        self._remembered: list[int] = []

    def render(self, lines: Sequence[Sequence[str]]) -> str:
        """Lines of cells (the last cell of a line is not aligned) to text."""
        out: list[str] = []
        self._format(lines, [], 0, len(lines), out)
        return "".join(out)

    def render_text(self, text: str) -> str:
        """Like `render`, for text with `\\t` between cells and `\\n` after lines."""
        if not text:
            return ""
        body = text[:-1] if text.endswith("\n") else text
        rendered = self.render([line.split("\t") for line in body.split("\n")])
        return rendered if text.endswith("\n") else rendered[:-1]

    def _format(self, lines: Sequence[Sequence[str]], widths: list[int],
                line0: int, line1: int, out: list[str]) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            self._write(lines, widths, line0, this, out)
            line0 = this
            width = self._start_width(column)
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + self.padding)
                this += 1
            if self.remember:
                self._remember(column, width)
            self._format(lines, [*widths, width], line0, this, out)
            line0 = this
        self._write(lines, widths, line0, line1, out)

    def _start_width(self, column: int) -> int:
        if self.remember and column < len(self._remembered):
            return max(self.minwidth, self._remembered[column])
        return self.minwidth

    def _remember(self, column: int, width: int) -> None:
        while len(self._remembered) <= column:
            self._remembered.append(0)
        self._remembered[column] = max(self._remembered[column], width)

    @staticmethod
    def _write(lines: Sequence[Sequence[str]], widths: list[int], line0: int, line1: int,
               out: list[str]) -> None:
        for line in lines[line0:line1]:
            for j, cell in enumerate(line):
                out.append(cell)
                if j < len(widths) and j < len(line) - 1:
                    out.append(" " * max(widths[j] - len(cell), 0))
            out.append("\n")


@dataclass(frozen=True)
class TableOptions:
    """How `get` lays out a server Table."""

    wide: bool = False
    with_namespace: bool = False
    kind_prefix: str | None = None
    show_labels: bool = False
    label_columns: tuple[str, ...] = ()
    no_headers: bool = False


def cell_text(value: Any) -> str:
    """A Table cell as Go's `fmt.Print` shows it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value is None:
        return "<nil>"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def format_labels(labels: dict[str, str] | None) -> str:
    """`a=b,c=d` sorted by key, `<none>` when empty (labels.FormatLabels)."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def label_column_header(key: str) -> str:
    return key.rsplit("/", 1)[-1].upper()


@dataclass
class TablePrinter:
    """Turns server Tables into header and row cells for a `TabWriter`."""

    options: TableOptions
    printed_header: bool = field(default=False)

    def _visible(self, table: dict[str, Any]) -> list[int]:
        columns = table.get("columnDefinitions") or []
        return [i for i, c in enumerate(columns)
                if self.options.wide or not c.get("priority", 0)]

    def header(self, table: dict[str, Any]) -> list[str]:
        columns = table.get("columnDefinitions") or []
        cells = [str(columns[i].get("name", "")).upper() for i in self._visible(table)]
        if self.options.with_namespace:
            cells.insert(0, "NAMESPACE")
        cells += [label_column_header(k) for k in self.options.label_columns]
        if self.options.show_labels:
            cells.append("LABELS")
        return cells

    def rows(self, table: dict[str, Any]) -> list[list[str]]:
        columns = table.get("columnDefinitions") or []
        visible = self._visible(table)
        result = []
        for row in table.get("rows") or []:
            cells = row.get("cells") or []
            meta = (row.get("object") or {}).get("metadata") or {}
            line = [self._cell(columns[i], cells[i] if i < len(cells) else "") for i in visible]
            if self.options.with_namespace:
                line.insert(0, meta.get("namespace", ""))
            labels = meta.get("labels") or {}
            line += [labels.get(k, "") for k in self.options.label_columns]
            if self.options.show_labels:
                line.append(format_labels(labels))
            result.append(line)
        return result

    def _cell(self, column: dict[str, Any], value: Any) -> str:
        text = cell_text(value)
        if self.options.kind_prefix and column.get("format") == "name":
            return f"{self.options.kind_prefix}/{text}"
        return text

    def lines(self, table: dict[str, Any]) -> list[list[str]]:
        """Header (once, unless --no-headers) and rows; nothing for an empty table."""
        rows = self.rows(table)
        if not rows:
            return []
        if self.printed_header or self.options.no_headers:
            return rows
        self.printed_header = True
        return [self.header(table), *rows]


def _escape_html(text: str) -> str:
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def to_json(obj: Any) -> str:
    """`kubectl -o json`: 4-space indent, sorted keys, trailing newline."""
    return _escape_html(json.dumps(obj, indent=4, sort_keys=True, ensure_ascii=False)) + "\n"


def compact_json(obj: Any) -> str:
    """Go's `json.Marshal` of an unstructured object: compact, sorted, HTML-escaped."""
    return _escape_html(json.dumps(obj, separators=(",", ":"), sort_keys=True,
                                   ensure_ascii=False))


class _GoStyleEmitterMixin:
    event: Any

    def choose_scalar_style(self) -> str:
        style = super().choose_scalar_style()  # type: ignore[misc]
        if style == "'" and not self.event.style and not self.event.implicit[0]:
            return '"'
        return style


class _KubeDumper(_GoStyleEmitterMixin, yaml.SafeDumper):
    """SafeDumper that quotes and folds strings the way kubectl's go-yaml does."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_KubeDumper.add_representer(str, _represent_str)


def to_yaml(obj: Any) -> str:
    """`kubectl -o yaml`: sorted keys, block style."""
    return yaml.dump(obj, Dumper=_KubeDumper, sort_keys=True, default_flow_style=False,
                     allow_unicode=True)


def as_list(items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Several objects as kubectl prints them: a `v1` `List`."""
    return {"apiVersion": "v1", "items": list(items), "kind": "List",
            "metadata": {"resourceVersion": ""}}


def object_name(rt: ResourceType, obj: dict[str, Any]) -> str:
    """`-o name`: `deployment.apps/web`."""
    return f"{rt.qualified_kind}/{(obj.get('metadata') or {}).get('name', '')}"
