"""PolicyRules: whether one allows a request, and whether a set covers another.

Matching is Kubernetes' `RuleAllows`: `*` matches any verb, group or
resource; `*/scale` matches the `scale` subresource of any resource;
`resourceNames` restrict to those names (so never match a nameless list
or create); a non-resource URL ending in `*` matches any path it prefixes.

Covering (`Covers`, for escalation prevention) breaks the wanted rules
into atoms of one verb on one group/resource/name (or one URL) and asks
that some held rule covers each; the atoms left over are compacted back
and printed as Kubernetes' `CompactString`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from minik.apiserver.rbac.attributes import Attributes

ALL = "*"


@dataclass(frozen=True, slots=True)
class PolicyRule:
    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def from_wire(cls, rule: dict[str, Any]) -> PolicyRule:
        return cls(*(tuple(rule.get(key) or ()) for key in WIRE_KEYS))

    def to_wire(self) -> dict[str, list[str]]:
        """As Kubernetes writes a rule: every list omitted when empty, but `verbs`."""
        wire = {key: list(value) for key, value in zip(WIRE_KEYS, self._values(), strict=True)
                if value}
        wire.setdefault("verbs", [])
        return wire

    def _values(self) -> tuple[tuple[str, ...], ...]:
        return (self.verbs, self.api_groups, self.resources, self.resource_names,
                self.non_resource_urls)

    def compact_string(self) -> str:
        """Upstream's `CompactString`: `{APIGroups:["apps"], Resources:["pods"], Verbs:["get"]}`."""
        parts = [f"{label}:[{' '.join(_go_quote(v) for v in values)}]"
                 for label, values in (("APIGroups", self.api_groups),
                                       ("Resources", self.resources),
                                       ("NonResourceURLs", self.non_resource_urls),
                                       ("ResourceNames", self.resource_names),
                                       ("Verbs", self.verbs)) if values]
        return "{" + ", ".join(parts) + "}"


WIRE_KEYS = ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs")


def _go_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _url_matches(rule_url: str, path: str) -> bool:
    return rule_url in (ALL, path) or (rule_url.endswith(ALL) and path.startswith(rule_url[:-1]))


def _resource_matches(rule: PolicyRule, combined: str, subresource: str) -> bool:
    return any(r in (ALL, combined) or (subresource and r == f"*/{subresource}")
               for r in rule.resources)


def allows(rule: PolicyRule, attrs: Attributes) -> bool:
    """Kubernetes' `RuleAllows`."""
    if ALL not in rule.verbs and attrs.verb not in rule.verbs:
        return False
    if not attrs.resource_request:
        return any(_url_matches(url, attrs.path) for url in rule.non_resource_urls)
    combined = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    return ((ALL in rule.api_groups or attrs.api_group in rule.api_groups)
            and _resource_matches(rule, combined, attrs.subresource)
            and (not rule.resource_names or attrs.name in rule.resource_names))


def breakdown(rule: PolicyRule) -> Iterator[PolicyRule]:
    """One rule per verb and group/resource/name, or per verb and URL."""
    for group in rule.api_groups:
        for resource in rule.resources:
            for name in rule.resource_names or ("",):
                for verb in rule.verbs:
                    yield PolicyRule((verb,), (group,), (resource,), (name,) if name else ())
    for url in rule.non_resource_urls:
        for verb in rule.verbs:
            yield PolicyRule((verb,), non_resource_urls=(url,))


def _resources_cover(held: tuple[str, ...], wanted: tuple[str, ...]) -> bool:
    if ALL in held:
        return True
    for resource in wanted:
        if resource in held:
            continue
        _, slash, sub = resource.partition("/")
        if not slash or f"*/{sub}" not in held:
            return False
    return True


def _urls_cover(held: tuple[str, ...], wanted: tuple[str, ...]) -> bool:
    return all(any(h == w or (h.endswith(ALL) and w.startswith(h.rstrip(ALL))) for h in held)
               for w in wanted)


def covers_one(owner: PolicyRule, atom: PolicyRule) -> bool:
    """Upstream's `ruleCovers`."""
    if atom.resource_names:
        names = not owner.resource_names or set(atom.resource_names) <= set(owner.resource_names)
    else:
        names = not owner.resource_names
    return ((ALL in owner.verbs or set(atom.verbs) <= set(owner.verbs))
            and (ALL in owner.api_groups or set(atom.api_groups) <= set(owner.api_groups))
            and _resources_cover(owner.resources, atom.resources)
            and _urls_cover(owner.non_resource_urls, atom.non_resource_urls)
            and names)


def uncovered(held: Iterable[PolicyRule], wanted: Iterable[PolicyRule]) -> list[PolicyRule]:
    """The atoms of `wanted` no rule of `held` covers (upstream's `Covers`)."""
    owner = list(held)
    return [atom for rule in wanted for atom in breakdown(rule)
            if not any(covers_one(o, atom) for o in owner)]


def compact(atoms: Iterable[PolicyRule]) -> list[PolicyRule]:
    """Upstream's `CompactRules`: atoms of one group and resource (no names) merge their verbs."""
    merged: dict[tuple[str, str], list[str]] = {}
    rest: list[PolicyRule] = []
    for atom in atoms:
        if atom.resources and not atom.resource_names:
            verbs = merged.setdefault((atom.api_groups[0], atom.resources[0]), [])
            verbs.extend(v for v in atom.verbs if v not in verbs)
        else:
            rest.append(atom)
    return [PolicyRule(tuple(verbs), (group,), (resource,))
            for (group, resource), verbs in merged.items()] + rest
