"""Label and field selectors, parsed and matched as the Kubernetes API server does.

`LabelSelector` follows apimachinery's `labels.Parse`: a small lexer and a
recursive-descent parser over `k=v`, `k==v`, `k!=v`, `k in (a,b)`,
`k notin (a)`, `k`, `!k` (and `k>1`, `k<1`), joined by commas. Keys and
values are validated like label keys and values, and errors carry the same
wording (`unable to parse requirement: ...`), so a bad `-l` reaches kubectl
as the BadRequest it would get from a real cluster. `from_spec` converts a
`metav1.LabelSelector`: a missing selector selects nothing, an empty one
selects everything.

`FieldSelector` follows `fields.ParseSelector`: comma-separated `=`, `==`
and `!=` terms with backslash escapes, restricted to the fields each kind
makes selectable (`field label not supported: ...` otherwise).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from minik.api import errors

EXISTS, DOES_NOT_EXIST = "exists", "!"
IN, NOT_IN = "in", "notin"
EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "=", "==", "!="
GREATER_THAN, LESS_THAN = "gt", "lt"
_BINARY = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
_SYMBOLS = {"=": EQUALS, "==": DOUBLE_EQUALS, "!=": NOT_EQUALS, ">": GREATER_THAN,
            "<": LESS_THAN, "!": DOES_NOT_EXIST, "(": "(", ")": ")", ",": ","}
_KEYWORDS = {"in": IN, "notin": NOT_IN}
_SPECIAL = frozenset("=!(),<>")
_WHITESPACE = frozenset(" \t\r\n")
_IDENT, _END = "identifier", "end"

_NAME_RE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_VALUE_RE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_DNS1123_SUBDOMAIN_RE = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)
_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_PREFIX_MSG = (
    "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
    "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
    "'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


class SelectorError(ValueError):
    """A selector that does not parse; converted to BadRequest at the public API."""


def label_key_errors(key: str) -> list[str]:
    """Why `key` is not a qualified name (`[prefix/]name`); empty when valid."""
    parts = key.split("/")
    if len(parts) > 2:
        return [f"a qualified name {_NAME_MSG} with an optional DNS subdomain prefix and '/' "
                "(e.g. 'example.com/MyName')"]
    name = parts[-1]
    problems = []
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            problems.append("prefix part must be non-empty")
        elif len(prefix) > 253:
            problems.append("prefix part must be no more than 253 characters")
        elif not _DNS1123_SUBDOMAIN_RE.fullmatch(prefix):
            problems.append(_PREFIX_MSG)
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    elif not _NAME_RE.fullmatch(name):
        problems.append(f"name part {_NAME_MSG}")
    return problems


def label_value_errors(value: str) -> list[str]:
    """Why `value` is not a valid label value; empty when valid."""
    problems = []
    if len(value) > 63:
        problems.append("must be no more than 63 characters")
    if not _VALUE_RE.fullmatch(value):
        problems.append(_VALUE_MSG)
    return problems


def _invalid(path: str, value: str, problems: list[str]) -> str:
    return f'{path}: Invalid value: "{value}": {"; ".join(problems)}'


@dataclass(frozen=True, slots=True)
class Requirement:
    """One `key op values` term of a label selector."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    @classmethod
    def build(cls, key: str, operator: str, values: list[str]) -> Requirement:
        """Validate like `labels.NewRequirement`; raise SelectorError with its messages."""
        problems: list[str] = []
        if key_errors := label_key_errors(key):
            problems.append(_invalid("key", key, key_errors))
        problems.extend(_value_count_errors(operator, values))
        for i, value in enumerate(values):
            if value_errors := label_value_errors(value):
                problems.append(_invalid(f"values[{i}][{key}]", value, value_errors))
        if problems:
            raise SelectorError(problems[0] if len(problems) == 1 else f"[{', '.join(problems)}]")
        return cls(key, operator, tuple(values))

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key, "")
        if self.operator in (IN, EQUALS, DOUBLE_EQUALS):
            return present and value in self.values
        if self.operator in (NOT_IN, NOT_EQUALS):
            return not present or value not in self.values
        if self.operator == EXISTS:
            return present
        if self.operator == DOES_NOT_EXIST:
            return not present
        return present and _compare(self.operator, value, self.values[0])

    def __str__(self) -> str:
        if self.operator == EXISTS:
            return self.key
        if self.operator == DOES_NOT_EXIST:
            return f"!{self.key}"
        values = ",".join(sorted(self.values))
        if self.operator in (IN, NOT_IN):
            return f"{self.key} {self.operator} ({values})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(self.operator, self.operator)
        return f"{self.key}{symbol}{values}"


