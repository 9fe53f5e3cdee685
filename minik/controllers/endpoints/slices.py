"""The plan of the slice controllers: which EndpointSlices to create, update and delete.

A pure function in the manner of Kubernetes' slice reconciler
(`staging/src/k8s.io/endpointslice/reconciler.go`), shared by the
EndpointSlice controller and the mirroring controller. Its input is the
wanted endpoints, grouped by address type and port list (every endpoint of a
slice shares the slice's ports, so pods whose named ports resolve to
different numbers land in different slices), the slices that exist, and the
metadata every slice must carry (`SliceMeta`).

The plan changes as little as it can, so that consumers (the proxy, DNS)
see small updates: an existing slice of a group keeps the wanted endpoints
it already holds (updated in place) and loses the others; a slice left
empty is deleted; the endpoints still unplaced fill the kept slices up to
`max_endpoints` and then new slices. A slice of a group no longer wanted is
deleted. A Service with no endpoints at all keeps one empty "placeholder"
slice, as Kubernetes' does, so that consumers can tell "no endpoints" from
"not yet synced".
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field

from minik.api.meta import annotations_of, labels_of, meta_of, owner_references_of
from minik.api.objects import Endpoint, EndpointPort, EndpointSlice, OwnerReference

MAX_ENDPOINTS_PER_SLICE = 100
PLACEHOLDER_ADDRESS_TYPE = "IPv4"

PortsKey = tuple[tuple[str, int, str, str], ...]
GroupKey = tuple[str, PortsKey]


def ports_key(ports: Iterable[EndpointPort] | None) -> PortsKey:
    return tuple((p.get("name", ""), p.get("port", 0), p.get("protocol", ""),
                  p.get("appProtocol", "")) for p in ports or [])


def endpoint_key(endpoint: Endpoint) -> tuple[str, ...]:
    """An endpoint is its addresses and its pod: the same pod keeps its place."""
    return (*endpoint["addresses"], endpoint.get("targetRef", {}).get("uid", ""))


@dataclass
class EndpointGroup:
    """The endpoints that share one address type and one list of ports."""

    address_type: str
    ports: list[EndpointPort]
    endpoints: list[Endpoint] = field(default_factory=list)

    @property
    def key(self) -> GroupKey:
        return self.address_type, ports_key(self.ports)


def group_endpoints(entries: Iterable[tuple[str, list[EndpointPort], Endpoint]]
                    ) -> list[EndpointGroup]:
    """Group (address type, ports, endpoint) entries, endpoints sorted by address."""
    groups: dict[GroupKey, EndpointGroup] = {}
    for address_type, ports, endpoint in entries:
        group = EndpointGroup(address_type, ports)
        groups.setdefault(group.key, group).endpoints.append(endpoint)
    for group in groups.values():
        group.endpoints.sort(key=endpoint_key)
    return [groups[k] for k in sorted(groups)]


@dataclass(frozen=True)
class SliceMeta:
    """What every slice of one Service carries besides its endpoints."""

    namespace: str
    generate_name: str
    labels: dict[str, str]
    annotations: dict[str, str]
    owner: OwnerReference
    on_write: dict[str, str] = field(default_factory=dict)
    """Annotations set on each slice written, which alone are no reason to write one (the
    `last-change-trigger-time`)."""

    def holds(self, slice_: EndpointSlice) -> bool:
        annotations = {k: v for k, v in annotations_of(slice_).items()
                       if k not in self.on_write}
        return (labels_of(slice_) == self.labels and annotations == self.annotations
                and owner_references_of(slice_) == [self.owner])

    def apply(self, slice_: EndpointSlice) -> None:
        md = slice_.setdefault("metadata", {})
        md["namespace"] = self.namespace
        md["labels"] = dict(self.labels)
        md["annotations"] = {**self.annotations, **self.on_write}
        md["ownerReferences"] = [dict(self.owner)]  # type: ignore[list-item]


@dataclass
class SlicePlan:
    create: list[EndpointSlice] = field(default_factory=list)
    update: list[EndpointSlice] = field(default_factory=list)
    delete: list[EndpointSlice] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.create or self.update or self.delete)


def _slice_key(slice_: EndpointSlice) -> GroupKey:
    return slice_.get("addressType", ""), ports_key(slice_.get("ports"))


def new_slice(meta: SliceMeta, address_type: str, ports: list[EndpointPort],
              endpoints: list[Endpoint]) -> EndpointSlice:
    slice_: EndpointSlice = {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"generateName": meta.generate_name},
        "addressType": address_type, "ports": copy.deepcopy(ports),
        "endpoints": copy.deepcopy(endpoints)}
    meta.apply(slice_)
    return slice_


def plan_slices(groups: list[EndpointGroup], existing: list[EndpointSlice], meta: SliceMeta,
                *, max_endpoints: int = MAX_ENDPOINTS_PER_SLICE) -> SlicePlan:
    """The writes that turn `existing` into slices holding exactly `groups`' endpoints."""
    plan = SlicePlan()
    wanted = {g.key: g for g in groups if g.endpoints}
    by_group: dict[GroupKey, list[EndpointSlice]] = {}
    for slice_ in sorted(existing, key=lambda s: meta_of(s).get("name", "")):
        by_group.setdefault(_slice_key(slice_), []).append(slice_)
    if not wanted:
        return _placeholder_plan(existing, meta)
    for key, slices in by_group.items():
        if key not in wanted:
            plan.delete.extend(slices)
    for key, group in wanted.items():
        _plan_group(group, by_group.get(key, []), meta, max_endpoints, plan)
    return plan


def _plan_group(group: EndpointGroup, slices: list[EndpointSlice], meta: SliceMeta,
                max_endpoints: int, plan: SlicePlan) -> None:
    remaining = {endpoint_key(e): e for e in group.endpoints}
    kept: list[tuple[EndpointSlice, list[Endpoint], bool]] = []
    for slice_ in slices:
        held = [remaining.pop(k) for e in slice_.get("endpoints") or []
                if (k := endpoint_key(e)) in remaining]
        if not held:
            plan.delete.append(slice_)
            continue
        changed = held != (slice_.get("endpoints") or []) or not meta.holds(slice_)
        kept.append((slice_, held, changed))
    unplaced = list(remaining.values())
    for slice_, held, changed in kept:
        room = max_endpoints - len(held)
        if room > 0 and unplaced:
            held, unplaced, changed = held + unplaced[:room], unplaced[room:], True
        if changed:
            updated = copy.deepcopy(slice_)
            updated["endpoints"] = copy.deepcopy(held)
            meta.apply(updated)
            plan.update.append(updated)
    for start in range(0, len(unplaced), max_endpoints):
        plan.create.append(new_slice(meta, group.address_type, group.ports,
                                     unplaced[start:start + max_endpoints]))


def _placeholder_plan(existing: list[EndpointSlice], meta: SliceMeta) -> SlicePlan:
    """No endpoints: one empty slice stays (the first existing one, emptied), no more."""
    plan = SlicePlan()
    ordered = sorted(existing, key=lambda s: (bool(s.get("endpoints") or s.get("ports")),
                                              meta_of(s).get("name", "")))
    if not ordered:
        plan.create.append(new_slice(meta, PLACEHOLDER_ADDRESS_TYPE, [], []))
        return plan
    first, rest = ordered[0], ordered[1:]
    plan.delete.extend(rest)
    if first.get("endpoints") or first.get("ports") or not meta.holds(first):
        updated = copy.deepcopy(first)
        updated["endpoints"], updated["ports"] = [], []
        meta.apply(updated)
        plan.update.append(updated)
    return plan
