"""A container's resource requests and limits, checked as `validateResourceRequirements` does.

What the scheduler fits and the agent turns into Docker limits, so a value
Docker would refuse is refused here (422) instead of failing at the node:
every name is a standard container resource (cpu, memory,
ephemeral-storage, hugepages-*) or an extended one (`example.com/gpu`);
no quantity is negative; a request is within its limit; extended
resources and huge pages cannot be overcommitted (request equals limit,
and a request needs a limit) and extended ones are whole numbers.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import model_validator

from minik.api import names
from minik.api.errors import Cause
from minik.api.models.base import K8sModel, Quantity, invalid, raise_any, required
from minik.api.models.quantity import parse_quantity

STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
HUGE_PAGES = "hugepages-"
NATIVE_DOMAIN = "kubernetes.io/"


def _is_native(name: str) -> bool:
    return "/" not in name or NATIVE_DOMAIN in name


def _is_extended(name: str) -> bool:
    """`IsExtendedResourceName`: domain-prefixed, outside kubernetes.io, a qualified name."""
    return (not _is_native(name) and not name.startswith("requests.")
            and not names.is_qualified_name("requests." + name))


def _overcommit_allowed(name: str) -> bool:
    return _is_native(name) and not name.startswith(HUGE_PAGES)


def _name_causes(name: str, path: str) -> list[Cause]:
    """`validateContainerResourceName`."""
    causes = [invalid(path, name, m) for m in names.is_qualified_name(name)]
    if causes:
        return causes
    if "/" not in name:
        if name not in STANDARD_CONTAINER_RESOURCES and not name.startswith(HUGE_PAGES):
            return [invalid(path, name, "must be a standard resource for containers")]
    elif not _is_native(name) and not _is_extended(name):
        return [invalid(path, name, "doesn't follow extended resource name standard")]
    return []


def _quantity_causes(name: str, value: Quantity, path: str) -> list[Cause]:
    """`ValidateResourceQuantityValue`: not negative; a whole number for extended resources."""
    amount = parse_quantity(value)
    if amount < 0:
        return [invalid(path, str(value), "must be greater than or equal to 0")]
    if _is_extended(name) and amount != amount.to_integral_value():
        return [invalid(path, str(value), "must be an integer")]
    return []


class ResourceRequirements(K8sModel):
    limits: dict[str, Quantity] | None = None
    requests: dict[str, Quantity] | None = None

    @model_validator(mode="after")
    def _valid(self) -> ResourceRequirements:
        raise_any(self._causes())
        return self

    def _causes(self) -> Iterator[Cause]:
        limits = self.limits or {}
        for field, values in (("limits", limits), ("requests", self.requests or {})):
            for name, value in values.items():
                path = f"{field}[{name}]"
                yield from _name_causes(name, path)
                yield from _quantity_causes(name, value, path)
        for name, request in (self.requests or {}).items():
            limit = limits.get(name)
            if limit is None:
                if not _overcommit_allowed(name):
                    yield required("limits", "Limit must be set for non overcommitable resources")
            elif not _overcommit_allowed(name):
                if parse_quantity(request) != parse_quantity(limit):
                    yield invalid("requests", str(request),
                                  f"must be equal to {name} limit of {limit}")
            elif parse_quantity(request) > parse_quantity(limit):
                yield invalid(f"requests[{name}]", str(request),
                              f"must be less than or equal to {name} limit of {limit}")