def _value_count_errors(operator: str, values: list[str]) -> Iterator[str]:
    detail = ""
    if operator in (IN, NOT_IN) and not values:
        detail = "for 'in', 'notin' operators, values set can't be empty"
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS) and len(values) != 1:
        detail = "exact-match compatibility requires one single value"
    elif operator in (EXISTS, DOES_NOT_EXIST) and values:
        detail = "values set must be empty for exists and does not exist"
    elif operator in (GREATER_THAN, LESS_THAN) and len(values) != 1:
        detail = "for 'Gt', 'Lt' operators, exactly one value is required"
    if detail:
        yield f"values: Invalid value: {_go_strings(values)}: {detail}"
    if operator in (GREATER_THAN, LESS_THAN):
        for i, value in enumerate(values):
            if not re.fullmatch(r"[+-]?\d+", value):
                detail = "for 'Gt', 'Lt' operators, the value must be an integer"
                yield f'values[{i}]: Invalid value: "{value}": {detail}'


def _go_strings(values: list[str]) -> str:
    """A string list as Go's %#v prints it in apimachinery's messages."""
    if not values:
        return "[]string(nil)"
    return "[]string{" + ", ".join(f'"{v}"' for v in values) + "}"


def _compare(operator: str, actual: str, wanted: str) -> bool:
    try:
        left, right = int(actual), int(wanted)
    except ValueError:
        return False
    return left > right if operator == GREATER_THAN else left < right


