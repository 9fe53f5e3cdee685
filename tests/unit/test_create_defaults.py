"""A create answers what Kubernetes answers for the same minimal object.

Each expected object is written from Kubernetes 1.33's defaulting code
(`pkg/apis/*/v1/defaults.go`, the `+default` markers of `k8s.io/api`) and
from its Go types, whose non-omitempty fields and struct-valued fields are
always serialised (a ReplicaSet's `status.replicas: 0`, a template's
`creationTimestamp: null`). Server-set metadata (uid, resourceVersion,
creationTimestamp, generation) is compared apart. What Kubernetes' admission
plugins add (a pod's service account, priority and tolerations, a claim's
default storage class) and what later issues allocate (a Service's
clusterIP) is not part of these objects; nor is a Job's generated selector
(the Job below chooses its own; `test_job` covers the generated one).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from minik.api.resources import REGISTRY
from tests.unit.test_apiserver import api

__all__ = ["api"]
SERVER_SET = ("uid", "resourceVersion", "creationTimestamp", "generation")
IMAGE = "minik/busybox:1.35"
LABELS = {"app": "a"}
CONTAINER = {"name": "c", "image": IMAGE}
DEFAULTED_CONTAINER = {**CONTAINER, "imagePullPolicy": "IfNotPresent", "resources": {},
                       "terminationMessagePath": "/dev/termination-log",
                       "terminationMessagePolicy": "File"}
TEMPLATE_POD_SPEC = {"containers": [DEFAULTED_CONTAINER], "restartPolicy": "Always",
                     "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                     "securityContext": {}, "schedulerName": "default-scheduler"}
TEMPLATE = {"metadata": {"labels": LABELS}, "spec": {"containers": [CONTAINER]}}
DEFAULTED_TEMPLATE = {"metadata": {"creationTimestamp": None, "labels": LABELS},
                      "spec": TEMPLATE_POD_SPEC}
SELECTOR = {"matchLabels": LABELS}


def path(kind: str) -> str:
    rt = REGISTRY.get(kind)
    base = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    return f"{base}/namespaces/default/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"


async def create(api: TestClient, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    rt = REGISTRY.get(kind)
    body = {"apiVersion": rt.api_version, "kind": rt.kind, **body}
    response = await api.post(path(kind), data=json.dumps(body),
                               headers={"Content-Type": "application/json"})
    answer = await response.json()
    assert response.status == 201, answer
    md = answer["metadata"]
    assert md["uid"] and md["resourceVersion"] and md["creationTimestamp"]
    for key in SERVER_SET:
        md.pop(key, None)
    return answer


def expected(kind: str, name: str, **fields: Any) -> dict[str, Any]:
    rt = REGISTRY.get(kind)
    md: dict[str, Any] = {"name": name}
    if rt.namespaced:
        md["namespace"] = "default"
    md.update(fields.pop("metadata", {}))
    return {"apiVersion": rt.api_version, "kind": rt.kind, "metadata": md, **fields}


CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("Pod", {"metadata": {"name": "p"}, "spec": {"containers": [CONTAINER]}},
     expected("Pod", "p", spec={**TEMPLATE_POD_SPEC, "enableServiceLinks": True},
              status={"phase": "Pending", "qosClass": "BestEffort"})),
    ("Deployment", {"metadata": {"name": "d"}, "spec": {"selector": SELECTOR,
                                                        "template": TEMPLATE}},
     expected("Deployment", "d", spec={
         "replicas": 1, "selector": SELECTOR, "template": DEFAULTED_TEMPLATE,
         "strategy": {"type": "RollingUpdate",
                      "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
         "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600}, status={})),
    ("ReplicaSet", {"metadata": {"name": "rs"}, "spec": {"selector": SELECTOR,
                                                         "template": TEMPLATE}},
     expected("ReplicaSet", "rs", spec={"replicas": 1, "selector": SELECTOR,
                                        "template": DEFAULTED_TEMPLATE},
              status={"replicas": 0})),
    ("StatefulSet", {"metadata": {"name": "ss"}, "spec": {"selector": SELECTOR,
                                                          "serviceName": "ss",
                                                          "template": TEMPLATE}},
     expected("StatefulSet", "ss", spec={
         "replicas": 1, "selector": SELECTOR, "serviceName": "ss", "template": DEFAULTED_TEMPLATE,
         "podManagementPolicy": "OrderedReady",
         "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
         "revisionHistoryLimit": 10,
         "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain",
                                                  "whenScaled": "Retain"}},
         status={"replicas": 0, "availableReplicas": 0})),
    ("DaemonSet", {"metadata": {"name": "ds"}, "spec": {"selector": SELECTOR,
                                                        "template": TEMPLATE}},
     expected("DaemonSet", "ds", spec={
         "selector": SELECTOR, "template": DEFAULTED_TEMPLATE,
         "updateStrategy": {"type": "RollingUpdate",
                            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
         "revisionHistoryLimit": 10},
         status={"currentNumberScheduled": 0, "numberMisscheduled": 0,
                 "desiredNumberScheduled": 0, "numberReady": 0})),
    ("Job", {"metadata": {"name": "j"}, "spec": {
        "manualSelector": True, "selector": SELECTOR, "template": {
        "metadata": {"labels": LABELS},
        "spec": {"containers": [CONTAINER], "restartPolicy": "Never"}}}},
     expected("Job", "j", metadata={"labels": LABELS}, spec={
         "manualSelector": True, "selector": SELECTOR,
         "parallelism": 1, "completions": 1, "backoffLimit": 6, "completionMode": "NonIndexed",
         "suspend": False, "podReplacementPolicy": "TerminatingOrFailed",
         "template": {"metadata": {"creationTimestamp": None, "labels": LABELS},
                      "spec": {**TEMPLATE_POD_SPEC, "restartPolicy": "Never"}}},
         status={})),
    ("CronJob", {"metadata": {"name": "cj"}, "spec": {"schedule": "@hourly", "jobTemplate": {
        "spec": {"template": {"spec": {"containers": [CONTAINER],
                                       "restartPolicy": "OnFailure"}}}}}},
     expected("CronJob", "cj", spec={
         "schedule": "@hourly", "concurrencyPolicy": "Allow", "suspend": False,
         "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
         "jobTemplate": {"metadata": {"creationTimestamp": None}, "spec": {"template": {
             "metadata": {"creationTimestamp": None},
             "spec": {**TEMPLATE_POD_SPEC, "restartPolicy": "OnFailure"}}}}},
         status={})),
    ("ConfigMap", {"metadata": {"name": "cm"}, "data": {"k": "v"}},
     expected("ConfigMap", "cm", data={"k": "v"})),
    ("Secret", {"metadata": {"name": "s"}, "data": {"k": "dg=="}},
     expected("Secret", "s", data={"k": "dg=="}, type="Opaque")),
    ("Namespace", {"metadata": {"name": "team"}},
     expected("Namespace", "team", metadata={"labels": {"kubernetes.io/metadata.name": "team"}},
              spec={"finalizers": ["kubernetes"]}, status={"phase": "Active"})),
    ("PersistentVolumeClaim", {"metadata": {"name": "c"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
     expected("PersistentVolumeClaim", "c",
              metadata={"finalizers": ["kubernetes.io/pvc-protection"]}, spec={
         "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
         "volumeMode": "Filesystem"}, status={"phase": "Pending"})),
    ("ServiceAccount", {"metadata": {"name": "sa"}}, expected("ServiceAccount", "sa")),
    ("Endpoints", {"metadata": {"name": "e"}, "subsets": [
        {"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]},
     expected("Endpoints", "e", subsets=[{"addresses": [{"ip": "10.0.0.1"}],
                                          "ports": [{"port": 80, "protocol": "TCP"}]}])),
    ("EndpointSlice", {"metadata": {"name": "es"}, "addressType": "IPv4",
                       "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 80}]},
     expected("EndpointSlice", "es", addressType="IPv4",
              endpoints=[{"addresses": ["10.0.0.1"], "conditions": {}}],
              ports=[{"port": 80, "name": "", "protocol": "TCP"}])),
    ("EndpointSlice", {"metadata": {"name": "empty"}, "addressType": "IPv4"},
     expected("EndpointSlice", "empty", addressType="IPv4", endpoints=None, ports=None)),
    ("HorizontalPodAutoscaler", {"metadata": {"name": "h"}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
        "maxReplicas": 3}},
     expected("HorizontalPodAutoscaler", "h", spec={
         "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
         "maxReplicas": 3, "minReplicas": 1, "metrics": [{"type": "Resource", "resource": {
             "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]},
         status={"currentMetrics": None, "desiredReplicas": 0})),
    ("StorageClass", {"metadata": {"name": "fast"}, "provisioner": "minik.io/docker-volume"},
     expected("StorageClass", "fast", provisioner="minik.io/docker-volume",
              reclaimPolicy="Delete", volumeBindingMode="Immediate")),
    ("Lease", {"metadata": {"name": "l"}}, expected("Lease", "l", spec={})),
]


@pytest.mark.parametrize(("kind", "body", "want"), CASES,
                         ids=[f"{kind}-{body['metadata']['name']}" for kind, body, _ in CASES])
async def test_a_minimal_object_comes_back_as_kubernetes_returns_it(
    api: TestClient, kind: str, body: dict[str, Any], want: dict[str, Any],
):
    assert await create(api, kind, body) == want


async def test_a_service_comes_back_with_an_empty_load_balancer_status(api: TestClient):
    body = {"metadata": {"name": "s"}, "spec": {"selector": LABELS, "ports": [{"port": 80}]}}
    answer = await create(api, "Service", body)
    spec = {k: v for k, v in answer["spec"].items() if k not in ("clusterIP", "clusterIPs")}
    assert spec == {"selector": LABELS, "ports": [{"port": 80, "protocol": "TCP",
                                                   "targetPort": 80}],
                    "type": "ClusterIP", "sessionAffinity": "None",
                    "internalTrafficPolicy": "Cluster", "ipFamilyPolicy": "SingleStack",
                    "ipFamilies": ["IPv4"]}
    assert answer["status"] == {"loadBalancer": {}}


async def test_a_persistent_volume_comes_back_pending_since_its_creation(api: TestClient):
    body = {"metadata": {"name": "pv"}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
        "hostPath": {"path": "/tmp/pv"}}}
    response = await api.post(path("PersistentVolume"), data=json.dumps(body),
                              headers={"Content-Type": "application/json"})
    answer = await response.json()
    assert answer["spec"] == {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                              "hostPath": {"path": "/tmp/pv", "type": ""},
                              "persistentVolumeReclaimPolicy": "Retain",
                              "volumeMode": "Filesystem"}
    assert answer["status"] == {"phase": "Pending", "lastPhaseTransitionTime":
                                answer["metadata"]["creationTimestamp"]}


async def test_a_node_carries_its_always_serialised_status_fields(api: TestClient):
    answer = await create(api, "Node", {"metadata": {"name": "n"}})
    assert answer["spec"] == {}
    assert answer["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 0}}
    assert answer["status"]["nodeInfo"] == {
        k: "" for k in ("machineID", "systemUUID", "bootID", "kernelVersion", "osImage",
                        "containerRuntimeVersion", "kubeletVersion", "kubeProxyVersion",
                        "operatingSystem", "architecture")}


async def test_an_event_carries_its_always_serialised_fields(api: TestClient):
    body = {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"},
            "reason": "Pulled", "message": "done"}
    answer = await create(api, "Event", body)
    assert answer == expected("Event", "e", involvedObject={"kind": "Pod", "name": "p"},
                              reason="Pulled", message="done", source={},
                              firstTimestamp=None, lastTimestamp=None, eventTime=None,
                              reportingComponent="", reportingInstance="")


async def test_a_status_write_gets_the_fields_kubernetes_always_writes(api: TestClient):
    body = {"metadata": {"name": "p"}, "spec": {"containers": [CONTAINER]}}
    await create(api, "Pod", body)
    status = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
              "containerStatuses": [{"name": "c", "state": {"terminated": {"reason": "Error"}}}]}
    response = await api.patch(f"{path('Pod')}/p/status", data=json.dumps({"status": status}),
                               headers={"Content-Type": "application/merge-patch+json"})
    answer = (await response.json())["status"]
    assert answer["conditions"] == [{"type": "Ready", "status": "True", "lastProbeTime": None,
                                     "lastTransitionTime": None}]
    assert answer["containerStatuses"] == [{
        "name": "c", "state": {"terminated": {"reason": "Error", "exitCode": 0,
                                              "startedAt": None, "finishedAt": None}},
        "lastState": {}, "ready": False, "restartCount": 0, "image": "", "imageID": ""}]


async def test_defaults_never_replace_what_the_client_set(api: TestClient):
    body = {"metadata": {"name": "ss"}, "spec": {
        "selector": SELECTOR, "serviceName": "ss", "template": TEMPLATE,
        "updateStrategy": {"type": "RollingUpdate"}}}
    answer = await create(api, "StatefulSet", body)
    assert answer["spec"]["updateStrategy"] == {"type": "RollingUpdate"}
    job = {"metadata": {"name": "j", "labels": {"mine": "yes"}}, "spec": {
        "backoffLimitPerIndex": 1, "completionMode": "Indexed", "completions": 2,
        "template": {"metadata": {"labels": LABELS},
                     "spec": {"containers": [CONTAINER], "restartPolicy": "Never"}}}}
    answer = await create(api, "Job", job)
    assert answer["metadata"]["labels"] == {"mine": "yes"}
    assert answer["spec"]["backoffLimit"] == 2**31 - 1


async def test_a_namespaces_name_label_is_its_name_whatever_was_given(api: TestClient):
    given = {"kubernetes.io/metadata.name": "other", "keep": "me"}
    answer = await create(api, "Namespace", {"metadata": {"name": "ns1", "labels": given}})
    assert answer["metadata"]["labels"] == {"keep": "me", "kubernetes.io/metadata.name": "ns1"}
    answer["metadata"]["labels"]["kubernetes.io/metadata.name"] = "changed"
    response = await api.put(f"{path('Namespace')}/ns1", data=json.dumps(answer),
                             headers={"Content-Type": "application/json"})
    assert response.status == 200
    assert (await response.json())["metadata"]["labels"]["kubernetes.io/metadata.name"] == "ns1"


@pytest.mark.parametrize(("kind", "spec", "field"), [
    ("Job", {"template": TEMPLATE}, "spec.template.spec.restartPolicy"),
    ("CronJob", {"schedule": "@hourly", "jobTemplate": {"spec": {"template": TEMPLATE}}},
     "spec.jobTemplate.spec.template.spec.restartPolicy"),
])
async def test_a_job_template_without_a_restart_policy_is_defaulted_to_always_and_refused(
        api: TestClient, kind: str, spec: dict[str, Any], field: str):
    rt = REGISTRY.get(kind)
    body = {"apiVersion": rt.api_version, "kind": rt.kind, "metadata": {"name": "j"},
            "spec": spec}
    response = await api.post(path(kind), data=json.dumps(body),
                              headers={"Content-Type": "application/json"})
    status = await response.json()
    assert response.status == 422, status
    message = 'Unsupported value: "Always": supported values: "OnFailure", "Never"'
    assert status["details"]["causes"] == [
        {"reason": "FieldValueNotSupported", "message": message, "field": field}]
    assert status["message"] == f'{kind}.batch "j" is invalid: {field}: {message}'
