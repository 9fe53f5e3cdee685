"""The LimitRanger admission plugin: a namespace's LimitRanges default and bound resources.

As Kubernetes' `plugin/pkg/admission/limitranger`, on create:

- Pods: each `Container` item's `default` and `defaultRequest` fill the
  limits and requests a container (or init container) leaves unset, noted in
  the annotation `kubernetes.io/limit-ranger`; then every container is held
  to the item's `min`, `max` and `maxLimitRequestRatio`, and the pod's sums to
  the `Pod` items'. Kubernetes defaults a pod (requests from limits) before
  admission, so the pod is defaulted here first.
- PersistentVolumeClaims: `PersistentVolumeClaim` items bound the requested `storage`.

A violation is 403 with Kubernetes' messages (`maximum cpu usage per Container
is 500m, but limit is 1`), several in brackets. Updates are not checked: a
pod's resources cannot change, and a claim's growth is the quota's business.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from minik.api import meta
from minik.api.defaults import apply_defaults
from minik.api.models.quantity import format_quantity, is_binary, parse_quantity
from minik.api.resources import LIMITRANGES, PODS
from minik.apiserver.admission import forbidden
from minik.store import Store

JsonObject = dict[str, Any]
Resources = dict[str, str]

ANNOTATION = "kubernetes.io/limit-ranger"


def _resources(container: JsonObject, key: str) -> Resources:
    resources: JsonObject = container.setdefault("resources", {})
    values: Resources = resources.setdefault(key, {})
    return values


def _merge(container: JsonObject, item: JsonObject, what: str) -> list[str]:
    """Fill the container's unset limits and requests from the item; note what was set."""
    notes = []
    for key, default_key, word in (("requests", "defaultRequest", "request"),
                                   ("limits", "default", "limit")):
        defaults = item.get(default_key) or {}
        current = (container.get("resources") or {}).get(key) or {}
        missing = sorted(name for name in defaults if name not in current)
        if missing:
            target = _resources(container, key)
            for name in missing:
                target[name] = defaults[name]
            notes.append(f"{', '.join(missing)} {word} for {what} {container.get('name')}")
    return notes


def _min_constraint(kind: str, name: str, enforced: str, requests: Resources,
                    limits: Resources) -> str | None:
    floor = parse_quantity(enforced)
    if name not in requests:
        return f"minimum {name} usage per {kind} is {enforced}.  No request is specified"
    if parse_quantity(requests[name]) < floor:
        return f"minimum {name} usage per {kind} is {enforced}, but request is {requests[name]}"
    if name in limits and parse_quantity(limits[name]) < floor:
        return f"minimum {name} usage per {kind} is {enforced}, but limit is {limits[name]}"
    return None


def _max_constraint(kind: str, name: str, enforced: str, requests: Resources,
                    limits: Resources) -> str | None:
    ceiling = parse_quantity(enforced)
    if name not in limits:
        return f"maximum {name} usage per {kind} is {enforced}.  No limit is specified"
    if parse_quantity(limits[name]) > ceiling:
        return f"maximum {name} usage per {kind} is {enforced}, but limit is {limits[name]}"
    if name in requests and parse_quantity(requests[name]) > ceiling:
        return f"maximum {name} usage per {kind} is {enforced}, but request is {requests[name]}"
    return None


def _ratio_constraint(kind: str, name: str, enforced: str, requests: Resources,
                      limits: Resources) -> str | None:
    request = parse_quantity(requests[name]) if name in requests else Decimal(0)
    limit = parse_quantity(limits[name]) if name in limits else Decimal(0)
    prefix = f"{name} max limit to request ratio per {kind} is {enforced}"
    if request == 0:
        return f"{prefix}, but no request is specified or request is 0"
    if limit == 0:
        return f"{prefix}, but no limit is specified or limit is 0"
    ratio = limit / request
    if ratio > parse_quantity(enforced):
        return f"{prefix}, but provided ratio is {float(ratio):f}"
    return None


def item_errors(kind: str, item: JsonObject, requests: Resources,
                limits: Resources) -> list[str]:
    """Every bound of one LimitRange item that these requests and limits break."""
    errors = []
    for key, rule in (("min", _min_constraint), ("max", _max_constraint),
                      ("maxLimitRequestRatio", _ratio_constraint)):
        for name, enforced in sorted((item.get(key) or {}).items()):
            if (message := rule(kind, name, str(enforced), requests, limits)) is not None:
                errors.append(message)
    return errors


