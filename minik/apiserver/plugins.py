"""The API server's default admission plugins per kind, in the order `admission` gives."""

from __future__ import annotations

from collections.abc import Mapping

from minik.api.resources import REGISTRY
from minik.apiserver.admission import Admission, AdmissionChain
from minik.apiserver.limitranger import LimitRanger
from minik.apiserver.podsecurity_admission import PodSecurityAdmission
from minik.apiserver.quota_admission import QuotaAdmission
from minik.apiserver.storage_admission import STORAGE_ADMISSION

POD_TEMPLATE_KINDS = ("Pod", "ReplicationController", "Deployment", "ReplicaSet",
                      "StatefulSet", "DaemonSet", "Job", "CronJob")


def default_admission(*, strategies: Mapping[str, Admission] | None = None,
                      service_accounts: Admission | None = None) -> dict[str, Admission]:
    """Kind -> the chain of plugins its writes go through. The API server passes
    what in-process test servers leave out: `strategies`, kind checks that
    Kubernetes makes in its registry strategies, before any admission plugin
    (RBAC's escalation prevention), and `service_accounts`, the ServiceAccount
    plugin, which runs on pods after LimitRanger as in Kubernetes' order."""
    limit_ranger, pod_security, quota = LimitRanger(), PodSecurityAdmission(), QuotaAdmission()
    chains: dict[str, list[Admission]] = {}
    for rt in REGISTRY:
        plugins: list[Admission] = []
        if strategies and rt.kind in strategies:
            plugins.append(strategies[rt.kind])
        if rt.kind in STORAGE_ADMISSION:
            plugins.append(STORAGE_ADMISSION[rt.kind])
        if rt.kind in ("Pod", "PersistentVolumeClaim"):
            plugins.append(limit_ranger)
        if rt.kind == "Pod" and service_accounts is not None:
            plugins.append(service_accounts)
        if rt.kind in POD_TEMPLATE_KINDS or rt.kind == "Namespace":
            plugins.append(pod_security)
        if rt.namespaced and "create" in rt.verbs:
            plugins.append(quota)
        if plugins:
            chains[rt.kind] = plugins
    return {kind: AdmissionChain(plugins) for kind, plugins in chains.items()}
