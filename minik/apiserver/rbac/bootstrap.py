"""The default cluster roles and bindings, as Kubernetes' bootstrap policy creates them.

The rules are data, as upstream's `bootstrappolicy/policy.go` renders them
(`testdata/cluster-roles.yaml`): `cluster-admin`; the user-facing `admin`,
`edit` and `view`, which aggregate the ClusterRoles labelled
`rbac.authorization.k8s.io/aggregate-to-<name>` (the clusterrole
aggregation controller fills their rules: `admin` takes `edit`'s, `edit`
takes `view`'s); the `system:aggregate-to-*` roles holding the rules
themselves; and `system:discovery`, `system:basic-user`,
`system:public-info-viewer`, `system:monitoring` (`/metrics`),
`system:service-account-issuer-discovery` and `system:auth-delegator`. The
bindings give `system:masters` cluster-admin, the group `system:monitoring`
its role, every service account the token issuer's OpenID discovery (so a
workload can verify tokens offline), and every authenticated user
discovery, basic-user (self reviews) and public info.

At startup each missing object is created with the annotation
`rbac.authorization.kubernetes.io/autoupdate: "true"` and the label
`kubernetes.io/bootstrapping: rbac-defaults`; an existing one is left as
the cluster's administrator may have changed it (upstream reconciles
autoupdate roles by adding missing rules; minik's defaults never change
between versions yet, so it does not).
"""

from __future__ import annotations

import contextlib
import copy
import logging
from typing import Any

from minik.api import errors
from minik.api.resources import CLUSTERROLEBINDINGS, CLUSTERROLES, ResourceType
from minik.apiserver.authn import AUTHENTICATED, MASTERS, SERVICE_ACCOUNTS
from minik.apiserver.storage import ObjectStorage, WriteOptions

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
BOOTSTRAPPING = "kubernetes.io/bootstrapping"
AGGREGATE_TO = "rbac.authorization.k8s.io/aggregate-to-"
UNAUTHENTICATED = "system:unauthenticated"
READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def rule(groups: list[str], resources: list[str], verbs: list[str]) -> JsonObject:
    return {"verbs": verbs, "apiGroups": groups, "resources": resources}


def urls(paths: list[str], verbs: list[str]) -> JsonObject:
    return {"verbs": verbs, "nonResourceURLs": paths}


def _meta(name: str, aggregate_to: str = "") -> JsonObject:
    labels = {BOOTSTRAPPING: "rbac-defaults"}
    if aggregate_to:
        labels[AGGREGATE_TO + aggregate_to] = "true"
    return {"name": name, "annotations": {AUTOUPDATE: "true"}, "labels": labels}


def cluster_role(name: str, rules: list[JsonObject], *, aggregate_to: str = "",
                 aggregate_from: str = "") -> JsonObject:
    role: JsonObject = {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRole",
                        "metadata": _meta(name, aggregate_to), "rules": rules}
    if aggregate_from:
        role["aggregationRule"] = {"clusterRoleSelectors": [
            {"matchLabels": {AGGREGATE_TO + aggregate_from: "true"}}]}
    return role


