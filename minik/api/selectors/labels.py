"""Label selectors: parsed from a query, converted from a spec, and matched against labels.

`LabelSelector.parse` reads a `labelSelector` query parameter (the grammar is
`label_parser`'s); `from_spec` converts a `metav1.LabelSelector`: a missing
selector selects nothing, an empty one selects everything.
`workload_selector` reads a workload's `spec.selector` in whichever form its
kind writes it. A malformed selector is a BadRequest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from minik.api import errors
from minik.api.objects import JsonObject, LabelSelectorSpec
from minik.api.selectors.label_parser import parse_requirements
from minik.api.selectors.requirements import (
    DOES_NOT_EXIST,
    EQUALS,
    EXISTS,
    IN,
    NOT_IN,
    Requirement,
    SelectorError,
)


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
            return cls(parse_requirements(text))
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from None

    @classmethod
    def from_spec(cls, spec: LabelSelectorSpec | JsonObject | None) -> LabelSelector:
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


def workload_selector(kind: str, obj: Mapping[str, Any]) -> LabelSelector:
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
