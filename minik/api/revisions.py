"""Revisions of a workload's pod template, as a rollout and `kubectl rollout` see them.

A Deployment's ReplicaSets carry the revision they were made for in the
`deployment.kubernetes.io/revision` annotation and their template's hash in
the `pod-template-hash` label. Two templates are the same revision when they
are equal but for that label (`equal_ignore_hash`), compared in a normal
form without nulls, empty maps and empty lists and with canonical
quantities, so that the Go re-encoding `rollout undo` sends still finds its
old ReplicaSet. The deployment controller and minik's `rollout` command
both need this, as Kubernetes' controller and kubectl share `deploymentutil`.

The short hashes in a ReplicaSet's and a ControllerRevision's name are FNV
hashes of the template printed in decimal and spelt with `safe_encode`'s
alphabet (apimachinery's `rand.SafeEncodeString`, which has no vowels, so
no word appears in a name).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Mapping
from typing import Any, cast

from minik.api.meta import annotations_of
from minik.api.models.quantity import parse_quantity
from minik.api.objects import AnyObject, JsonObject

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV_OFFSET, _FNV_PRIME = 2166136261, 16777619


def fnv32(data: bytes) -> int:
    """FNV-1 (Go's `fnv.New32`), which ControllerRevision names hash with."""
    h = _FNV_OFFSET
    for byte in data:
        h = ((h * _FNV_PRIME) & 0xFFFFFFFF) ^ byte
    return h


def fnv32a(data: bytes) -> int:
    """FNV-1a (Go's `fnv.New32a`), which a ReplicaSet's pod-template-hash uses."""
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def safe_encode(hash_value: int) -> str:
    """The decimal digits of `hash_value` spelt with the vowel-free alphabet."""
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in str(hash_value))


def revision(obj: AnyObject) -> int:
    """The object's revision annotation; 0 when it has none (or not a number)."""
    try:
        return int(annotations_of(obj).get(REVISION, 0))
    except ValueError:
        return 0


def _canonical_quantities(resources: JsonObject) -> None:
    for group in ("requests", "limits"):
        for name, value in (resources.get(group) or {}).items():
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                with contextlib.suppress(ValueError):
                    resources[group][name] = format(parse_quantity(value).normalize(), "f")


def _prune(value: Any) -> Any:
    """Drop nulls, empty maps and empty lists, at every depth."""
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def normal_template(template: Mapping[str, Any]) -> JsonObject:
    """The semantic content of a pod template: what `equal_ignore_hash` compares."""
    result = copy.deepcopy(template)
    labels = (result.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    pod_spec = result.get("spec") or {}
    for key in ("containers", "initContainers"):
        for container in pod_spec.get(key) or []:
            if isinstance(container.get("resources"), dict):
                _canonical_quantities(container["resources"])
    return cast(JsonObject, _prune(result))


def equal_ignore_hash(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return normal_template(a) == normal_template(b)
