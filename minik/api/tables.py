"""Server-side `meta.k8s.io/v1` Tables, as `kubectl get` asks for them.

kubectl prints a Table's cells verbatim, so the server decides every
character: ages (`12s`, `5m`, `2d3h`), `<none>`, `READY 1/1`. This module
owns the Table envelope (column definitions, rows, the per-row object that
kubectl reads for `-A`, `--show-labels` and `--sort-by`). What each kind
shows lives in `minik.api.printers`, with the formatting conventions they
share in `minik.api.printers.formatting`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from minik.api import errors
from minik.api.printers import DEFAULT, PRINTERS, Printer

INCLUDE_OBJECT = ("None", "Object", "Metadata")


def _printer(kind: str) -> Printer:
    return PRINTERS.get(kind, DEFAULT)


def column_definitions(kind: str) -> list[dict[str, Any]]:
    """The `columnDefinitions` of a Table of `kind` (Name and Age for unknown kinds)."""
    return [c.to_dict() for c in _printer(kind).columns]


def row_cells(kind: str, obj: dict[str, Any], *, now: datetime) -> list[Any]:
    """The cells of one object, in the order of `column_definitions(kind)`."""
    return _printer(kind).cells(obj, now)


def build_table(
    kind: str,
    objects: list[dict[str, Any]],
    *,
    now: datetime,
    resource_version: str,
    include_object: str = "Metadata",
    continue_token: str | None = None,
) -> dict[str, Any]:
    """A whole Table; `include_object` is the request's `includeObject` parameter."""
    if include_object not in INCLUDE_OBJECT:
        raise errors.bad_request(
            f'includeObject="{include_object}" is not supported: use None, Object or Metadata'
        )
    metadata: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions(kind),
        "rows": [_row(kind, obj, now, include_object) for obj in objects],
    }


def _row(kind: str, obj: dict[str, Any], now: datetime, include_object: str) -> dict[str, Any]:
    row: dict[str, Any] = {"cells": row_cells(kind, obj, now=now)}
    if include_object == "Object":
        row["object"] = obj
    elif include_object == "Metadata":
        row["object"] = {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata") or {},
        }
    return row
