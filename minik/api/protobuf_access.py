"""Field numbers of the access and disruption messages kubectl sends as protobuf.

`create pdb` (policy/v1 PodDisruptionBudget), `drain`'s Eviction with its
DeleteOptions, `create token`'s TokenRequest, `create role|clusterrole|
rolebinding|clusterrolebinding` and `auth can-i`'s access and rules
reviews (their `extra` and selectors dropped). Same conventions as
`minik.api.protobuf_schema`, whose field helpers they use.
"""

from __future__ import annotations

from minik.api.protobuf_schema import Schema, b, i, ignore, m, many, ptr, s

AUTHENTICATION: dict[str, Schema] = {
    "authentication.TokenRequest": {
        1: m("metadata", "meta.ObjectMeta"), 2: m("spec", "authentication.TokenRequestSpec"),
        3: ignore("status"),
    },
    "authentication.TokenRequestSpec": {
        1: many("audiences"), 3: m("boundObjectRef", "authentication.BoundObjectReference"),
        4: ptr(i("expirationSeconds")),
    },
    "authentication.BoundObjectReference": {1: s("kind"), 2: s("apiVersion"), 3: s("name"),
                                            4: s("uid")},
}

POLICY: dict[str, Schema] = {
    "policy.PodDisruptionBudget": {
        1: m("metadata", "meta.ObjectMeta"), 2: m("spec", "policy.PodDisruptionBudgetSpec"),
        3: ignore("status"),
    },
    "policy.PodDisruptionBudgetSpec": {
        1: ptr(m("minAvailable", "intorstring")), 2: m("selector", "meta.LabelSelector"),
        3: ptr(m("maxUnavailable", "intorstring")), 4: ptr(s("unhealthyPodEvictionPolicy")),
    },
    "policy.Eviction": {
        1: m("metadata", "meta.ObjectMeta"), 2: m("deleteOptions", "meta.DeleteOptions"),
    },
    "meta.DeleteOptions": {
        1: ptr(i("gracePeriodSeconds")), 2: m("preconditions", "meta.Preconditions"),
        3: ptr(b("orphanDependents")), 4: ptr(s("propagationPolicy")), 5: many("dryRun"),
        6: ptr(b("ignoreStoreReadErrorWithClusterBreakingPotential")),
    },
    "meta.Preconditions": {1: ptr(s("uid")), 2: ptr(s("resourceVersion"))},
}

RBAC: dict[str, Schema] = {
    "rbac.Role": {1: m("metadata", "meta.ObjectMeta"), 2: many("rules", "rbac.PolicyRule")},
    "rbac.ClusterRole": {
        1: m("metadata", "meta.ObjectMeta"), 2: many("rules", "rbac.PolicyRule"),
        3: m("aggregationRule", "rbac.AggregationRule"),
    },
    "rbac.PolicyRule": {1: many("verbs"), 2: many("apiGroups"), 3: many("resources"),
                        4: many("resourceNames"), 5: many("nonResourceURLs")},
    "rbac.AggregationRule": {1: many("clusterRoleSelectors", "meta.LabelSelector")},
    "rbac.RoleBinding": {
        1: m("metadata", "meta.ObjectMeta"), 2: many("subjects", "rbac.Subject"),
        3: m("roleRef", "rbac.RoleRef"),
    },
    "rbac.Subject": {1: s("kind"), 2: s("apiGroup"), 3: s("name"), 4: s("namespace")},
    "rbac.RoleRef": {1: s("apiGroup"), 2: s("kind"), 3: s("name")},
}

AUTHORIZATION: dict[str, Schema] = {
    "authorization.SelfSubjectAccessReview": {
        1: m("metadata", "meta.ObjectMeta"),
        2: m("spec", "authorization.SelfSubjectAccessReviewSpec"), 3: ignore("status"),
    },
    "authorization.SelfSubjectAccessReviewSpec": {
        1: m("resourceAttributes", "authorization.ResourceAttributes"),
        2: m("nonResourceAttributes", "authorization.NonResourceAttributes"),
    },
    "authorization.ResourceAttributes": {
        1: s("namespace"), 2: s("verb"), 3: s("group"), 4: s("version"), 5: s("resource"),
        6: s("subresource"), 7: s("name"), 8: ignore("fieldSelector"),
        9: ignore("labelSelector"),
    },
    "authorization.NonResourceAttributes": {1: s("path"), 2: s("verb")},
    "authorization.SelfSubjectRulesReview": {
        1: m("metadata", "meta.ObjectMeta"),
        2: m("spec", "authorization.SelfSubjectRulesReviewSpec"), 3: ignore("status"),
    },
    "authorization.SelfSubjectRulesReviewSpec": {1: s("namespace")},
    "authorization.SubjectAccessReview": {
        1: m("metadata", "meta.ObjectMeta"),
        2: m("spec", "authorization.SubjectAccessReviewSpec"), 3: ignore("status"),
    },
    "authorization.SubjectAccessReviewSpec": {
        1: m("resourceAttributes", "authorization.ResourceAttributes"),
        2: m("nonResourceAttributes", "authorization.NonResourceAttributes"),
        3: s("user"), 4: many("groups"), 5: ignore("extra"), 6: s("uid"),
    },
}

MESSAGES: dict[str, Schema] = {**AUTHENTICATION, **POLICY, **RBAC, **AUTHORIZATION}

ROOTS: dict[tuple[str, str], str] = {
    ("authentication.k8s.io/v1", "TokenRequest"): "authentication.TokenRequest",
    ("policy/v1", "PodDisruptionBudget"): "policy.PodDisruptionBudget",
    ("policy/v1", "Eviction"): "policy.Eviction",
    ("policy/v1beta1", "Eviction"): "policy.Eviction",
    ("rbac.authorization.k8s.io/v1", "Role"): "rbac.Role",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "rbac.ClusterRole",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "rbac.RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "rbac.RoleBinding",
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"):
        "authorization.SelfSubjectAccessReview",
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): "authorization.SelfSubjectRulesReview",
    ("authorization.k8s.io/v1", "SubjectAccessReview"): "authorization.SubjectAccessReview",
    ("authorization.k8s.io/v1", "LocalSubjectAccessReview"): "authorization.SubjectAccessReview",
}
