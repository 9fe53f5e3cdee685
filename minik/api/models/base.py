"""The base model and Kubernetes-style field errors.

Every model reads a JSON object by its camelCase names, keeps fields it does
not declare (`extra="allow"`: valid Kubernetes that minik stores but does not
act on), and never changes the object it reads. A failed check raises one
pydantic error of type `k8s` whose context carries `errors.Cause`s with
paths relative to the failing field; `validation.py` prefixes them with the
field's location. Messages are worded as `k8s.io/apimachinery`'s
`field.Error` words them (`Required value`, `Invalid value: "x": ...`,
`Unsupported value: ...`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Annotated, Any, NoReturn, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from minik.api import names
from minik.api.errors import Cause

T = TypeVar("T")

K8S_ERROR = "k8s"
REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
FORBIDDEN = "FieldValueForbidden"
DUPLICATE = "FieldValueDuplicate"
TOO_MANY = "FieldValueTooMany"
NOT_FOUND = "FieldValueNotFound"
TOO_LONG = "FieldValueTooLong"


class K8sModel(BaseModel):
    """A Kubernetes object or struct, read by its JSON names."""

    model_config = ConfigDict(
        extra="allow", alias_generator=to_camel, strict=True, frozen=True,
        validate_by_alias=True, validate_by_name=False,
    )


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
               "\t": "\\t", "\v": "\\v", '"': '\\"', "\\": "\\\\"}


def go_quote(text: str) -> str:
    """`text` as Go's `strconv.Quote` (`%q`) writes it: printable characters as they are,
    control and other non-printable ones escaped, so a quoted name is one printable line."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def go_value(value: Any) -> str:
    """A value as `field.Error` prints it: quoted strings, bare numbers, JSON otherwise."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return go_quote(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_dump)


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True, exclude_none=True)
    return str(value)


def join(parent: str, child: str) -> str:
    """Append a relative Kubernetes path (`a.b`, `[0].c`, `[key]`) to another."""
    if not child:
        return parent
    if not parent or child.startswith("["):
        return parent + child
    return f"{parent}.{child}"


def required(path: str = "", detail: str = "") -> Cause:
    return Cause(path, "Required value" + (f": {detail}" if detail else ""), REQUIRED)


def invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause(path, f"Invalid value: {go_value(value)}: {detail}", INVALID)


def not_supported(path: str, value: Any, supported: Iterable[str]) -> Cause:
    shown = ", ".join(json.dumps(s) for s in supported)
    return Cause(
        path, f"Unsupported value: {go_value(value)}: supported values: {shown}", NOT_SUPPORTED
    )


def forbidden(path: str, detail: str) -> Cause:
    return Cause(path, f"Forbidden: {detail}", FORBIDDEN)


def duplicate(path: str, value: Any) -> Cause:
    return Cause(path, f"Duplicate value: {go_value(value)}", DUPLICATE)


def not_found(path: str, value: Any) -> Cause:
    return Cause(path, f"Not found: {go_value(value)}", NOT_FOUND)


def too_long(path: str, limit: int) -> Cause:
    return Cause(path, f"Too long: may not be more than {limit} bytes", TOO_LONG)


def too_many(path: str, actual: int, limit: int) -> Cause:
    return Cause(path, f"Too many: {actual}: must have at most {limit} items", TOO_MANY)


def immutable(path: str, value: Any) -> Cause:
    return invalid(path, value, "field is immutable")


def fail(causes: Iterable[Cause]) -> NoReturn:
    found = tuple(causes)
    summary = "; ".join(f"{c.field}: {c.message}" if c.field else c.message for c in found)
    raise PydanticCustomError(K8S_ERROR, "{summary}", {"summary": summary, "causes": found})


def raise_any(causes: Iterable[Cause]) -> None:
    found = list(causes)
    if found:
        fail(found)


def checked(check: Callable[[T], Iterable[Cause]]) -> AfterValidator:
    """A pydantic validator that fails with the Causes `check` yields."""

    def run(value: T) -> T:
        raise_any(check(value))
        return value

    return AfterValidator(run)


def one_of(*supported: str) -> AfterValidator:
    """An enum check worded as Kubernetes' `field.NotSupported`."""
    allowed = frozenset(supported)
    return checked(lambda v: [] if v in allowed else [not_supported("", v, supported)])


def at_least(minimum: int) -> AfterValidator:
    message = f"must be greater than or equal to {minimum}"

    def check(value: int) -> list[Cause]:
        return [] if value >= minimum else [invalid("", value, message)]

    return checked(check)


def with_messages(rule: Callable[[str], list[str]]) -> AfterValidator:
    """Turn a `names.is_*` rule into a validator: one Invalid cause per message."""

    def check(value: str) -> list[Cause]:
        return [invalid("", value, m) for m in rule(value)]

    return checked(check)


def not_empty(value: str) -> list[Cause]:
    return [] if value else [required()]


def port_number(value: int) -> list[Cause]:
    return [invalid("", value, m) for m in names.is_valid_port_num(value)]


def int_or_port_name(value: int | str) -> list[Cause]:
    """A container port by number (1..65535) or by IANA name."""
    if isinstance(value, int):
        return port_number(value)
    if value.isdigit():
        return port_number(int(value))
    return [invalid("", value, m) for m in names.is_valid_port_name(value)]


def int_or_percent(value: int | str) -> list[Cause]:
    """maxSurge / maxUnavailable: a non-negative count or a percentage."""
    if isinstance(value, int):
        return [] if value >= 0 else [invalid("", value, "must be greater than or equal to 0")]
    return [invalid("", value, m) for m in names.is_percent(value)]


def percent_over_100(value: int | str | None) -> bool:
    return isinstance(value, str) and value.endswith("%") and value[:-1].isdigit() and (
        int(value[:-1]) > 100
    )


NonNegative = Annotated[int, at_least(0)]
Positive = Annotated[int, at_least(1)]
Port = Annotated[int, checked(port_number)]
IntOrString = int | str
PortRef = Annotated[IntOrString, checked(int_or_port_name)]
IntOrPercent = Annotated[IntOrString, checked(int_or_percent)]
Quantity = str | int | float
RequiredStr = Annotated[str, checked(not_empty)]
DNSLabel = Annotated[str, with_messages(names.is_dns1123_label)]
DNSSubdomain = Annotated[str, with_messages(names.is_dns1123_subdomain)]
ConfigKey = Annotated[str, with_messages(names.is_config_map_key)]
