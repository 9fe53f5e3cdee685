"""One term of a label selector (`key op values`), validated and matched as Kubernetes does.

`Requirement.build` follows apimachinery's `labels.NewRequirement`: keys and
values are validated like label keys and values, and the errors carry the
same wording, so a bad `-l` reaches kubectl as the BadRequest it would get
from a real cluster. The operators are apimachinery's `selection.Operator`
values; `>` and `<` compare integers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

EXISTS, DOES_NOT_EXIST = "exists", "!"
IN, NOT_IN = "in", "notin"
EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "=", "==", "!="
GREATER_THAN, LESS_THAN = "gt", "lt"

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


def invalid_value(path: str, value: str, problems: list[str]) -> str:
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
            problems.append(invalid_value("key", key, key_errors))
        problems.extend(_value_count_errors(operator, values))
        for i, value in enumerate(values):
            if value_errors := label_value_errors(value):
                problems.append(invalid_value(f"values[{i}][{key}]", value, value_errors))
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
