"""Rendering answers: JSON objects, lists, server-side Tables, warnings.

kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io` when it
prints for humans; everything else gets plain JSON. Protobuf is never
produced (clients that prefer it accept JSON too).
"""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any

from aiohttp import web

from minik.api import meta
from minik.api.decode import without_surrogates
from minik.api.resources import ResourceType
from minik.api.tables import build_table


def dumps(obj: Any) -> str:
    """Compact JSON that always encodes as UTF-8, so no stored value can fail a list or watch.

    Decoding keeps lone surrogates and non-finite numbers out of the store;
    this is the defence in depth for anything that got in before or around
    it: a lone surrogate is written as U+FFFD and a NaN or infinity as null,
    rather than the whole answer failing.
    """
    try:
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        text = json.dumps(_finite(obj), separators=(",", ":"), ensure_ascii=False)
    return without_surrogates(text)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite(item) for item in value]
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value


def wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    first = accept.split(",")[0]
    return "as=Table" in first and "g=meta.k8s.io" in first


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


def json_response(
    obj: Any, *, status: int = 200, warnings: list[str] | None = None
) -> web.Response:
    response = web.Response(text=dumps(obj), status=status, content_type="application/json")
    for name, value in warning_headers(warnings or []):
        response.headers.add(name, value)
    return response


def table(
    request: web.Request, rt: ResourceType, objects: list[dict[str, Any]],
    resource_version: str, continue_token: str | None = None,
) -> dict[str, Any]:
    return build_table(
        rt.kind, objects, now=meta.now(), resource_version=resource_version,
        include_object=include_object(request), continue_token=continue_token,
    )


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
