"""The JSONPath templates of `kubectl get -o jsonpath=...` and `custom-columns`.

A template is literal text with `{...}` actions. An action is a path
(`.a.b`, `['k.e.y']`, `[0]`, `[-1]`, `[*]`, `[1:3]`, `..name`,
`[?(@.type=="Ready")]`), a quoted string (`{"\\n"}`), or `range PATH` ...
`end`, which repeats its body for every result with `@` (and a leading
`.`) bound to that result. Missing keys print nothing, as kubectl's
`--allow-missing-template-keys=true` does; several results of one path are
joined by spaces; maps and lists print as compact JSON.
"""

from __future__ import annotations

import json
import operator
import re
from dataclasses import dataclass
from typing import Any

from minik.cli.printing import compact_json


class JsonPathError(ValueError):
    """A template that does not parse."""


@dataclass(frozen=True)
class _Text:
    text: str


@dataclass(frozen=True)
class _Path:
    steps: tuple[Any, ...]
    from_root: bool = False


@dataclass(frozen=True)
class _Range:
    path: _Path
    body: tuple[Any, ...]


_OPERATORS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt,
              "<=": operator.le, ">=": operator.ge}
_FILTER = re.compile(r"^\?\(\s*(@[^=!<>]*?)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*\)$")


def _split_template(template: str) -> list[tuple[str, str]]:
    """("text", ...) and ("action", ...) parts; quotes may hold braces."""
    parts: list[tuple[str, str]] = []
    i, start = 0, 0
    while i < len(template):
        if template[i] != "{":
            i += 1
            continue
        if i > start:
            parts.append(("text", template[start:i]))
        j, quote = i + 1, ""
        while j < len(template) and (quote or template[j] != "}"):
            if quote and template[j] == "\\":
                j += 1
            elif template[j] in "\"'":
                quote = "" if quote == template[j] else (quote or template[j])
            j += 1
        if j >= len(template):
            raise JsonPathError(f"unclosed action in {template!r}")
        parts.append(("action", template[i + 1:j].strip()))
        i = start = j + 1
    if start < len(template):
        parts.append(("text", template[start:]))
    return parts


def _unquote(literal: str) -> str:
    if literal[0] == "'":
        literal = '"' + literal[1:-1].replace('"', '\\"') + '"'
    try:
        return json.loads(literal, strict=False)
    except ValueError as e:
        raise JsonPathError(f"invalid string literal {literal}") from e


def _field_name(path: str, i: int) -> tuple[str, int]:
    name = []
    while i < len(path) and path[i] not in ".[":
        if path[i] == "\\" and i + 1 < len(path):
            i += 1
        name.append(path[i])
        i += 1
    return "".join(name), i


def _bracket(path: str, i: int) -> tuple[Any, int]:
    depth, j = 0, i
    while j < len(path):
        if path[j] == "[":
            depth += 1
        elif path[j] == "]":
            depth -= 1
            if depth == 0:
                break
        j += 1
    if j >= len(path):
        raise JsonPathError(f"unterminated [ in {path!r}")
    return _subscript(path[i + 1:j].strip()), j + 1


def _subscript(inner: str) -> Any:
    if inner == "*":
        return ("all",)
    if inner[:1] in "\"'":
        return ("keys", tuple(_unquote(k.strip()) for k in inner.split(",")))
    if inner.startswith("?"):
        m = _FILTER.match(inner)
        if not m:
            raise JsonPathError(f"unsupported filter [{inner}]")
        operand = m.group(3)
        return ("filter", parse_path(m.group(1)[1:] or "@"), m.group(2), operand)
    if ":" in inner:
        bounds = [int(b) if b.strip() else None for b in inner.split(":")]
        return ("slice", *bounds, *([None] * (3 - len(bounds))))
    try:
        return ("index", int(inner))
    except ValueError as e:
        raise JsonPathError(f"invalid array index [{inner}]") from e