def cluster_role_binding(name: str, groups: list[str]) -> JsonObject:
    return {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRoleBinding", "metadata": _meta(name),
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": GROUP, "kind": "Group", "name": g} for g in groups]}


AGGREGATE_TO_ADMIN = [
    rule(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"]),
    rule([GROUP], ["rolebindings", "roles"], ALL_VERBS),
]
AGGREGATE_TO_EDIT = [
    rule([""], ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets",
                "services/proxy"], READ),
    rule([""], ["serviceaccounts"], ["impersonate"]),
    rule([""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"], WRITE),
    rule([""], ["pods/eviction"], ["create"]),
    rule([""], ["configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
                "replicationcontrollers/scale", "secrets", "serviceaccounts", "services",
                "services/proxy"], WRITE),
    rule([""], ["serviceaccounts/token"], ["create"]),
    rule(["apps"], ["daemonsets", "deployments", "deployments/rollback", "deployments/scale",
                    "replicasets", "replicasets/scale", "statefulsets", "statefulsets/scale"],
         WRITE),
    rule(["autoscaling"], ["horizontalpodautoscalers"], WRITE),
    rule(["batch"], ["cronjobs", "jobs"], WRITE),
    rule(["extensions"], ["daemonsets", "deployments", "deployments/rollback",
                          "deployments/scale", "ingresses", "networkpolicies", "replicasets",
                          "replicasets/scale", "replicationcontrollers/scale"], WRITE),
    rule(["policy"], ["poddisruptionbudgets"], WRITE),
    rule(["networking.k8s.io"], ["ingresses", "networkpolicies"], WRITE),
    rule(["coordination.k8s.io"], ["leases"], ALL_VERBS),
]
AGGREGATE_TO_VIEW = [
    rule([""], ["configmaps", "endpoints", "persistentvolumeclaims",
                "persistentvolumeclaims/status", "pods", "replicationcontrollers",
                "replicationcontrollers/scale", "serviceaccounts", "services",
                "services/status"], READ),
    rule([""], ["bindings", "events", "limitranges", "namespaces/status", "pods/log",
                "pods/status", "replicationcontrollers/status", "resourcequotas",
                "resourcequotas/status"], READ),
    rule([""], ["namespaces"], READ),
    rule(["discovery.k8s.io"], ["endpointslices"], READ),
    rule(["apps"], ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
                    "deployments/scale", "deployments/status", "replicasets",
                    "replicasets/scale", "replicasets/status", "statefulsets",
                    "statefulsets/scale", "statefulsets/status"], READ),
    rule(["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"], READ),
    rule(["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"], READ),
    rule(["extensions"], ["daemonsets", "daemonsets/status", "deployments", "deployments/scale",
                          "deployments/status", "ingresses", "ingresses/status",
                          "networkpolicies", "replicasets", "replicasets/scale",
                          "replicasets/status", "replicationcontrollers/scale"], READ),
    rule(["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"], READ),
    rule(["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"], READ),
]

CLUSTER_ROLES = [
    cluster_role("cluster-admin", [rule(["*"], ["*"], ["*"]), urls(["*"], ["*"])]),
    cluster_role("admin", [], aggregate_from="admin"),
    cluster_role("edit", [], aggregate_to="admin", aggregate_from="edit"),
    cluster_role("view", [], aggregate_to="edit", aggregate_from="view"),
    cluster_role("system:aggregate-to-admin", AGGREGATE_TO_ADMIN, aggregate_to="admin"),
    cluster_role("system:aggregate-to-edit", AGGREGATE_TO_EDIT, aggregate_to="edit"),
    cluster_role("system:aggregate-to-view", AGGREGATE_TO_VIEW, aggregate_to="view"),
    cluster_role("system:auth-delegator", [
        rule(["authentication.k8s.io"], ["tokenreviews"], ["create"]),
        rule(["authorization.k8s.io"], ["subjectaccessreviews"], ["create"])]),
    cluster_role("system:basic-user", [
        rule(["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
             ["create"]),
        rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"])]),
    cluster_role("system:discovery", [urls(
        ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*",
         "/readyz", "/version", "/version/"], ["get"])]),
    cluster_role("system:monitoring", [urls(
        ["/healthz", "/healthz/*", "/livez", "/livez/*", "/metrics", "/metrics/slis",
         "/readyz", "/readyz/*"], ["get"])]),
    cluster_role("system:public-info-viewer", [urls(
        ["/healthz", "/livez", "/readyz", "/version", "/version/"], ["get"])]),
    cluster_role("system:service-account-issuer-discovery", [urls(
        ["/.well-known/openid-configuration", "/.well-known/openid-configuration/",
         "/openid/v1/jwks", "/openid/v1/jwks/"], ["get"])]),
]
CLUSTER_ROLE_BINDINGS = [
    cluster_role_binding("cluster-admin", [MASTERS]),
    cluster_role_binding("system:basic-user", [AUTHENTICATED]),
    cluster_role_binding("system:discovery", [AUTHENTICATED]),
    cluster_role_binding("system:monitoring", ["system:monitoring"]),
    cluster_role_binding("system:public-info-viewer", [AUTHENTICATED, UNAUTHENTICATED]),
    cluster_role_binding("system:service-account-issuer-discovery", [SERVICE_ACCOUNTS]),
]


async def _ensure(storage: ObjectStorage, rt: ResourceType[Any], obj: JsonObject) -> None:
    name = obj["metadata"]["name"]
    if await storage.store.get(rt.key(None, name)) is not None:
        return
    log.info("creating the default %s %s", rt.kind, name)
    with contextlib.suppress(errors.ApiError):
        await storage.create(rt, None, copy.deepcopy(obj), WriteOptions(trusted=True))


async def ensure_bootstrap_policy(storage: ObjectStorage) -> None:
    """Create every default cluster role and binding that does not exist."""
    for role in CLUSTER_ROLES:
        await _ensure(storage, CLUSTERROLES, role)
    for binding in CLUSTER_ROLE_BINDINGS:
        await _ensure(storage, CLUSTERROLEBINDINGS, binding)
