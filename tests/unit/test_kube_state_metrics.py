"""kube-state-metrics' series rendered from a set of cached objects: names, labels, values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from minik.api.resources import (
    CRONJOBS,
    DAEMONSETS,
    DEPLOYMENTS,
    JOBS,
    NAMESPACES,
    NODES,
    PERSISTENTVOLUMECLAIMS,
    PODS,
    REPLICASETS,
    SERVICES,
    STATEFULSETS,
    ResourceType,
)
from minik.monitoring.kube_state import KubeStateMetrics
from tests.promtool import check_metrics

CREATED = "2026-01-02T03:04:05Z"
CREATED_TS = 1767323045.0


class Objects:
    """An object source backed by plain lists, one per resource type."""

    def __init__(self, by_type: dict[ResourceType, list[Any]]) -> None:
        self.by_type = by_type

    def objects(self, rt: ResourceType) -> Sequence[Any]:
        return self.by_type.get(rt, [])


def _meta(name: str, namespace: str | None = "shop", **extra: Any) -> dict[str, Any]:
    meta = {"name": name, "uid": f"uid-{name}", "creationTimestamp": CREATED, **extra}
    if namespace:
        meta["namespace"] = namespace
    return meta


RS_OWNER = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "u1",
            "controller": True}

POD = {
    "metadata": _meta("web-abc-1", ownerReferences=[RS_OWNER]),
    "spec": {"nodeName": "node-1", "containers": [
        {"name": "app", "image": "minik/web:v1",
         "resources": {"requests": {"cpu": "250m", "memory": "64Mi",
                                    "ephemeral-storage": "1Gi"},
                       "limits": {"cpu": "1", "example.com/gpu": "2"}}},
        {"name": "side", "image": "minik/busybox:1.35"}]},
    "status": {
        "phase": "Running", "podIP": "10.244.0.5", "hostIP": "192.168.1.2",
        "startTime": CREATED,
        "conditions": [{"type": "Ready", "status": "False"},
                       {"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [
            {"name": "app", "ready": True, "restartCount": 3, "image": "minik/web:v1",
             "imageID": "docker://sha256:aa", "containerID": "docker://c1",
             "state": {"running": {"startedAt": CREATED}}},
            {"name": "side", "ready": False, "restartCount": 0, "image": "minik/busybox:1.35",
             "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
        ]},
}
NODE = {
    "metadata": _meta("node-1", None),
    "spec": {"podCIDR": "10.244.0.0/24"},
    "status": {
        "conditions": [{"type": "Ready", "status": "True"},
                       {"type": "MemoryPressure", "status": "False"}],
        "addresses": [{"type": "InternalIP", "address": "192.168.1.2"},
                      {"type": "Hostname", "address": "node-1"}],
        "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
        "allocatable": {"cpu": "1500m", "memory": "3Gi", "pods": "110",
                        "ephemeral-storage": "10Gi"},
        "nodeInfo": {"kernelVersion": "6.1.0", "osImage": "Debian GNU/Linux 12",
                     "containerRuntimeVersion": "docker://24.0", "kubeletVersion": "v1.33.0",
                     "systemUUID": "abc"}},
}
DEPLOYMENT = {
    "metadata": _meta("web", generation=4),
    "spec": {"replicas": 3},
    "status": {"observedGeneration": 4, "replicas": 3, "updatedReplicas": 2,
               "readyReplicas": 2, "availableReplicas": 2, "unavailableReplicas": 1,
               "conditions": [{"type": "Available", "status": "False",
                               "reason": "MinimumReplicasUnavailable"}]},
}
REPLICASET = {
    "metadata": _meta("web-abc", ownerReferences=[
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d",
         "controller": True}]),
    "spec": {"replicas": 3},
    "status": {"replicas": 3, "readyReplicas": 2, "fullyLabeledReplicas": 3},
}
STATEFULSET = {"metadata": _meta("db"), "spec": {"replicas": 2},
               "status": {"replicas": 2, "readyReplicas": 1}}
DAEMONSET = {"metadata": _meta("logs"),
             "status": {"desiredNumberScheduled": 1, "numberReady": 1,
                        "currentNumberScheduled": 1}}
JOB_DONE = {"metadata": _meta("done"), "spec": {"completions": 2, "parallelism": 1},
            "status": {"succeeded": 2, "startTime": CREATED,
                       "conditions": [{"type": "Complete", "status": "True"}]}}
JOB_FAILED = {"metadata": _meta("broken"), "spec": {},
              "status": {"failed": 4, "conditions": [
                  {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}}
JOB_RUNNING = {"metadata": _meta("busy"), "spec": {}, "status": {"active": 1}}
CRONJOB = {"metadata": _meta("tick"), "spec": {"schedule": "*/5 * * * *"},
           "status": {"active": [{"name": "tick-1"}], "lastScheduleTime": CREATED}}
SUSPENDED = {"metadata": _meta("paused"), "spec": {"schedule": "@hourly", "suspend": True}}
NAMESPACE = {"metadata": _meta("shop", None), "status": {"phase": "Active"}}
SERVICE = {"metadata": _meta("web"),
           "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10"}}
CLAIM = {"metadata": _meta("data"),
         "spec": {"storageClassName": "standard", "volumeName": "pv-1",
                  "resources": {"requests": {"storage": "1Gi"}}},
         "status": {"phase": "Bound"}}

OBJECTS = {
    PODS: [POD], NODES: [NODE], DEPLOYMENTS: [DEPLOYMENT], REPLICASETS: [REPLICASET],
    STATEFULSETS: [STATEFULSET], DAEMONSETS: [DAEMONSET],
    JOBS: [JOB_DONE, JOB_FAILED, JOB_RUNNING], CRONJOBS: [CRONJOB, SUSPENDED],
    NAMESPACES: [NAMESPACE], SERVICES: [SERVICE], PERSISTENTVOLUMECLAIMS: [CLAIM],
}


@pytest.fixture(scope="module")
def text() -> str:
    return KubeStateMetrics(Objects(OBJECTS)).render().decode()


@pytest.fixture(scope="module")
def series(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def value(series: dict[str, list[tuple[dict[str, str], float]]], name: str,
          **labels: str) -> float:
    """The one sample of `name` whose labels include `labels`."""
    found = [v for got, v in series.get(name, []) if labels.items() <= got.items()]
    assert len(found) == 1, (name, labels, series.get(name))
    return found[0]


POD_KEY = {"namespace": "shop", "pod": "web-abc-1", "uid": "uid-web-abc-1"}


def test_promtool_accepts_the_kube_state_series(text: str) -> None:
    check_metrics(text)


def test_families_have_kube_state_metrics_help_and_type(text: str) -> None:
    assert "# HELP kube_pod_status_phase The pods current phase.\n" in text
    assert "# TYPE kube_pod_status_phase gauge\n" in text
    assert "# TYPE kube_pod_container_status_restarts_total counter\n" in text
    assert ("# HELP kube_deployment_status_replicas_available The number of available replicas "
            "per deployment.\n") in text


def test_pod_info_names_the_pod_its_node_and_its_controller(series) -> None:
    labels = [got for got, _ in series["kube_pod_info"]]
    assert labels == [{**POD_KEY, "host_ip": "192.168.1.2", "pod_ip": "10.244.0.5",
                       "node": "node-1", "created_by_kind": "ReplicaSet",
                       "created_by_name": "web-abc", "priority_class": "",
                       "host_network": "false"}]
    assert value(series, "kube_pod_owner", owner_kind="ReplicaSet", owner_name="web-abc",
                 owner_is_controller="true") == 1
    assert value(series, "kube_pod_created", **POD_KEY) == CREATED_TS


def test_pod_phase_is_one_series_per_phase_with_the_current_one_set(series) -> None:
    phases = {got["phase"]: v for got, v in series["kube_pod_status_phase"]}
    assert phases == {"Pending": 0, "Succeeded": 0, "Failed": 0, "Unknown": 0, "Running": 1}


def test_pod_ready_is_a_condition_triple(series) -> None:
    ready = {got["condition"]: v for got, v in series["kube_pod_status_ready"]}
    assert ready == {"true": 0, "false": 1, "unknown": 0}


def test_container_restarts_waiting_reason_and_states(series) -> None:
    assert value(series, "kube_pod_container_status_restarts_total", container="app") == 3
    assert value(series, "kube_pod_container_status_restarts_total", container="side") == 0
    assert series["kube_pod_container_status_waiting_reason"] == [
        ({**POD_KEY, "container": "side", "reason": "CrashLoopBackOff"}, 1.0)]
    assert value(series, "kube_pod_container_status_running", container="app") == 1
    assert value(series, "kube_pod_container_status_waiting", container="side") == 1


def test_container_requests_and_limits_are_in_kube_state_metrics_units(series) -> None:
    requests = {(got["resource"], got["unit"]): v
                for got, v in series["kube_pod_container_resource_requests"]
                if got["container"] == "app"}
    assert requests == {("cpu", "core"): 0.25, ("memory", "byte"): 64 * 2**20,
                        ("ephemeral_storage", "byte"): 2**30}
    limits = {(got["resource"], got["unit"]): v
              for got, v in series["kube_pod_container_resource_limits"]}
    assert limits == {("cpu", "core"): 1.0, ("example_com_gpu", "integer"): 2.0}
    assert all(got["node"] == "node-1"
               for got, _ in series["kube_pod_container_resource_requests"])


def test_deployment_spec_and_status_replicas(series) -> None:
    key = {"namespace": "shop", "deployment": "web"}
    assert value(series, "kube_deployment_spec_replicas", **key) == 3
    assert value(series, "kube_deployment_status_replicas", **key) == 3
    assert value(series, "kube_deployment_status_replicas_available", **key) == 2
    assert value(series, "kube_deployment_status_replicas_updated", **key) == 2
    assert value(series, "kube_deployment_status_replicas_unavailable", **key) == 1
    assert value(series, "kube_deployment_metadata_generation", **key) == 4
    assert value(series, "kube_deployment_status_condition", condition="Available",
                 status="false", reason="MinimumReplicasUnavailable") == 1


def test_replicaset_statefulset_and_daemonset_counts(series) -> None:
    assert value(series, "kube_replicaset_spec_replicas", replicaset="web-abc") == 3
    assert value(series, "kube_replicaset_status_ready_replicas", replicaset="web-abc") == 2
    assert value(series, "kube_replicaset_owner", replicaset="web-abc",
                 owner_kind="Deployment", owner_name="web") == 1
    assert value(series, "kube_statefulset_status_replicas_ready", statefulset="db") == 1
    assert value(series, "kube_statefulset_replicas", statefulset="db") == 2
    assert value(series, "kube_daemonset_status_number_ready", daemonset="logs") == 1
    assert value(series, "kube_daemonset_status_number_unavailable", daemonset="logs") == 0


def test_job_counts_completion_and_failure_reasons(series) -> None:
    assert value(series, "kube_job_status_succeeded", job_name="done") == 2
    assert value(series, "kube_job_status_active", job_name="busy") == 1
    assert value(series, "kube_job_complete", job_name="done", condition="true") == 1
    assert value(series, "kube_job_complete", job_name="done", condition="false") == 0
    assert value(series, "kube_job_spec_completions", job_name="done") == 2
    assert [got for got, _ in series["kube_job_spec_completions"]] == [
        {"namespace": "shop", "job_name": "done"}]
    failed = {got["reason"]: v for got, v in series["kube_job_status_failed"]
              if got["job_name"] == "broken"}
    assert failed == {"BackoffLimitExceeded": 1, "DeadlineExceeded": 0, "Evicted": 0}
    assert value(series, "kube_job_status_failed", job_name="done") == 0
    assert value(series, "kube_job_failed", job_name="broken", condition="true") == 1


def test_cronjob_info_active_and_last_schedule(series) -> None:
    assert value(series, "kube_cronjob_info", cronjob="tick", schedule="*/5 * * * *",
                 concurrency_policy="Allow", timezone="local") == 1
    assert value(series, "kube_cronjob_status_active", cronjob="tick") == 1
    assert value(series, "kube_cronjob_status_last_schedule_time", cronjob="tick") == CREATED_TS
    assert value(series, "kube_cronjob_spec_suspend", cronjob="paused") == 1


def test_cronjob_next_schedule_time_follows_the_last_one_unless_suspended(series) -> None:
    assert series["kube_cronjob_next_schedule_time"] == [
        ({"namespace": "shop", "cronjob": "tick"}, CREATED_TS + 55)]


def test_node_info_conditions_and_allocatable(series) -> None:
    info = [got for got, _ in series["kube_node_info"]]
    assert info == [{"node": "node-1", "kernel_version": "6.1.0",
                     "os_image": "Debian GNU/Linux 12", "container_runtime_version": "docker://24.0",
                     "kubelet_version": "v1.33.0", "kubeproxy_version": "deprecated",
                     "provider_id": "", "pod_cidr": "10.244.0.0/24", "system_uuid": "abc",
                     "internal_ip": "192.168.1.2"}]
    ready = {got["status"]: v for got, v in series["kube_node_status_condition"]
             if got["condition"] == "Ready"}
    assert ready == {"true": 1, "false": 0, "unknown": 0}
    allocatable = {(got["resource"], got["unit"]): v
                   for got, v in series["kube_node_status_allocatable"]}
    assert allocatable == {("cpu", "core"): 1.5, ("memory", "byte"): 3 * 2**30,
                           ("pods", "integer"): 110, ("ephemeral_storage", "byte"): 10 * 2**30}


def test_namespace_service_and_claim_series(series) -> None:
    phases = {got["phase"]: v for got, v in series["kube_namespace_status_phase"]}
    assert phases == {"Active": 1, "Terminating": 0}
    assert value(series, "kube_service_info", service="web", cluster_ip="10.96.0.10",
                 uid="uid-web") == 1
    claim = {got["phase"]: v for got, v in series["kube_persistentvolumeclaim_status_phase"]}
    assert claim == {"Lost": 0, "Bound": 1, "Pending": 0}
    assert value(series, "kube_persistentvolumeclaim_resource_requests_storage_bytes",
                 persistentvolumeclaim="data") == 2**30


def test_no_objects_render_families_without_series_that_promtool_accepts() -> None:
    text = KubeStateMetrics(Objects({})).render().decode()
    assert "kube_pod_info" in text
    check_metrics(text)