def _lex(text: str) -> list[tuple[str, str]]:
    """Tokens as (kind, literal); kind is an operator/punctuation, `identifier` or `end`."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos] in _WHITESPACE:
            pos += 1
        if pos == len(text):
            tokens.append((_END, ""))
            return tokens
        start = pos
        if text[pos] in _SPECIAL:
            while pos < len(text) and text[pos] in _SPECIAL and text[start:pos + 1] in _SYMBOLS:
                pos += 1
            literal = text[start:pos]
            tokens.append((_SYMBOLS[literal], literal))
            continue
        while pos < len(text) and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
            pos += 1
        literal = text[start:pos]
        tokens.append((_KEYWORDS.get(literal, _IDENT), literal))


class _Parser:
    """apimachinery's label selector grammar, one method per production."""

    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def peek(self, *, values: bool = True) -> tuple[str, str]:
        return self._as_context(self.tokens[self.pos], values)

    def take(self, *, values: bool = True) -> tuple[str, str]:
        token = self.tokens[self.pos]
        self.pos += 1
        return self._as_context(token, values)

    @staticmethod
    def _as_context(token: tuple[str, str], values: bool) -> tuple[str, str]:
        """In value position, `in` and `notin` are plain identifiers."""
        kind, literal = token
        return (_IDENT, literal) if values and kind in (IN, NOT_IN) else (kind, literal)

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            kind, literal = self.peek()
            if kind == _END:
                return requirements
            if kind not in (_IDENT, DOES_NOT_EXIST):
                raise SelectorError(
                    f"found '{literal}', expected: !, identifier, or 'end of string'"
                )
            try:
                requirements.append(self.requirement())
            except SelectorError as exc:
                raise SelectorError(f"unable to parse requirement: {exc}") from None
            kind, literal = self.take()
            if kind == _END:
                return requirements
            if kind != ",":
                raise SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
            kind, literal = self.peek()
            if kind not in (_IDENT, DOES_NOT_EXIST):
                raise SelectorError(f"found '{literal}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        key, operator = self.key_and_inferred_operator()
        if operator in (EXISTS, DOES_NOT_EXIST):
            return Requirement.build(key, operator, [])
        operator = self.operator()
        values = self.value_set() if operator in (IN, NOT_IN) else self.exact_value()
        return Requirement.build(key, operator, sorted(values))

    def key_and_inferred_operator(self) -> tuple[str, str]:
        operator = ""
        kind, literal = self.take()
        if kind == DOES_NOT_EXIST:
            operator = DOES_NOT_EXIST
            kind, literal = self.take()
        if kind != _IDENT:
            raise SelectorError(f"found '{literal}', expected: identifier")
        if problems := label_key_errors(literal):
            raise SelectorError(_invalid("<nil>", literal, problems))
        if self.peek()[0] in (_END, ",") and operator != DOES_NOT_EXIST:
            operator = EXISTS
        return literal, operator

    def operator(self) -> str:
        kind, literal = self.take(values=False)
        if kind not in _BINARY:
            raise SelectorError(f"found '{literal}', expected: {', '.join(_BINARY)}")
        return kind

    def value_set(self) -> set[str]:
        kind, literal = self.take()
        if kind != "(":
            raise SelectorError(f"found '{literal}' expected: '('")
        kind, literal = self.peek()
        if kind == ")":
            self.take()
            return {""}
        if kind not in (_IDENT, ","):
            raise SelectorError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self.identifiers()
        if self.take()[0] != ")":
            raise SelectorError(f"found '{literal}', expected: ')'")
        return values

    def identifiers(self) -> set[str]:
        """A comma-separated list in which empty items are the empty string."""
        values: set[str] = set()
        while True:
            kind, literal = self.take()
            if kind == _IDENT:
                values.add(literal)
                following, text = self.peek()
                if following == ")":
                    return values
                if following != ",":
                    raise SelectorError(f"found '{text}', expected: ',' or ')'")
            elif kind == ",":
                if not values:
                    values.add("")
                following, _ = self.peek()
                if following == ")":
                    values.add("")
                    return values
                if following == ",":
                    self.take()
                    values.add("")
            else:
                raise SelectorError(f"found '{literal}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        if self.peek()[0] in (_END, ","):
            return {""}
        kind, literal = self.take()
        if kind != _IDENT:
            raise SelectorError(f"found '{literal}', expected: identifier")
        return {literal}


class LabelSelector:
    """An AND of label requirements, or the selector that matches nothing."""

    __slots__ = ("_nothing", "requirements")

    def __init__(self, requirements: list[Requirement] | None = None, *, nothing: bool = False):
        self.requirements = tuple(sorted(requirements or (), key=lambda r: r.key))
        self._nothing = nothing

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """Parse a `labelSelector` query parameter; BadRequest when it is malformed."""
        try:
            return cls(_Parser(text).parse())
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from None

    @classmethod
    def from_spec(cls, spec: dict[str, Any] | None) -> LabelSelector:
        """Convert a `metav1.LabelSelector`: None selects nothing, `{}` selects everything.

        Anything but `matchLabels` and `matchExpressions` is refused: a plain label
        map given where a LabelSelector belongs must not select everything.
        """
        if spec is None:
            return cls(nothing=True)
        if not isinstance(spec, dict):
            raise errors.bad_request(f"a label selector is an object, not {spec!r:.100}")
        if unknown := sorted(spec.keys() - SPEC_FIELDS):
            raise errors.bad_request(f'unknown field "{unknown[0]}" in a label selector: '
                                     "it has matchLabels and matchExpressions")
        requirements = [
            _checked(key, EQUALS, [str(value)])
            for key, value in (spec.get("matchLabels") or {}).items()
        ]
        for expression in spec.get("matchExpressions") or []:
            operator = _SPEC_OPERATORS.get(expression.get("operator", ""))
            if operator is None:
                raise errors.bad_request(
                    f'"{expression.get("operator", "")}" is not a valid label selector operator'
                )
            requirements.append(
                _checked(expression.get("key", ""), operator, list(expression.get("values") or []))
            )
        return cls(requirements)

    def matches(self, labels: dict[str, str] | None) -> bool:
        if self._nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything (not for select-nothing)."""
        return not self._nothing and not self.requirements

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return "LabelSelector(<nothing>)" if self._nothing else f"LabelSelector({str(self)!r})"


SPEC_FIELDS = frozenset({"matchLabels", "matchExpressions"})
MAP_SELECTOR_KINDS = frozenset({"ReplicationController"})
"""Kinds whose `spec.selector` is a plain label map (core/v1), not a metav1.LabelSelector."""


def workload_selector(kind: str, obj: dict[str, Any]) -> LabelSelector:
    """The selector in a workload's `spec.selector`, in whichever form its kind writes it.

    A ReplicationController's map is the equality selector of its labels, as
    Kubernetes reads it (`labels.SelectorFromSet`); an absent one selects nothing.
    """
    selector = (obj.get("spec") or {}).get("selector")
    if kind in MAP_SELECTOR_KINDS and selector is not None:
        selector = {"matchLabels": selector}
    return LabelSelector.from_spec(selector)


_SPEC_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def _checked(key: str, operator: str, values: list[str]) -> Requirement:
    try:
        return Requirement.build(key, operator, values)
    except SelectorError as exc:
        raise errors.bad_request(str(exc)) from None


FieldGetter = Callable[[dict[str, Any]], Any]


def _path(dotted: str) -> FieldGetter:
    keys = dotted.split(".")

    def get(obj: dict[str, Any]) -> Any:
        node: Any = obj
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        return node

    return get


def _first_pod_ip(pod: dict[str, Any]) -> str:
    status = pod.get("status") or {}
    ips = status.get("podIPs") or []
    return (ips[0].get("ip") if ips else status.get("podIP")) or ""


def _event_source(event: dict[str, Any]) -> str:
    return (event.get("source") or {}).get("component") or event.get("reportingController") or ""


_COMMON_FIELDS: dict[str, FieldGetter] = {
    "metadata.name": _path("metadata.name"),
    "metadata.namespace": _path("metadata.namespace"),
}
_EVENT_INVOLVED = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
_KIND_FIELDS: dict[str, dict[str, FieldGetter]] = {
    "Pod": {
        **{f: _path(f) for f in ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                                 "spec.serviceAccountName", "status.phase",
                                 "status.nominatedNodeName")},
        "spec.hostNetwork": lambda pod: bool(_path("spec.hostNetwork")(pod)),
        "status.podIP": _first_pod_ip,
    },
    "Event": {
        **{f"involvedObject.{f}": _path(f"involvedObject.{f}") for f in _EVENT_INVOLVED},
        "reason": _path("reason"),
        "reportingComponent": _path("reportingController"),
        "source": _event_source,
        "type": _path("type"),
    },
    "Secret": {"type": _path("type")},
    "Namespace": {"status.phase": _path("status.phase")},
    "Node": {"spec.unschedulable": lambda node: bool(_path("spec.unschedulable")(node))},
    "Job": {"status.successful": lambda job: int(_path("status.succeeded")(job) or 0)},
    "ReplicaSet": {"status.replicas": lambda rs: int(_path("status.replicas")(rs) or 0)},
}


def selectable_fields(kind: str) -> dict[str, FieldGetter]:
    """The fields a field selector may name for `kind`, with how to read each."""
    return {**_COMMON_FIELDS, **_KIND_FIELDS.get(kind, {})}


def _field_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, slots=True)
class FieldTerm:
    """`field=value` or `field!=value`."""

    field: str
    operator: str
    value: str

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
        return f"{self.field}{self.operator}{escaped}"


class FieldSelector:
    """An AND of field terms over the fields `kind` makes selectable."""

    __slots__ = ("_getters", "terms")

    def __init__(self, terms: list[FieldTerm], getters: dict[str, FieldGetter]) -> None:
        self.terms = tuple(terms)
        self._getters = getters

    @classmethod
    def parse(cls, text: str, *, kind: str) -> FieldSelector:
        """Parse a `fieldSelector` query parameter for objects of `kind`."""
        getters = selectable_fields(kind)
        terms = []
        for part in sorted(_split_terms(text)):
            if not part:
                continue
            term = _split_term(text, part)
            if term.field not in getters:
                raise errors.bad_request(f"field label not supported: {term.field}")
            terms.append(term)
        return cls(terms, getters)

    def matches(self, obj: dict[str, Any]) -> bool:
        for term in self.terms:
            actual = _field_text(self._getters[term.field](obj))
            if (actual == term.value) != (term.operator == EQUALS):
                return False
        return True

    def value_for(self, field: str) -> str | None:
        """The value an `=` term requires of `field`, so a list can be narrowed to it."""
        return next(
            (t.value for t in self.terms if t.field == field and t.operator == EQUALS), None
        )

    @property
    def empty(self) -> bool:
        return not self.terms

    def __str__(self) -> str:
        return ",".join(str(t) for t in self.terms)

    def __repr__(self) -> str:
        return f"FieldSelector({str(self)!r})"


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not backslash-escaped; escapes stay in the terms."""
    if not text:
        return []
    terms, start, escaped = [], 0, False
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(selector: str, term: str) -> FieldTerm:
    """Split at the first operator; the field part has no escaping."""
    for i in range(len(term)):
        for operator in (NOT_EQUALS, DOUBLE_EQUALS, EQUALS):
            if term.startswith(operator, i):
                normalized = EQUALS if operator == DOUBLE_EQUALS else operator
                return FieldTerm(term[:i], normalized, _unescape(term[i + len(operator):]))
    raise errors.bad_request(f"invalid selector: '{selector}'; can't understand '{term}'")


def _unescape(value: str) -> str:
    out, escaped = [], False
    for char in value:
        if escaped:
            if char not in "\\,=":
                raise errors.bad_request(
                    f"invalid field selector: invalid escape sequence: \\{char}"
                )
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            raise errors.bad_request(
                f"invalid field selector: unescaped character in value: {ord(char)}"
            )
        else:
            out.append(char)
    if escaped:
        raise errors.bad_request("invalid field selector: invalid escape sequence: \\")
    return "".join(out)