def _claim_errors(item: JsonObject, requests: Resources) -> list[str]:
    """A claim's request against the item's min and max: its limits are not user input, and
    the max bounds the request (`PersistentVolumeClaimValidateLimitFunc`)."""
    kind, errors = "PersistentVolumeClaim", []
    for name, enforced in sorted((item.get("min") or {}).items()):
        if (message := _min_constraint(kind, name, str(enforced), requests, {})) is not None:
            errors.append(message)
    for name, enforced in sorted((item.get("max") or {}).items()):
        prefix = f"maximum {name} usage per {kind} is {enforced}"
        if name not in requests:
            errors.append(f"{prefix}.  No request is specified")
        elif parse_quantity(requests[name]) > parse_quantity(enforced):
            errors.append(f"{prefix}, but request is {requests[name]}")
    return errors


def _sum(containers: list[JsonObject], key: str) -> Resources:
    totals: dict[str, Decimal] = {}
    binary: set[str] = set()
    for container in containers:
        for name, value in ((container.get("resources") or {}).get(key) or {}).items():
            totals[name] = totals.get(name, Decimal(0)) + parse_quantity(value)
            if is_binary(value):
                binary.add(name)
    return {name: format_quantity(total, binary=name in binary)
            for name, total in totals.items()}


def _pod_totals(spec: JsonObject, key: str) -> Resources:
    """`podRequests`/`podLimits`: the containers' sum, or an init container's larger need."""
    totals = _sum(spec.get("containers") or [], key)
    for init in spec.get("initContainers") or []:
        for name, value in ((init.get("resources") or {}).get(key) or {}).items():
            if name not in totals or parse_quantity(value) > parse_quantity(totals[name]):
                totals[name] = value
    return totals


def _refusal(plural: str, name: str, errors: list[str]) -> Exception:
    text = errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]"
    return forbidden(plural, "", name, text)


class LimitRanger:
    """Defaults and bounds from the LimitRanges of the object's namespace."""

    async def admit(self, store: Store, old: JsonObject | None, new: JsonObject, *,
                    dry_run: bool = False) -> None:
        if old is not None:
            return
        md = meta.metadata(new)
        records, _ = await store.list(LIMITRANGES.prefix(str(md.get("namespace") or "")))
        items = [item for r in records
                 for item in (r.value.get("spec") or {}).get("limits") or []]
        if not items:
            return
        if new.get("kind") == "Pod":
            self._admit_pod(new, items)
        elif new.get("kind") == "PersistentVolumeClaim":
            requests = ((new.get("spec") or {}).get("resources") or {}).get("requests") or {}
            errors = [e for item in items if item.get("type") == "PersistentVolumeClaim"
                      for e in _claim_errors(item, requests)]
            if errors:
                raise _refusal("persistentvolumeclaims", str(md.get("name", "")), errors)

    @staticmethod
    def _admit_pod(pod: JsonObject, items: list[JsonObject]) -> None:
        defaulted = apply_defaults(PODS, pod)
        pod.clear()
        pod.update(defaulted)
        spec = pod.get("spec") or {}
        notes: list[str] = []
        for item in items:
            if item.get("type") != "Container":
                continue
            for key, what in (("containers", "container"), ("initContainers", "init container")):
                for container in spec.get(key) or []:
                    notes += _merge(container, item, what)
        if notes:
            annotations = meta.metadata(pod).setdefault("annotations", {})
            annotations[ANNOTATION] = f"LimitRanger plugin set: {'; '.join(notes)}"
        errors = []
        for item in items:
            if item.get("type") == "Container":
                for container in (spec.get("containers") or []) + (
                        spec.get("initContainers") or []):
                    resources = container.get("resources") or {}
                    errors += item_errors("Container", item, resources.get("requests") or {},
                                          resources.get("limits") or {})
            elif item.get("type") == "Pod":
                errors += item_errors("Pod", item, _pod_totals(spec, "requests"),
                                      _pod_totals(spec, "limits"))
        if errors:
            raise _refusal("pods", meta.name_of(pod), errors)
