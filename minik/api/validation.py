"""Validation of request bodies, in the order the real API server applies it.

1. `apiVersion`/`kind` must be those of the endpoint (missing ones are
   taken from the endpoint, as Kubernetes' decoder does).
2. Decoding: every value must have its schema type (400, Go's wording), and
   with `fieldValidation=Strict` every field must exist in the Kubernetes
   schema (400 `strict decoding error`). Under `Warn` and `Ignore` unknown
   fields are dropped from the object, as Kubernetes' decoder prunes them
   (`Warn` also names each in a warning): `validate` changes the object it is
   given, so callers pass the copy they will store. Valid Kubernetes fields
   that minik does not act on are known to the schema and kept. An absent
   parameter means `Warn`, the server default.
3. The pydantic models of the fields minik acts on, plus the name rules of
   `metadata` (422 Invalid, with field-level causes).
4. On update, the fields Kubernetes makes immutable.

Kubernetes defaults before it validates; either order works here, as both
sides of an update are defaulted before they are compared. The returned
warnings name unknown fields (Warn) and every valid Kubernetes field that
minik stores but does not act on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from minik.api import errors, names, schema
from minik.api.defaults import apply_defaults
from minik.api.errors import Cause
from minik.api.models import base
from minik.api.models.base import K8sModel, go_quote, join
from minik.api.models.kinds import model_for
from minik.api.models.updates import update_causes
from minik.api.resources import ResourceType

FIELD_VALIDATION_MODES = ("Ignore", "Warn", "Strict")
NOT_ACTED = "stored but not acted on by minik"


def validate(
    rt: ResourceType, obj: dict[str, Any], *, field_validation: str = "Strict",
    old: dict[str, Any] | None = None, subresource: str | None = None,
) -> list[str]:
    """Raise `errors.ApiError` for a body Kubernetes would refuse; return warnings.

    `subresource` is the one written (`ephemeralcontainers` has update rules of its own)."""
    mode = _mode(field_validation)
    _check_identity(rt.api_version, rt.kind, obj)
    unknown = _check_fields(rt.api_version, rt.kind, obj, mode)
    causes = metadata_causes(rt, obj.get("metadata") or {}, creating=old is None)
    model, model_causes = _run_model(rt.api_version, rt.kind, obj)
    causes += model_causes
    if not causes and old is not None:
        causes += update_causes(rt.kind, apply_defaults(rt, obj), apply_defaults(rt, old),
                                subresource=subresource)
    if old is None and rt.kind == "Pod" and (obj.get("spec") or {}).get("ephemeralContainers"):
        causes.append(base.forbidden("spec.ephemeralContainers", "cannot be set on create"))
    if causes:
        raise errors.invalid(rt.kind, _name(obj), causes, group=rt.group)
    return _warnings(unknown, model, mode)


def validate_body(
    api_version: str, kind: str, obj: dict[str, Any], *, field_validation: str = "Strict"
) -> list[str]:
    """Validate a subresource or option body (Scale, Binding, Eviction, DeleteOptions)."""
    mode = _mode(field_validation)
    _check_identity(api_version, kind, obj)
    unknown = _check_fields(api_version, kind, obj, mode)
    model, causes = _run_model(api_version, kind, obj)
    if causes:
        group = api_version.rpartition("/")[0]
        raise errors.invalid(kind, _name(obj), causes, group=group)
    return _warnings(unknown, model, mode)


def _mode(field_validation: str) -> str:
    """The effective `fieldValidation`; absent means Warn, as on the real server."""
    mode = field_validation or "Warn"
    if mode not in FIELD_VALIDATION_MODES:
        raise errors.bad_request(
            f'fieldValidation must be one of "Ignore", "Warn" or "Strict", not "{mode}"'
        )
    return mode


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name") or "") if isinstance(meta, dict) else ""


def _check_identity(api_version: str, kind: str, obj: dict[str, Any]) -> None:
    if not isinstance(obj, dict):
        raise errors.bad_request(f"the body of a {kind} must be a JSON object")
    got_version, got_kind = obj.get("apiVersion"), obj.get("kind")
    if got_version not in (None, "", api_version):
        raise errors.bad_request(
            f"the API version in the data ({got_version}) does not match the expected API "
            f"version ({api_version})"
        )
    if got_kind not in (None, "", kind):
        raise errors.bad_request(
            f"the kind in the data ({got_kind}) does not match the expected kind ({kind})"
        )


def _check_fields(api_version: str, kind: str, obj: dict[str, Any], mode: str) -> list[str]:
    """Decode-time checks; returns the unknown field paths."""
    type_name = schema.type_name(api_version, kind)
    if type_name is None:
        return []
    found = schema.inspect(type_name, obj)
    version = api_version.rpartition("/")[2]
    prefix = f'{kind} in version "{version}" cannot be handled as a {kind}'
    if found.mismatches:
        raise errors.bad_request(f"{prefix}: {found.mismatches[0].detail}")
    if found.unknown and mode == "Strict":
        listed = ", ".join(f"unknown field {go_quote(p)}" for p in found.unknown)
        raise errors.bad_request(f"{prefix}: strict decoding error: {listed}")
    found.prune()
    return found.unknown


def _run_model(
    api_version: str, kind: str, obj: dict[str, Any]
) -> tuple[K8sModel | None, list[Cause]]:
    model_cls = model_for(api_version, kind)
    if model_cls is None:
        return None, []
    try:
        return model_cls.model_validate(obj, context={"kind": kind}), []
    except ValidationError as exc:
        return None, list(pydantic_causes(exc))


def pydantic_causes(exc: ValidationError) -> Iterator[Cause]:
    """pydantic errors as Kubernetes causes, with Kubernetes field paths."""
    for err in exc.errors(include_url=False):
        path = loc_path(err["loc"])
        ctx = err.get("ctx") or {}
        if err["type"] == base.K8S_ERROR:
            for cause in ctx["causes"]:
                yield Cause(join(path, cause.field), cause.message, cause.reason)
        elif err["type"] == "missing" or (err["input"] is None and err["type"].endswith("_type")):
            yield base.required(path)
        else:
            yield base.invalid(path, err.get("input"), err["msg"])


def loc_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path = join(path, f"[{part}]" if isinstance(part, int) else str(part))
    return path


def metadata_causes(
    rt: ResourceType, meta: dict[str, Any], *, creating: bool = True
) -> list[Cause]:
    """`ValidateObjectMeta`'s name, generateName and namespace rules for the kind.

    Names are checked on create only: they cannot change, and an object created
    under an older rule must stay updatable (to remove its finalizers, say).
    """
    name, generate_name = meta.get("name"), meta.get("generateName")
    causes: list[Cause] = []
    if not name and not generate_name:
        causes.append(base.required("metadata.name", "name or generateName is required"))
    if creating:
        causes += _name_causes(rt, name, generate_name)
    causes += _namespace_causes(rt, meta.get("namespace"))
    return causes


def _name_causes(rt: ResourceType, name: str | None, generate_name: str | None) -> list[Cause]:
    rule = names.name_rule(rt.kind)
    causes: list[Cause] = []
    if generate_name:
        causes += [base.invalid("metadata.generateName", generate_name, m)
                   for m in rule(generate_name, True)]
    if name:
        causes += [base.invalid("metadata.name", name, m) for m in rule(name, False)]
        if rt.kind == "CronJob" and len(name) > names.DNS1035_LABEL_MAX - 11:
            causes.append(base.invalid("metadata.name", name, "must be no more than 52 characters"))
    return causes


def _namespace_causes(rt: ResourceType, namespace: str | None) -> list[Cause]:
    if not namespace:
        return []
    if not rt.namespaced:
        return [base.forbidden("metadata.namespace", "not allowed on this type")]
    return [base.invalid("metadata.namespace", namespace, m)
            for m in names.is_dns1123_label(namespace)]


def _warnings(unknown: list[str], model: K8sModel | None, mode: str) -> list[str]:
    warnings = [f"unknown field {go_quote(p)}" for p in unknown] if mode == "Warn" else []
    if model is not None:
        skip = set(unknown)
        warnings += [f"{p}: {NOT_ACTED}" for p in not_acted(model) if p not in skip]
    return warnings


def not_acted(model: K8sModel, path: str = "") -> Iterator[str]:
    """Paths of fields kept in the object that no model declares."""
    for key, value in (model.model_extra or {}).items():
        if value is not None:
            yield join(path, key)
    for name, info in type(model).model_fields.items():
        yield from _nested(getattr(model, name), join(path, info.alias or name))


def _nested(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, K8sModel):
        yield from not_acted(value, path)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, K8sModel):
                yield from not_acted(item, f"{path}[{i}]")
