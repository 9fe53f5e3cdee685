"""Field selectors, parsed and matched as the Kubernetes API server does.

`FieldSelector` follows `fields.ParseSelector`: comma-separated `=`, `==`
and `!=` terms with backslash escapes, restricted to the fields each kind
makes selectable (`field label not supported: ...` otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from minik.api import errors
from minik.api.selectors.requirements import DOUBLE_EQUALS, EQUALS, NOT_EQUALS

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
