"""The rules a user holds: from the bindings whose subjects name them.

As Kubernetes' `DefaultRuleResolver`: every ClusterRoleBinding naming the
user (by name, by one of their groups, or as a service account) grants
its ClusterRole's rules everywhere; in a namespace, every RoleBinding
there naming the user grants its Role's (or ClusterRole's) rules in that
namespace. A binding whose role is missing grants nothing and is
reported (`clusterrole.rbac.authorization.k8s.io "x" not found`), as the
authorizer's reason and a rules review's `evaluationError`. A service
account subject without a namespace means the binding's namespace.

Roles and bindings are read from the store on each question: minik has
few of them, and requests by `system:masters` (every component of minik
itself) never get here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from minik.api.resources import CLUSTERROLEBINDINGS, CLUSTERROLES, ROLEBINDINGS, ROLES
from minik.apiserver.authn import UserInfo
from minik.apiserver.rbac.rules import PolicyRule
from minik.apiserver.serviceaccount_tokens import SERVICE_ACCOUNT_PREFIX
from minik.store.protocol import Store


@dataclass(slots=True)
class Resolved:
    """Rules found, and the problems met finding them."""

    rules: list[PolicyRule] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    """Parallel to `rules`: the binding that grants each, as upstream describes it."""
    errors: list[str] = field(default_factory=list)


def applies(subject: dict[str, Any], user: UserInfo, namespace: str) -> bool:
    """Whether a binding's subject names `user` (upstream's `appliesToUser`)."""
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return bool(user.name == name)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        sa_namespace = subject.get("namespace") or namespace
        return bool(sa_namespace) and user.name == f"{SERVICE_ACCOUNT_PREFIX}{sa_namespace}:{name}"
    return False


def _describe_subject(subject: dict[str, Any], namespace: str) -> str:
    name = subject.get("name", "")
    if subject.get("kind") == "ServiceAccount":
        name = f"{name}/{subject.get('namespace') or namespace}"
    return f'{subject.get("kind")} "{name}"'


def binding_subject(binding: dict[str, Any], user: UserInfo) -> str | None:
    """How upstream describes the binding and the subject of it naming `user`, if one does."""
    meta = binding.get("metadata") or {}
    namespace = meta.get("namespace") or ""
    subject = next((s for s in binding.get("subjects") or [] if applies(s, user, namespace)),
                   None)
    if subject is None:
        return None
    ref = binding.get("roleRef") or {}
    kind, name = ("RoleBinding", f"{namespace}/{meta.get('name')}") if namespace else (
        "ClusterRoleBinding", meta.get("name"))
    return (f'{kind} "{name}" of {ref.get("kind")} "{ref.get("name")}" to '
            f"{_describe_subject(subject, namespace)}")


class RuleResolver:
    """Reads roles and bindings from the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def role_rules(self, role_ref: dict[str, Any], namespace: str) -> list[PolicyRule]:
        """The rules a `roleRef` names; LookupError, worded as upstream, when it is missing."""
        kind, name = role_ref.get("kind"), role_ref.get("name", "")
        if kind == "ClusterRole":
            record = await self.store.get(CLUSTERROLES.key(None, name))
        elif kind == "Role":
            record = await self.store.get(ROLES.key(namespace, name))
        else:
            raise LookupError(f"unsupported role reference kind: {kind!r}")
        if record is None:
            raise LookupError(f'{str(kind).lower()}.rbac.authorization.k8s.io "{name}" not found')
        return [PolicyRule.from_wire(r) for r in record.value.get("rules") or []]

    async def _bound(self, bindings: list[dict[str, Any]], user: UserInfo,
                     namespace: str, found: Resolved) -> None:
        for binding in bindings:
            source = binding_subject(binding, user)
            if source is None:
                continue
            try:
                rules = await self.role_rules(binding.get("roleRef") or {}, namespace)
            except LookupError as exc:
                found.errors.append(str(exc))
                continue
            found.rules += rules
            found.sources += [source] * len(rules)

    async def rules_for(self, user: UserInfo, namespace: str) -> Resolved:
        """The rules `user` holds in `namespace` (cluster-wide ones only, for "")."""
        found = Resolved()
        records, _ = await self.store.list(CLUSTERROLEBINDINGS.prefix(None))
        await self._bound([r.value for r in records], user, "", found)
        if namespace:
            records, _ = await self.store.list(ROLEBINDINGS.prefix(namespace))
            await self._bound([r.value for r in records], user, namespace, found)
        return found