def parse_path(path: str) -> _Path:
    """`.items[*].metadata.name` to steps; a leading `$` or `@` is dropped."""
    steps: list[Any] = []
    i = 1 if path[:1] in "$@" else 0
    from_root = path[:1] == "$"
    while i < len(path):
        if path.startswith("..", i):
            name, i = _field_name(path, i + 2)
            steps.append(("recurse", name))
        elif path[i] == ".":
            name, i = _field_name(path, i + 1)
            if name:
                steps.append(("all",) if name == "*" else ("field", name))
        elif path[i] == "[":
            step, i = _bracket(path, i)
            steps.append(step)
        else:
            raise JsonPathError(f"unrecognized character in action: {path[i]!r}")
    return _Path(tuple(steps), from_root)


def parse(template: str) -> tuple[Any, ...]:
    """A template to a tree of text, paths and ranges."""
    stack: list[tuple[_Path | None, list[Any]]] = [(None, [])]
    for kind, text in _split_template(template):
        body = stack[-1][1]
        if kind == "text":
            body.append(_Text(text))
        elif text[:1] in "\"'":
            body.append(_Text(_unquote(text)))
        elif text.startswith("range "):
            stack.append((parse_path(text[6:].strip()), []))
        elif text == "end":
            if len(stack) == 1:
                raise JsonPathError("not in range, nothing to end")
            path, inner = stack.pop()
            stack[-1][1].append(_Range(path, tuple(inner)))  # type: ignore[arg-type]
        elif text:
            body.append(parse_path(text))
    if len(stack) != 1:
        raise JsonPathError("range without end")
    return tuple(stack[0][1])


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    return list(value) if isinstance(value, list) else []


def _descend(value: Any, name: str) -> list[Any]:
    found = []
    if isinstance(value, dict) and name in value:
        found.append(value[name])
    for child in _children(value):
        found += _descend(child, name)
    return found


def _compare(left: Any, op: str | None, literal: str | None) -> bool:
    if op is None or literal is None:
        return True
    try:
        right = _unquote(literal) if literal[0] in "\"'" else json.loads(literal)
        return bool(_OPERATORS[op](left, right))
    except (ValueError, TypeError, JsonPathError):
        return False


def _step(values: list[Any], step: tuple[Any, ...]) -> list[Any]:
    out: list[Any] = []
    kind = step[0]
    for value in values:
        if kind == "field" and isinstance(value, dict) and step[1] in value:
            out.append(value[step[1]])
        elif kind == "keys" and isinstance(value, dict):
            out += [value[k] for k in step[1] if k in value]
        elif kind == "all":
            out += _children(value)
        elif kind == "recurse":
            out += _descend(value, step[1]) if step[1] else [value]
        elif kind == "index" and isinstance(value, list) and -len(value) <= step[1] < len(value):
            out.append(value[step[1]])
        elif kind == "slice" and isinstance(value, list):
            out += value[slice(step[1], step[2], step[3])]
        elif kind == "filter" and isinstance(value, list):
            out += [item for item in value if _matches(item, step[1], step[2], step[3])]
    return out


def _matches(item: Any, path: _Path, op: str | None, literal: str | None) -> bool:
    found = evaluate(path, item)
    return bool(found) and _compare(found[0], op, literal)


def evaluate(path: _Path, value: Any) -> list[Any]:
    values = [value]
    for step in path.steps:
        values = _step(values, step)
    return values


def format_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return compact_json(value)
    return str(value)


def _render(nodes: tuple[Any, ...], current: Any, root: Any, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, _Text):
            out.append(node.text)
        elif isinstance(node, _Range):
            start = root if node.path.from_root else current
            for item in evaluate(node.path, start):
                _render(node.body, item, root, out)
        else:
            start = root if node.from_root else current
            out.append(" ".join(format_value(v) for v in evaluate(node, start)))


def render(template: str, obj: Any) -> str:
    """Execute a kubectl JSONPath template against one object or List."""
    out: list[str] = []
    _render(parse(template), obj, obj, out)
    return "".join(out)


def relaxed(expression: str) -> str:
    """`.a.b`, `a.b` or `{.a.b}` as a template (kubectl's RelaxedJSONPathExpression)."""
    expression = expression.strip()
    if expression.startswith("{") and expression.endswith("}"):
        return expression
    if not expression.startswith((".", "$", "[")):
        expression = "." + expression
    return "{" + expression + "}"
