"""Decoding request bodies (JSON, YAML, and kubectl's protobuf) without letting bad input hurt.

Limits are checked before and while parsing: bodies over `MAX_BODY_BYTES`
are refused by the server before they reach here; flow nesting deeper than
`MAX_DEPTH` is refused before the YAML parser sees it (PyYAML's C parser
crashes the process on tens of thousands of nested brackets); aliases are
expanded under a node budget, so alias bombs and self-referencing aliases
fail fast with a clear message instead of exhausting memory.

What the parsers build is then made storable (`_storable`): a lone UTF-16
surrogate (`"\\ud800"` in JSON, `"\\ud800"` in a double-quoted YAML string),
which Python keeps but no UTF-8 writer can encode, becomes U+FFFD as
Kubernetes' JSON decoder makes it, in keys and values alike; and a number
JSON cannot carry (NaN, Infinity, a float that overflows) is refused, as Go's
decoder refuses it. Nothing that could later fail to serialise is stored.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import yaml

from minik.api import protobuf
from minik.api.errors import ApiError, bad_request, unsupported_media_type
from minik.api.objects import JsonObject

MAX_BODY_BYTES = 3 * 1024 * 1024
MAX_DEPTH = 100
MAX_NODES = 200_000

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def without_surrogates(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD, as Go decodes invalid UTF-16."""
    return text if text.isascii() else _SURROGATE.sub(REPLACEMENT, text)


def _storable(value: Any) -> Any:
    """Decoded data made safe to store and serialise (see the module docstring)."""
    if isinstance(value, str):
        return without_surrogates(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise bad_request(f"the body holds a number JSON cannot represent: {value}")
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    return value


def _flow_depth(text: str) -> int:
    """Deepest nesting of `[`/`{` outside quotes: a cheap bound before parsing."""
    depth = deepest = 0
    quote = ""
    escaped = False
    for ch in text:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
    return deepest


def _check_depth(text: str) -> None:
    if _flow_depth(text) > MAX_DEPTH:
        raise bad_request(f"the body nests deeper than {MAX_DEPTH} levels")


class _Builder:
    """Builds Python data from a composed YAML node graph under a node budget."""

    def __init__(self) -> None:
        self.budget = MAX_NODES
        self.scalars = _Loader("")

    def close(self) -> None:
        self.scalars.dispose()

    def scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"):
            return node.value
        return self.scalars.construct_object(node, deep=True)

    def build(self, node: yaml.Node, depth: int = 0, stack: set[int] | None = None) -> Any:
        return _construct(self, node, depth, stack if stack is not None else set())


def _construct(b: _Builder, node: yaml.Node, depth: int, stack: set[int]) -> Any:
    b.budget -= 1
    if b.budget < 0:
        raise bad_request(f"yaml: document expands to more than {MAX_NODES} nodes "
                          "(excessive aliasing)")
    if depth > MAX_DEPTH:
        raise bad_request(f"the body nests deeper than {MAX_DEPTH} levels")
    if id(node) in stack:
        raise bad_request("yaml: document contains a self-referencing alias")
    if isinstance(node, yaml.ScalarNode):
        return b.scalar(node)
    stack.add(id(node))
    try:
        if isinstance(node, yaml.SequenceNode):
            return [_construct(b, child, depth + 1, stack) for child in node.value]
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged = _construct(b, value_node, depth + 1, stack)
                for part in merged if isinstance(merged, list) else [merged]:
                    if isinstance(part, dict):
                        for k, v in part.items():
                            result.setdefault(k, v)
                continue
            key = _construct(b, key_node, depth + 1, stack)
            if isinstance(key, (dict, list)):
                raise bad_request("yaml: mapping keys must be scalars")
            result[key] = _construct(b, value_node, depth + 1, stack)
        return result
    finally:
        stack.discard(id(node))


def load_yaml_documents(text: str) -> list[object]:
    """Every document of a (multi-document) YAML text, safely."""
    _check_depth(text)
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.YAMLError as e:
        raise bad_request(f"error converting YAML to JSON: {e}") from e
    except RecursionError as e:
        raise bad_request("the body nests too deeply") from e
    builder = _Builder()
    try:
        return [_storable(builder.build(node)) for node in nodes if node is not None]
    except (yaml.YAMLError, ValueError) as e:  # ValueError: an integer too long to convert
        raise bad_request(f"error converting YAML to JSON: {e}") from e
    finally:
        builder.close()


def _no_constant(name: str) -> Any:
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def load_json(data: bytes | str) -> object:
    text = data.decode() if isinstance(data, bytes) else data
    _check_depth(text)
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError) as e:
        raise bad_request(f"the body of the request is not valid JSON: {e}") from e
    return _storable(value) if "\\u" in text else value  # only \u escapes make surrogates


def decode_body(data: bytes, content_type: str) -> object:
    """The request body as Python data, chosen by Content-Type."""
    media = content_type.split(";")[0].strip().lower()
    if not data.strip():
        raise bad_request("the request body is empty")
    if media == protobuf.MEDIA_TYPE:
        return protobuf.decode_object(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise bad_request("the request body is not UTF-8") from e
    if media in ("application/json", "application/merge-patch+json",
                 "application/json-patch+json", "application/strategic-merge-patch+json", ""):
        return load_json(text)
    if media in ("application/yaml", "application/x-yaml", "text/yaml",
                 "application/apply-patch+yaml"):
        docs = load_yaml_documents(text)
        if len(docs) != 1:
            raise bad_request(f"expected one YAML document in the body, got {len(docs)}")
        return docs[0]
    raise unsupported_media_type(
        f"the body of the request was in an unknown format - accepted media types include: "
        f"application/json, application/yaml, {protobuf.MEDIA_TYPE} (got {media!r})")


def require_object(value: object, *, what: str = "the body") -> JsonObject:
    if not isinstance(value, dict):
        raise ApiError(400, "BadRequest", f"{what} must be a JSON object")
    return value
