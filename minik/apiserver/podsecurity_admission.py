"""The PodSecurity admission plugin: Pod Security Standards chosen by namespace labels.

As Kubernetes' built-in plugin (`pod-security-admission/admission/admission.go`):

- Pods, on create and on an update that changes what the checks read
  (images, container counts, new ephemeral containers, seccomp annotations):
  the namespace's enforce level refuses with 403 `pods "x" is forbidden:
  violates PodSecurity "restricted:latest": ...`; the warn level adds a
  `would violate PodSecurity ...` warning (not when refusing); the audit
  level makes the audit annotation `pod-security.kubernetes.io/audit-violations`.
  minik keeps no audit log: the annotation is logged (logger `minik.audit`).
  As Kubernetes defaults an object before admission, the checks read it
  defaulted (a hostNetwork pod's ports are host ports).
- Workloads with a pod template (Deployment, ReplicaSet, StatefulSet,
  DaemonSet, Job, CronJob, ReplicationController): warn and audit only,
  never refused; their pods are judged when they are created.
- Namespaces: invalid `pod-security.kubernetes.io/*` labels are 422; a write
  that tightens the enforce level answers warnings naming existing pods that
  would now be refused.
"""

from __future__ import annotations

import logging
from typing import Any

from minik.api import errors, meta
from minik.api.defaults import apply_defaults
from minik.api.podsecurity.evaluate import evaluate, forbidden_detail, forbidden_reason
from minik.api.podsecurity.policy import LevelVersion, Policy, level_rank, policy_from_labels
from minik.api.resources import NAMESPACES, PODS, REGISTRY
from minik.apiserver.admission import forbidden
from minik.store import Store

JsonObject = dict[str, Any]
audit_log = logging.getLogger("minik.audit")

AUDIT_ANNOTATION = "pod-security.kubernetes.io/audit-violations"
MAX_PODS_TO_CHECK = 3000
"""As Kubernetes' `namespaceMaxPodsToCheck`."""
SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"


