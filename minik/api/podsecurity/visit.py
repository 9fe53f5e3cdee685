"""What every check shares: the containers of a pod spec, and Kubernetes' wording helpers."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Violation:
    """A failed check: the short reason and the detail naming what failed."""

    reason: str
    detail: str = ""


def containers(spec: JsonObject) -> Iterator[JsonObject]:
    """Init, regular and ephemeral containers, in that order (`visitContainers`)."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                yield container


def security_context(obj: JsonObject) -> JsonObject:
    context = obj.get("securityContext")
    return context if isinstance(context, dict) else {}


def name_of(container: JsonObject) -> str:
    return str(container.get("name", ""))


def quote(text: str) -> str:
    """Go's `%q` of a printable string."""
    return json.dumps(text, ensure_ascii=False)


def join_quote(items: Iterable[str]) -> str:
    return ", ".join(quote(item) for item in items)


def pluralize(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def containers_phrase(names: list[str]) -> str:
    """`container "a"` or `containers "a", "b"`."""
    return f'{pluralize("container", "containers", len(names))} {join_quote(names)}'


def user_namespaced(spec: JsonObject) -> bool:
    """`hostUsers: false`: the pod runs in a user namespace, which relaxes some checks."""
    return spec.get("hostUsers") is False
