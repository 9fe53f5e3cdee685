"""rbac.authorization.k8s.io/v1, as Kubernetes' `pkg/apis/rbac/validation` checks it.

A rule has verbs, and either resources (with API groups) or non-resource
URLs, never both; a namespaced Role's rules cannot name URLs. A binding's
`roleRef` names a Role or ClusterRole of this group (a ClusterRoleBinding
only a ClusterRole), and each subject is a User, Group or ServiceAccount:
users and groups in this API group (empty means it, as v1 defaulting
fills it), service accounts in the core group, with a namespace when the
binding is cluster-wide. A ClusterRole's `aggregationRule` needs at least
one selector. `roleRef` never changes (`updates`).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from minik.api import names
from minik.api.errors import Cause
from minik.api.models.base import K8sModel, invalid, not_supported, raise_any, required
from minik.api.models.meta import K8sObject, LabelSelector

GROUP = "rbac.authorization.k8s.io"
SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


class PolicyRule(K8sModel):
    verbs: list[str] | None = None
    api_groups: list[str] | None = None
    resources: list[str] | None = None
    resource_names: list[str] | None = None
    non_resource_urls: list[str] | None = Field(None, alias="nonResourceURLs")

    def causes(self, *, namespaced: bool) -> list[Cause]:
        """`ValidatePolicyRule`, with paths relative to the rule."""
        causes = []
        if not self.verbs:
            causes.append(required("verbs", "verbs must contain at least one value"))
        urls = self.non_resource_urls
        if urls:
            if namespaced:
                causes.append(invalid("nonResourceURLs", urls,
                                      "namespaced rules cannot apply to non-resource URLs"))
            if self.api_groups or self.resources or self.resource_names:
                causes.append(invalid("nonResourceURLs", urls, "rules cannot apply to both "
                                      "regular resources and non-resource URLs"))
            return causes
        if not self.api_groups:
            causes.append(required("apiGroups",
                                   "resource rules must supply at least one api group"))
        if not self.resources:
            causes.append(required("resources", "resource rules must supply at least one resource"))
        return causes


def _rule_causes(rules: list[PolicyRule] | None, *, namespaced: bool) -> list[Cause]:
    return [Cause(f"rules[{i}].{c.field}", c.message, c.reason)
            for i, rule in enumerate(rules or []) for c in rule.causes(namespaced=namespaced)]


class Role(K8sObject):
    rules: list[PolicyRule] | None = None

    @model_validator(mode="after")
    def _rules(self) -> Role:
        raise_any(_rule_causes(self.rules, namespaced=True))
        return self


class AggregationRule(K8sModel):
    cluster_role_selectors: list[LabelSelector] | None = None


class ClusterRole(K8sObject):
    rules: list[PolicyRule] | None = None
    aggregation_rule: AggregationRule | None = None

    @model_validator(mode="after")
    def _rules(self) -> ClusterRole:
        causes = _rule_causes(self.rules, namespaced=False)
        if self.aggregation_rule is not None and not self.aggregation_rule.cluster_role_selectors:
            causes.append(required("aggregationRule.clusterRoleSelectors", "at least one "
                                   "clusterRoleSelector required if aggregationRule is non-nil"))
        raise_any(causes)
        return self


class RoleRef(K8sModel):
    api_group: str = ""
    kind: str = ""
    name: str = ""


class Subject(K8sModel):
    kind: str = ""
    api_group: str | None = None
    name: str = ""
    namespace: str | None = None

    def causes(self, *, namespaced: bool) -> list[Cause]:
        """`ValidateRoleBindingSubject`, with paths relative to the subject."""
        causes = [] if self.name else [required("name")]
        if self.kind == "ServiceAccount":
            if self.name:
                causes += [invalid("name", self.name, m)
                           for m in names.is_dns1123_subdomain(self.name)]
            if self.api_group:
                causes.append(not_supported("apiGroup", self.api_group, [""]))
            if not namespaced and not self.namespace:
                causes.append(required("namespace"))
        elif self.kind in ("User", "Group"):
            if self.api_group not in (None, "", GROUP):
                causes.append(not_supported("apiGroup", self.api_group, [GROUP]))
        else:
            causes.append(not_supported("kind", self.kind, SUBJECT_KINDS))
        return causes


def _binding_causes(role_ref: RoleRef, subjects: list[Subject] | None, *,
                    role_kinds: tuple[str, ...], namespaced: bool) -> list[Cause]:
    causes = []
    if role_ref.api_group != GROUP:
        causes.append(not_supported("roleRef.apiGroup", role_ref.api_group, [GROUP]))
    if role_ref.kind not in role_kinds:
        causes.append(not_supported("roleRef.kind", role_ref.kind, role_kinds))
    if not role_ref.name:
        causes.append(required("roleRef.name"))
    else:
        causes += [invalid("roleRef.name", role_ref.name, m)
                   for m in names.name_is_path_segment(role_ref.name)]
    for i, subject in enumerate(subjects or []):
        causes += [Cause(f"subjects[{i}].{c.field}", c.message, c.reason)
                   for c in subject.causes(namespaced=namespaced)]
    return causes


class RoleBinding(K8sObject):
    role_ref: RoleRef = RoleRef()
    subjects: list[Subject] | None = None

    @model_validator(mode="after")
    def _binding(self) -> RoleBinding:
        raise_any(_binding_causes(self.role_ref, self.subjects,
                                  role_kinds=("Role", "ClusterRole"), namespaced=True))
        return self


class ClusterRoleBinding(K8sObject):
    role_ref: RoleRef = RoleRef()
    subjects: list[Subject] | None = None

    @model_validator(mode="after")
    def _binding(self) -> ClusterRoleBinding:
        raise_any(_binding_causes(self.role_ref, self.subjects,
                                  role_kinds=("ClusterRole",), namespaced=False))
        return self


def role_ref_causes(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """A binding's `roleRef` is fixed once created."""
    if new.get("roleRef") != old.get("roleRef"):
        return [invalid("roleRef", new.get("roleRef"), "cannot change roleRef")]
    return []
