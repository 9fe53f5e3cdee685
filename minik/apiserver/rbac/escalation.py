"""Escalation prevention: nobody grants, through a role or a binding, what they do not hold.

As Kubernetes' policy-based role and binding storage: writing a Role or
ClusterRole whose rules the requester does not hold (in that namespace,
or cluster-wide for a ClusterRole) is refused unless they may `escalate`
that role; writing a binding to a role whose rules they do not hold is
refused unless they may `bind` it. A ClusterRole with an aggregation rule
(before or after the write) may gather any rules, so setting, changing or
dropping one needs full authority (`*` on everything), as upstream asks.
Members of `system:masters`, and the
server's own writes (no requester), are never checked. The 403 names the
missing rules as upstream does:

    roles.rbac.authorization.k8s.io "r" is forbidden: user "u" (groups=["g"]) is
    attempting to grant RBAC permissions not currently held:
    {APIGroups:[""], Resources:["secrets"], Verbs:["get"]}
"""

from __future__ import annotations

from typing import Any

from minik.api import errors
from minik.api.resources import RBAC
from minik.apiserver.authn import MASTERS, UserInfo
from minik.apiserver.rbac.attributes import Attributes
from minik.apiserver.rbac.authorizer import REQUESTER, Authorizer
from minik.apiserver.rbac.resolver import RuleResolver
from minik.apiserver.rbac.rules import PolicyRule, compact, uncovered
from minik.store.protocol import Store

ROLE_RESOURCES = {"Role": "roles", "ClusterRole": "clusterroles"}
FULL_AUTHORITY = [PolicyRule(("*",), ("*",), ("*",)), PolicyRule(("*",), non_resource_urls=("*",))]


def _aggregates(role: dict[str, Any] | None) -> bool:
    return bool(((role or {}).get("aggregationRule") or {}).get("clusterRoleSelectors"))


def _go_strings(values: tuple[str, ...]) -> str:
    return "[" + " ".join(f'"{v}"' for v in values) + "]"


def escalation_message(user: UserInfo, missing: list[PolicyRule], problems: list[str]) -> str:
    """Upstream's `ConfirmNoEscalation` error."""
    lines = sorted({rule.compact_string() for rule in compact(missing)})
    message = (f'user "{user.name}" (groups={_go_strings(user.groups)}) is attempting to grant '
               "RBAC permissions not currently held:\n" + "\n".join(lines))
    if problems:
        message += f"; resolution errors: [{' '.join(problems)}]"
    return message


class EscalationAdmission:
    """The admission of one RBAC kind (Role, ClusterRole, RoleBinding, ClusterRoleBinding)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.resource = f"{kind.lower()}s"

    async def admit(self, store: Store, old: dict[str, Any] | None,
                    new: dict[str, Any], *, dry_run: bool = False) -> None:
        user = REQUESTER.get()
        if user is None or MASTERS in user.groups:
            return
        meta = new.get("metadata") or {}
        namespace, name = meta.get("namespace") or "", meta.get("name") or ""
        authorizer = Authorizer(store)
        if self.kind in ROLE_RESOURCES:
            verb, target, wanted_name = "escalate", self.resource, name
        else:
            ref = new.get("roleRef") or {}
            verb, wanted_name = "bind", ref.get("name", "")
            target = ROLE_RESOURCES.get(ref.get("kind", ""), "")
        check = Attributes(user, verb, True, RBAC, "v1", target, "", wanted_name, namespace)
        if (await authorizer.authorize(check)).allowed:
            return
        wanted = await self._granted(authorizer.resolver, new, namespace)
        held = await authorizer.resolver.rules_for(user, namespace)
        missing = uncovered(held.rules, wanted)
        if missing:
            raise errors.forbidden_for(self.resource, name,
                                       escalation_message(user, missing, held.errors), group=RBAC)
        if self.kind == "ClusterRole" and (_aggregates(new) or _aggregates(old)) and uncovered(
                held.rules, FULL_AUTHORITY):
            raise errors.forbidden_for(
                self.resource, name, "must have cluster-admin privileges to use the "
                "aggregationRule", group=RBAC)

    async def _granted(self, resolver: RuleResolver, new: dict[str, Any],
                       namespace: str) -> list[PolicyRule]:
        """The rules the object grants: its own, or its role's."""
        if self.kind in ROLE_RESOURCES:
            return [PolicyRule.from_wire(r) for r in new.get("rules") or []]
        ref = new.get("roleRef") or {}
        try:
            return await resolver.role_rules(ref, namespace)
        except LookupError as exc:
            plural = ROLE_RESOURCES.get(ref.get("kind", ""), "roles")
            raise errors.not_found(plural, ref.get("name", ""), group=RBAC) from exc


RBAC_ADMISSION = {kind: EscalationAdmission(kind)
                  for kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")}
