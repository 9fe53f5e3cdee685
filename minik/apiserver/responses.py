"""Rendering answers: JSON objects, lists, server-side Tables, warnings.

kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io` when it
prints for humans; everything else gets plain objects. Which one a request
gets, and in which media type, is `negotiation`'s decision.

JSON is written as Kubernetes' serializer writes it (Go's `json.Encoder`):
compact, UTF-8, with `<`, `>`, `&`, U+2028 and U+2029 escaped, and a
newline after every body, so that clients comparing bytes see the same.
"""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any

from aiohttp import web

from minik.api import errors, meta
from minik.api.decode import without_surrogates
from minik.api.errors import status_body
from minik.api.resources import ResourceType
from minik.api.tables import build_table
from minik.apiserver import negotiation

GO_ESCAPED = "<>&\u2028\u2029"
GO_ESCAPES = str.maketrans({c: f"\\u{ord(c):04x}" for c in GO_ESCAPED})


def dumps(obj: object) -> str:
    """Compact JSON as Go encodes it, and always encodable as UTF-8.

    Go escapes `<`, `>`, `&`, U+2028 and U+2029 (they only occur inside
    strings). Decoding keeps lone surrogates and non-finite numbers out of the
    store; this is the defence in depth for anything that got in before or
    around it: a lone surrogate is written as U+FFFD and a NaN or infinity as
    null, rather than the whole answer failing, so no stored value can fail a
    list or watch.
    """
    try:
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        text = json.dumps(_finite(obj), separators=(",", ":"), ensure_ascii=False)
    text = without_surrogates(text)
    return text.translate(GO_ESCAPES) if any(c in text for c in GO_ESCAPED) else text


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite(item) for item in value]
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value


def encode(obj: object) -> str:
    """One response body: `json.Encoder.Encode` ends it with a newline."""
    return dumps(obj) + "\n"


def wants_table(request: web.Request) -> bool:
    return negotiation.representation(request).table


def include_object(request: web.Request) -> str:
    return request.query.get("includeObject", "Metadata")


WARNINGS_TOTAL_RUNES = 4 * 1024
WARNING_RUNES = 256


def warning_headers(warnings: list[str]) -> list[tuple[str, str]]:
    """`Warning: 299 - "text"` headers, by the rules of Kubernetes' warning recorder.

    Texts are deduplicated; a text with a control character (which no header
    may carry) or that is not valid Unicode is dropped, as `NewWarningHeader`
    refuses it; quotes and backslashes are escaped. Once the texts pass 4096
    characters in all, every text is cut to 256 and, past 4096 again, the
    rest are left out, so the headers stay bounded whatever a client sends.
    """
    kept: list[str] = []
    written, truncating = 0, False
    for text in dict.fromkeys(w for w in warnings if w and _header_safe(w)):
        if truncating and written >= WARNINGS_TOTAL_RUNES:
            break
        kept.append(text)
        if written + len(text) <= WARNINGS_TOTAL_RUNES or truncating:
            written += len(text[:WARNING_RUNES] if truncating else text)
            continue
        truncating = True
        written = sum(len(t[:WARNING_RUNES]) for t in kept)
    shown = [t[:WARNING_RUNES] for t in kept] if truncating else kept
    return [("Warning", f"299 - {_quoted(t)}") for t in shown]


def _header_safe(text: str) -> bool:
    return not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def status_response(request: web.Request, error: errors.ApiError) -> web.Response:
    """An error's Status, in the media type the request negotiates for errors."""
    response = json_response(error.status(), status=error.code)
    if retry_after := (error.details or {}).get("retryAfterSeconds"):
        response.headers["Retry-After"] = str(retry_after)
    if negotiation.error_media_type(request) == negotiation.YAML:
        negotiation.as_yaml(response)
    return response


def json_response(
    obj: object, *, status: int = 200, warnings: list[str] | None = None
) -> web.Response:
    response = web.Response(text=encode(obj), status=status, content_type="application/json")
    for name, value in warning_headers(warnings or []):
        response.headers.add(name, value)
    return response


def table(
    request: web.Request, rt: ResourceType, objects: list[dict[str, Any]],
    resource_version: str, continue_token: str | None = None,
) -> dict[str, Any]:
    body = build_table(
        rt.kind, objects, now=meta.now(), resource_version=resource_version,
        include_object=include_object(request), continue_token=continue_token,
    )
    return _in_table_version(body, negotiation.representation(request).conversion)


def _in_table_version(body: dict[str, Any],
                      asked: negotiation.GroupVersionKind | None) -> dict[str, Any]:
    """A Table (and its rows' PartialObjectMetadata) in the meta.k8s.io version asked for."""
    if asked is None or asked.version == "v1":
        return body
    api_version = f"{asked.group}/{asked.version}"
    body["apiVersion"] = api_version
    for row in body["rows"]:
        if (row.get("object") or {}).get("kind") == "PartialObjectMetadata":
            row["object"]["apiVersion"] = api_version
    return body


def object_response(
    request: web.Request, rt: ResourceType, obj: dict[str, Any], *, status: int = 200,
    warnings: list[str] | None = None,
) -> web.Response:
    if wants_table(request):
        rv = obj.get("metadata", {}).get("resourceVersion", "")
        return json_response(table(request, rt, [obj], rv), status=status, warnings=warnings)
    return json_response(obj, status=status, warnings=warnings)


def list_body(
    rt: ResourceType, items: list[dict[str, Any]], resource_version: str,
    continue_token: str | None,
) -> dict[str, Any]:
    list_meta: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        list_meta["continue"] = continue_token
    return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": list_meta,
            "items": items}


def deleted(rt: ResourceType, obj: dict[str, Any], removed: bool) -> dict[str, Any]:
    """The answer to a DELETE, as Kubernetes' generic registry gives it.

    An object only marked for deletion comes back as it now is; one removed
    at once comes back too for the kinds whose registry says
    `ReturnDeletedObject`, and as a success Status naming it for the rest
    (`details.kind` is the resource, as Kubernetes sets it).
    """
    if not removed or rt.returns_deleted_object:
        return obj
    md = obj.get("metadata") or {}
    return status_body("Success", details={"name": md.get("name"), "group": rt.group,
                                           "kind": rt.plural, "uid": md.get("uid")})
