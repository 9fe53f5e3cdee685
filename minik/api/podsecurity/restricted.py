"""The restricted checks (`policy/check_*.go` of Kubernetes' pod-security-admission).

Each takes the pod's metadata and spec and answers None (allowed) or the
`Violation` with Kubernetes' reason and detail, word for word.
"""

from __future__ import annotations

from minik.api.podsecurity.baseline import seccomp_type, seccomp_valid, setters
from minik.api.podsecurity.visit import (
    JsonObject,
    Violation,
    containers,
    containers_phrase,
    join_quote,
    name_of,
    quote,
    security_context,
    user_namespaced,
)

ALLOWED_VOLUME_SOURCES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                          "persistentVolumeClaim", "projected", "secret")


def allow_privilege_escalation(metadata: JsonObject, spec: JsonObject) -> Violation | None:
    bad = [name_of(c) for c in containers(spec)
           if security_context(c).get("allowPrivilegeEscalation") is not False]
    if not bad:
        return None
    return Violation("allowPrivilegeEscalation != false", f"{containers_phrase(bad)} must set "
                     "securityContext.allowPrivilegeEscalation=false")


def capabilities_restricted(metadata: JsonObject, spec: JsonObject) -> Violation | None:
    missing_drop: list[str] = []
    adding: list[str] = []
    forbidden: set[str] = set()
    for container in containers(spec):
        capabilities = security_context(container).get("capabilities")
        if not isinstance(capabilities, dict):
            missing_drop.append(name_of(container))
            continue
        if "ALL" not in (capabilities.get("drop") or []):
            missing_drop.append(name_of(container))
        extra = [str(c) for c in capabilities.get("add") or [] if c != "NET_BIND_SERVICE"]
        if extra:
            adding.append(name_of(container))
            forbidden.update(extra)
    details: list[str] = []
    if missing_drop:
        details.append(f'{containers_phrase(missing_drop)} must set '
                       'securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(f"{containers_phrase(adding)} must not include "
                       f"{join_quote(sorted(forbidden))} in securityContext.capabilities.add")
    return Violation("unrestricted capabilities", "; ".join(details)) if details else None


def restricted_volumes(metadata: JsonObject, spec: JsonObject) -> Violation | None:
    bad = sorted({str(v.get("name")) for v in spec.get("volumes") or [] if isinstance(v, dict)
                  and not any(v.get(source) is not None for source in ALLOWED_VOLUME_SOURCES)})
    if not bad:
        return None
    listed = " ".join(quote(name) for name in bad)  # Go's %q of a []string
    return Violation("restricted volume types", f"volumes [{listed}] have restricted types")


def _explicit_and_implicit(
    spec: JsonObject, field: str, good: object,
) -> tuple[bool, bool, list[str], list[str]]:
    """Whether the pod sets `field` badly / well, and the containers that set it badly or
    leave it unset."""
    pod_value = security_context(spec).get(field)
    pod_bad = pod_value is not None and pod_value != good
    pod_good = pod_value == good
    explicit, implicit = [], []
    for container in containers(spec):
        value = security_context(container).get(field)
        if value is None:
            if not pod_good:
                implicit.append(name_of(container))
        elif value != good:
            explicit.append(name_of(container))
    return pod_bad, pod_good, explicit, implicit


def _run_as_non_root(spec: JsonObject, *, relax_user_namespaces: bool) -> Violation | None:
    if relax_user_namespaces and user_namespaced(spec):
        return None
    pod_bad, _, explicit, implicit = _explicit_and_implicit(spec, "runAsNonRoot", True)
    if pod_bad or explicit:
        return Violation("runAsNonRoot != true", f"{setters(pod_bad, explicit)} must not set "
                                                 "securityContext.runAsNonRoot=false")
    if implicit:
        return Violation("runAsNonRoot != true", f"pod or {containers_phrase(implicit)} must set "
                                                 "securityContext.runAsNonRoot=true")
    return None


def run_as_non_root_1_0(metadata: JsonObject, spec: JsonObject) -> Violation | None:
    return _run_as_non_root(spec, relax_user_namespaces=False)


def run_as_non_root_1_34(metadata: JsonObject, spec: JsonObject) -> Violation | None:
    return _run_as_non_root(spec, relax_user_namespaces=True)


def run_as_user(metadata: JsonObject, spec: JsonObject) -> Violation | None:
    def root(obj: JsonObject) -> bool:
        value = security_context(obj).get("runAsUser")
        return value is not None and value == 0

    bad = [name_of(c) for c in containers(spec) if root(c)]
    pod_bad = root(spec)
    if not pod_bad and not bad:
        return None
    return Violation("runAsUser=0", f"{setters(pod_bad, bad)} must not set runAsUser=0")


def seccomp_restricted(metadata: JsonObject, spec: JsonObject) -> Violation | None:
    values: set[str] = set()
    pod_type = seccomp_type(spec)
    pod_bad = pod_type is not None and not seccomp_valid(pod_type)
    if pod_bad:
        values.add(str(pod_type))
    pod_set = pod_type is not None and not pod_bad
    explicit: list[str] = []
    implicit: list[str] = []
    for container in containers(spec):
        kind = seccomp_type(container)
        if kind is None:
            if not pod_set:
                implicit.append(name_of(container))
        elif not seccomp_valid(kind):
            explicit.append(name_of(container))
            values.add(kind)
    if pod_bad or explicit:
        return Violation("seccompProfile", f"{setters(pod_bad, explicit)} must not set "
                         f"securityContext.seccompProfile.type to {join_quote(sorted(values))}")
    if implicit:
        return Violation("seccompProfile", f"pod or {containers_phrase(implicit)} must set "
                         'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"')
    return None
