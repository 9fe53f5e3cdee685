"""Server defaults are those kubectl relies on, and never replace what the user set."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from minik.api import defaults
from minik.api.resources import REGISTRY, ResourceType


def rt(kind: str) -> ResourceType:
    found = REGISTRY.resolve(kind)
    assert found is not None
    return found


def container(**extra: Any) -> dict[str, Any]:
    return {"name": "c", "image": "nginx:1.25", **extra}


def pod(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [container()], **spec}}


def workload(kind: str, **spec: Any) -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [container()]}}
    return {"apiVersion": rt(kind).api_version, "kind": kind, "metadata": {"name": "w"},
            "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": template, **spec}}


def test_pod_gets_kubernetes_pod_defaults() -> None:
    spec = defaults.apply_defaults(rt("Pod"), pod())["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["securityContext"] == {}
    assert spec["enableServiceLinks"] is True


def test_pod_starts_pending_with_a_qos_class() -> None:
    status = defaults.apply_defaults(rt("Pod"), pod())["status"]
    assert status == {"phase": "Pending", "qosClass": "BestEffort"}


def test_container_defaults() -> None:
    obj = pod()
    obj["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    c = defaults.apply_defaults(rt("Pod"), obj)["spec"]["containers"][0]
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["resources"] == {}
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]


@pytest.mark.parametrize(("image", "policy"), [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.25", "IfNotPresent"),
    ("localhost:5000/app", "Always"), ("localhost:5000/app:v2", "IfNotPresent"),
    ("busybox@sha256:abc", "IfNotPresent"),
])
def test_image_pull_policy_depends_on_the_tag(image: str, policy: str) -> None:
    assert defaults.image_pull_policy(image) == policy


def test_probe_defaults() -> None:
    obj = pod()
    obj["spec"]["containers"][0]["livenessProbe"] = {"httpGet": {"port": 8080}}
    probe = defaults.apply_defaults(rt("Pod"), obj)["spec"]["containers"][0]["livenessProbe"]
    assert probe == {"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
                     "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
                     "failureThreshold": 3}


def test_limits_alone_become_requests_for_pods() -> None:
    obj = pod()
    obj["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1", "memory": "1Gi"}}
    result = defaults.apply_defaults(rt("Pod"), obj)
    assert result["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "1",
                                                                        "memory": "1Gi"}
    assert result["status"]["qosClass"] == "Guaranteed"


def test_volumes_get_source_and_mode_defaults() -> None:
    obj = pod(volumes=[{"name": "scratch"}, {"name": "cfg", "configMap": {"name": "c"}},
                       {"name": "host", "hostPath": {"path": "/srv"}}])
    volumes = defaults.apply_defaults(rt("Pod"), obj)["spec"]["volumes"]
    assert volumes[0] == {"name": "scratch", "emptyDir": {}}
    assert volumes[1]["configMap"]["defaultMode"] == 420
    assert volumes[2]["hostPath"]["type"] == ""


def test_user_values_are_never_overwritten() -> None:
    obj = pod(restartPolicy="Never", dnsPolicy="Default", terminationGracePeriodSeconds=5)
    obj["spec"]["containers"][0].update(imagePullPolicy="Never",
                                        ports=[{"containerPort": 53, "protocol": "UDP"}])
    result = defaults.apply_defaults(rt("Pod"), obj)
    assert result["spec"]["restartPolicy"] == "Never"
    assert result["spec"]["dnsPolicy"] == "Default"
    assert result["spec"]["terminationGracePeriodSeconds"] == 5
    assert result["spec"]["containers"][0]["imagePullPolicy"] == "Never"
    assert result["spec"]["containers"][0]["ports"][0]["protocol"] == "UDP"


def test_input_object_is_left_untouched() -> None:
    obj = workload("Deployment")
    before = copy.deepcopy(obj)
    defaults.apply_defaults(rt("Deployment"), obj)
    assert obj == before


def test_deployment_defaults() -> None:
    spec = defaults.apply_defaults(rt("Deployment"), workload("Deployment"))["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate",
                                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    assert spec["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert "enableServiceLinks" not in spec["template"]["spec"]


def test_recreate_deployment_gets_no_rolling_parameters() -> None:
    obj = workload("Deployment", strategy={"type": "Recreate"}, replicas=0)
    spec = defaults.apply_defaults(rt("Deployment"), obj)["spec"]
    assert spec["strategy"] == {"type": "Recreate"}
    assert spec["replicas"] == 0


def test_replicaset_defaults_replicas() -> None:
    assert defaults.apply_defaults(rt("ReplicaSet"), workload("ReplicaSet"))["spec"][
        "replicas"] == 1


def test_statefulset_defaults() -> None:
    claim = {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}
    obj = workload("StatefulSet", serviceName="db", volumeClaimTemplates=[claim])
    spec = defaults.apply_defaults(rt("StatefulSet"), obj)["spec"]
    assert spec["replicas"] == 1
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["revisionHistoryLimit"] == 10
    assert spec["serviceName"] == "db"
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain",
                                                            "whenScaled": "Retain"}
    assert spec["volumeClaimTemplates"][0]["spec"]["volumeMode"] == "Filesystem"


def test_daemonset_defaults() -> None:
    spec = defaults.apply_defaults(rt("DaemonSet"), workload("DaemonSet"))["spec"]
    assert spec["updateStrategy"] == {"type": "RollingUpdate",
                                      "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert spec["revisionHistoryLimit"] == 10


def test_job_templates_get_the_pod_specs_defaults_restart_policy_included() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
           "spec": {"template": {"spec": {"containers": [container()]}}}}
    spec = defaults.apply_defaults(rt("Job"), job)["spec"]
    assert (spec["completions"], spec["parallelism"]) == (1, 1)
    assert spec["backoffLimit"] == 6
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False
    assert spec["template"]["spec"]["restartPolicy"] == "Always"  # validation refuses it
    assert spec["template"]["spec"]["dnsPolicy"] == "ClusterFirst"


def test_job_with_parallelism_only_keeps_completions_unset() -> None:
    job = {"spec": {"parallelism": 3, "template": {"spec": {"containers": [container()]}}}}
    spec = defaults.apply_defaults(rt("Job"), job)["spec"]
    assert spec["parallelism"] == 3
    assert "completions" not in spec


def test_cronjob_defaults() -> None:
    cron = {"spec": {"schedule": "@hourly", "jobTemplate": {"spec": {"template": {
        "spec": {"containers": [container()], "restartPolicy": "OnFailure"}}}}}}
    spec = defaults.apply_defaults(rt("CronJob"), cron)["spec"]
    assert spec["concurrencyPolicy"] == "Allow"
    assert spec["suspend"] is False
    assert spec["successfulJobsHistoryLimit"] == 3
    assert spec["failedJobsHistoryLimit"] == 1
    pod_spec = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod_spec["restartPolicy"] == "OnFailure"
    assert pod_spec["schedulerName"] == "default-scheduler"


def test_service_defaults() -> None:
    svc = {"spec": {"selector": {"app": "a"}, "ports": [{"port": 80}, {"port": 53,
                                                                         "targetPort": "dns"}]}}
    spec = defaults.apply_defaults(rt("Service"), svc)["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80},
                             {"port": 53, "targetPort": "dns", "protocol": "TCP"}]
    assert spec["ipFamilies"] == ["IPv4"]
    assert spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["internalTrafficPolicy"] == "Cluster"


def test_node_port_service_gets_external_traffic_policy() -> None:
    spec = defaults.apply_defaults(rt("Service"), {"spec": {"type": "NodePort"}})["spec"]
    assert spec["externalTrafficPolicy"] == "Cluster"


def test_secret_string_data_is_folded_into_data() -> None:
    secret = {"metadata": {"name": "s"}, "data": {"a": "YQ=="},
              "stringData": {"b": "hello", "a": "override"}}
    result = defaults.apply_defaults(rt("Secret"), secret)
    assert result["type"] == "Opaque"
    assert "stringData" not in result
    assert base64.b64decode(result["data"]["b"]) == b"hello"
    assert base64.b64decode(result["data"]["a"]) == b"override"


def test_malformed_values_are_left_for_validation_to_refuse() -> None:
    assert defaults.apply_defaults(rt("Deployment"), {"spec": "oops"})["spec"] == "oops"
    secret = defaults.apply_defaults(rt("Secret"), {"stringData": ["a"]})
    assert secret["stringData"] == ["a"]


def test_secret_type_is_kept() -> None:
    secret = {"type": "kubernetes.io/tls", "data": {}}
    assert defaults.apply_defaults(rt("Secret"), secret)["type"] == "kubernetes.io/tls"


def test_namespace_defaults() -> None:
    ns = defaults.apply_defaults(rt("Namespace"), {"metadata": {"name": "team"}})
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team"}


def test_claim_and_volume_defaults() -> None:
    pvc = defaults.apply_defaults(rt("PersistentVolumeClaim"), {"spec": {}})
    assert pvc["spec"]["volumeMode"] == "Filesystem"
    assert pvc["status"] == {"phase": "Pending"}
    pv = defaults.apply_defaults(rt("PersistentVolume"), {"spec": {}})
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["spec"]["volumeMode"] == "Filesystem"
    assert pv["status"] == {"phase": "Pending"}
    dynamic = defaults.apply_defaults(
        rt("PersistentVolume"), {"spec": {"persistentVolumeReclaimPolicy": "Delete"}})
    assert dynamic["spec"]["persistentVolumeReclaimPolicy"] == "Delete"


def test_kinds_without_defaults_are_copied_unchanged() -> None:
    cm = {"metadata": {"name": "c"}, "data": {"k": "v"}}
    result = defaults.apply_defaults(rt("ConfigMap"), cm)
    assert result == cm and result is not cm