def pod_template(obj: JsonObject) -> JsonObject | None:
    """The pod template of a workload (a CronJob's is inside its job template)."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template = spec.get("template")
    return template if isinstance(template, dict) else None


def _significant_update(old: JsonObject, new: JsonObject) -> bool:
    """`isSignificantPodUpdate`: only images, container counts, ephemeral containers and
    seccomp annotations can change what the checks read of a stored pod."""
    old_notes, new_notes = meta.annotations_of(old), meta.annotations_of(new)
    if old_notes.get(SECCOMP_POD_ANNOTATION) != new_notes.get(SECCOMP_POD_ANNOTATION):
        return True
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    for key in ("containers", "initContainers"):
        before, after = old_spec.get(key) or [], new_spec.get(key) or []
        if len(before) != len(after):
            return True
        for was, now in zip(before, after, strict=True):
            seccomp = SECCOMP_CONTAINER_PREFIX + str(now.get("name"))
            if (was.get("image") != now.get("image")
                    or old_notes.get(seccomp) != new_notes.get(seccomp)):
                return True
    old_ephemeral = {c.get("name"): c for c in old_spec.get("ephemeralContainers") or []}
    return any(c.get("name") not in old_ephemeral
               or old_ephemeral[c.get("name")].get("image") != c.get("image")
               for c in new_spec.get("ephemeralContainers") or [])


def _label_causes(labels: dict[str, str]) -> list[errors.Cause]:
    _, problems = policy_from_labels(labels)
    return [errors.Cause(f"metadata.labels[{p.key}]",
                         f'Invalid value: "{p.value}": {p.message}') for p in problems]


class PodSecurityAdmission:
    """Pod Security admission for pods, workloads and namespaces."""

    async def admit(self, store: Store, old: JsonObject | None, new: JsonObject, *,
                    dry_run: bool = False) -> list[str]:
        kind = new.get("kind")
        if kind == "Namespace":
            return await self._admit_namespace(store, old, new)
        rt = REGISTRY.by_kind(str(new.get("apiVersion")), str(kind))
        if rt is None:
            return []
        judged = apply_defaults(rt, new)
        if kind == "Pod":
            if old is not None and not _significant_update(old, new):
                return []
            return await self._admit_pod(store, new, meta.metadata(judged),
                                         judged.get("spec") or {}, enforce=True)
        template = pod_template(judged)
        if template is None:
            return []
        return await self._admit_pod(store, new, template.get("metadata") or {},
                                     template.get("spec") or {}, enforce=False)

    @staticmethod
    async def _policy(store: Store, namespace: str) -> Policy:
        record = await store.get(NAMESPACES.key(None, namespace))
        labels = meta.labels_of(record.value) if record is not None else {}
        return policy_from_labels(labels)[0]

    async def _admit_pod(self, store: Store, obj: JsonObject, metadata: JsonObject,
                         spec: JsonObject, *, enforce: bool) -> list[str]:
        md = meta.metadata(obj)
        policy = await self._policy(store, str(md.get("namespace") or ""))
        if policy.all_privileged:
            return []
        results: dict[LevelVersion, str] = {}

        def detail(lv: LevelVersion) -> str:
            if lv not in results:
                results[lv] = forbidden_detail(evaluate(lv, metadata, spec))
            return results[lv]

        if enforce and detail(policy.enforce):
            raise forbidden("pods", "", str(md.get("name", "")),
                            f'violates PodSecurity "{policy.enforce}": {detail(policy.enforce)}')
        if detail(policy.audit):
            audit_log.warning("%s/%s %s: %s=%s", md.get("namespace"), md.get("name"),
                              obj.get("kind"), AUDIT_ANNOTATION,
                              f'would violate PodSecurity "{policy.audit}": {detail(policy.audit)}')
        if detail(policy.warn):
            return [f'would violate PodSecurity "{policy.warn}": {detail(policy.warn)}']
        return []

    async def _admit_namespace(self, store: Store, old: JsonObject | None,
                               new: JsonObject) -> list[str]:
        labels = meta.labels_of(new)
        causes = _label_causes(labels)
        if causes and (old is None or causes != _label_causes(meta.labels_of(old))):
            raise errors.invalid("Namespace", meta.name_of(new), causes)
        if old is None:
            return []
        before = policy_from_labels(meta.labels_of(old))[0].enforce
        after = policy_from_labels(labels)[0].enforce
        if after == before or after.level == "privileged":
            return []
        if after.minor == before.minor and level_rank(after.level) <= level_rank(before.level):
            return []
        return await self._existing_pods_warnings(store, meta.name_of(new), after)

    @staticmethod
    async def _existing_pods_warnings(store: Store, namespace: str,
                                      enforce: LevelVersion) -> list[str]:
        """`EvaluatePodsInNamespace`: one warning per distinct violation, naming the first pod
        (by name) and how many others share it."""
        records, _ = await store.list(PODS.prefix(namespace))
        total = len(records)
        pods = [r.value for r in records[:MAX_PODS_TO_CHECK]]
        seen: dict[str, tuple[str, int]] = {}
        for pod in pods:
            found = evaluate(enforce, meta.metadata(pod), pod.get("spec") or {})
            if not found:
                continue
            reason, name = forbidden_reason(found), meta.name_of(pod)
            first, count = seen.get(reason, (name, 0))
            seen[reason] = (min(first, name), count + 1)
        warnings: list[str] = []
        if len(pods) < total:
            warnings.append(f"new PodSecurity enforce level only checked against the first "
                            f"{len(pods)} of {total} existing pods")
        if seen:
            warnings.append(f'existing pods in namespace "{namespace}" violate the new '
                            f'PodSecurity enforce level "{enforce}"')
        decorated = []
        for reason, (name, count) in seen.items():
            others = ("" if count == 1 else " (and 1 other pod)" if count == 2
                      else f" (and {count - 1} other pods)")
            decorated.append(f"{name}{others}: {reason}")
        return warnings + sorted(decorated)
