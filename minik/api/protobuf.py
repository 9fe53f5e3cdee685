"""Decoding the protobuf bodies that kubectl >= 1.32 sends for `kubectl create <subcommand>`.

client-go 0.32's typed clients prefer protobuf for built-in kinds, so
`kubectl create deployment|configmap|secret|namespace|service|serviceaccount
|job|cronjob` POST `application/vnd.kubernetes.protobuf` with no JSON
fallback. A body is the magic `k8s\\x00` and a `runtime.Unknown` whose
`raw` holds the object. It becomes the same dict a JSON body would have
been, so everything after decoding is shared with JSON and YAML.

Only the messages those commands emit are described (`minik.api.protobuf_schema`:
field numbers and kinds from Kubernetes' `generated.proto`). Plain
scalars arrive even at their zero value and are dropped (JSON's
`omitempty`); Go pointers (`replicas`) are kept at zero. A field the
schema does not know is skipped when it holds a zero value and refused
with its message and number otherwise, so nothing a user set is silently
lost. Answers are always JSON, which kubectl accepts.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from typing import Any

from minik.api import protobuf_access, protobuf_autoscaling, protobuf_schema
from minik.api.errors import ApiError, bad_request, unsupported_media_type
from minik.api.protobuf_schema import Field

MESSAGES = {**protobuf_schema.MESSAGES, **protobuf_autoscaling.MESSAGES,
            **protobuf_access.MESSAGES}
ROOTS = {**protobuf_schema.ROOTS, **protobuf_autoscaling.ROOTS, **protobuf_access.ROOTS}

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5

Wire = tuple[int, int, int | bytes]  # field number, wire type, value
ZEROABLE = frozenset({"string", "int", "bool", "bytes", "intorstring", "quantity"})
_OMIT = object()  # a value JSON would not carry


def decode_object(data: bytes) -> dict[str, Any]:
    """The object of a protobuf request body, as JSON would have carried it."""
    if not data.startswith(MAGIC):
        raise bad_request("the protobuf body does not start with the Kubernetes magic k8s\\0")
    unknown = _fields(data[len(MAGIC):], "runtime.Unknown")
    type_meta = _fields(_bytes(unknown.get(1, b""), "runtime.Unknown.typeMeta"),
                        "runtime.TypeMeta")
    api_version = _text(type_meta.get(1, b""))
    kind = _text(type_meta.get(2, b""))
    encoding = _text(unknown.get(3, b""))
    if encoding:
        raise unsupported_media_type(f"protobuf content encoding {encoding!r} is not supported")
    root = ROOTS.get((api_version, kind))
    if root is None:
        raise unsupported_media_type(
            f"minik decodes protobuf bodies only for {_root_names()}, not {api_version} "
            f"{kind}; send JSON or YAML (kubectl apply -f, or kubectl < 1.32)")
    obj = _message(_bytes(unknown.get(2, b""), "runtime.Unknown.raw"), root)
    return {"apiVersion": api_version, "kind": kind, **obj}


def _root_names() -> str:
    return ", ".join(sorted({kind for _, kind in ROOTS}))


def _fields(data: bytes, where: str) -> dict[int, int | bytes]:
    """The last value of each field of a small message (runtime.Unknown, TypeMeta)."""
    return {number: value for number, _, value in _wire(data, where)}


def _wire(data: bytes, where: str) -> Iterator[Wire]:
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos, where)
        number, wire_type = key >> 3, key & 7
        if wire_type == VARINT:
            value, pos = _varint(data, pos, where)
            yield number, wire_type, value
        elif wire_type == LENGTH:
            size, pos = _varint(data, pos, where)
            if pos + size > end:
                raise _truncated(where)
            yield number, wire_type, data[pos:pos + size]
            pos += size
        elif wire_type in (FIXED64, FIXED32):
            width = 8 if wire_type == FIXED64 else 4
            if pos + width > end:
                raise _truncated(where)
            yield number, wire_type, int.from_bytes(data[pos:pos + width], "little")
            pos += width
        else:
            raise bad_request(f"protobuf body: wire type {wire_type} in {where} is not supported")


def _varint(data: bytes, pos: int, where: str) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _truncated(where)
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _truncated(where: str) -> ApiError:
    return bad_request(f"protobuf body: {where} is truncated or malformed")


def _message(data: bytes, name: str) -> dict[str, Any]:
    schema = MESSAGES[name]
    out: dict[str, Any] = {}
    for number, wire_type, value in _wire(data, name):
        field = schema.get(number)
        if field is None:
            if _is_zero(value):
                continue
            raise bad_request(
                f"protobuf body: field {number} of {name} is not known to minik; send the "
                "object as JSON or YAML (kubectl apply -f)")
        _set(out, field, _value(field, wire_type, value, f"{name}.{field.name}"))
    return out


def _set(out: dict[str, Any], field: Field, value: Any) -> None:
    if value is _OMIT:
        return
    if field.inline:
        out.update(value)
    elif field.map:
        out.setdefault(field.name, {}).update(value)
    elif field.repeated:
        out.setdefault(field.name, []).extend(value)
    else:
        out[field.name] = value


def _value(field: Field, wire_type: int, raw: int | bytes, where: str) -> Any:
    if field.kind == "ignore":
        return _OMIT
    if field.map:
        entry = _fields(_bytes(raw, where), where)
        key = _text(entry.get(1, b""))
        return {key: _scalar(field.map, entry.get(2, b""), where)}
    if field.repeated:
        if wire_type == LENGTH and field.kind in ("int", "bool"):
            return [_scalar(field.kind, v, where) for v in _packed(_bytes(raw, where), where)]
        return [_scalar(field.kind, raw, where)]
    value = _scalar(field.kind, raw, where)
    if value is None or (value in (0, "") and not field.keep_zero and field.kind in ZEROABLE):
        return _OMIT
    return value


def _packed(data: bytes, where: str) -> Iterator[int]:
    pos = 0
    while pos < len(data):
        value, pos = _varint(data, pos, where)
        yield value


def _scalar(kind: str, raw: int | bytes, where: str) -> Any:
    if kind == "string":
        return _text(_bytes(raw, where))
    if kind == "bytes":
        return base64.b64encode(_bytes(raw, where)).decode()
    if kind == "int":
        return _signed(_int(raw, where))
    if kind == "bool":
        return bool(_int(raw, where))
    if kind == "time":
        return _time(_fields(_bytes(raw, where), where))
    if kind == "intorstring":
        parts = _fields(_bytes(raw, where), where)
        return _text(parts.get(3, b"")) if parts.get(1) == 1 else _signed(_int(parts.get(2, 0),
                                                                            where))
    if kind == "quantity":
        return _text(_fields(_bytes(raw, where), where).get(1, b""))
    return _message(_bytes(raw, where), kind)


def _time(parts: dict[int, int | bytes]) -> str | None:
    """meta/v1 Time {seconds, nanos} as RFC 3339; the zero time (an empty message) is null."""
    seconds = parts.get(1, 0)
    if not isinstance(seconds, int) or not seconds:
        return None
    try:
        moment = dt.datetime.fromtimestamp(_signed(seconds), dt.UTC)
    except (OverflowError, OSError, ValueError) as e:
        raise bad_request(f"protobuf body: time {seconds} is out of range") from e
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _int(raw: int | bytes, where: str) -> int:
    if not isinstance(raw, int):
        raise bad_request(f"protobuf body: {where} should be a number")
    return raw


def _bytes(raw: int | bytes, where: str) -> bytes:
    if not isinstance(raw, bytes):
        raise bad_request(f"protobuf body: {where} should be length-delimited")
    return raw


def _text(raw: int | bytes) -> str:
    if not isinstance(raw, bytes):
        return ""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise bad_request("protobuf body: a string is not UTF-8") from e


def _is_zero(value: int | bytes) -> bool:
    """0, empty, or a message whose every field is zero (a Go struct left empty)."""
    if not value or isinstance(value, int):
        return not value
    try:
        return all(_is_zero(inner) for _, _, inner in _wire(value, "an unknown field"))
    except ApiError:
        return False
