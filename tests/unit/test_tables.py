"""Server-side Tables print exactly what kubectl shows for each kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from minik.api.errors import ApiError
from minik.api.printers import PRINTERS
from minik.api.printers.formatting import human_duration
from minik.api.tables import build_table, column_definitions, row_cells

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
SECOND, MINUTE, HOUR, DAY, YEAR = 1, 60, 3600, 86400, 365 * 86400
MS = 0.001


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str = "p1", **extra) -> dict:
    return {"name": name, "namespace": "default", "uid": "u-1", "resourceVersion": "104",
            "creationTimestamp": ago(seconds=12), "labels": {"app": "p"}, **extra}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-2, "<invalid>"), (-2 + 1e-9, "0s"), (0, "0s"), (1 - MS, "0s"), (1, "1s"),
        (70, "70s"), (2 * MINUTE - MS, "119s"), (2 * MINUTE, "2m"), (2 * MINUTE + 1, "2m1s"),
        (190, "3m10s"), (10 * MINUTE - MS, "9m59s"), (10 * MINUTE, "10m"),
        (10 * MINUTE + 1, "10m"), (70 * MINUTE, "70m"), (3 * HOUR - MS, "179m"),
        (3 * HOUR, "3h"), (3 * HOUR + MINUTE, "3h1m"), (8 * HOUR - MS, "7h59m"),
        (8 * HOUR, "8h"), (8 * HOUR + 59 * MINUTE, "8h"), (47 * HOUR, "47h"),
        (2 * DAY - MS, "47h"), (2 * DAY, "2d"), (49 * HOUR, "2d1h"), (8 * DAY - MS, "7d23h"),
        (8 * DAY, "8d"), (8 * DAY + 23 * HOUR, "8d"), (367 * DAY, "367d"),
        (2 * YEAR - MS, "729d"), (2 * YEAR, "2y"), (2 * YEAR + 23 * HOUR + 59 * MINUTE, "2y"),
        (2 * YEAR + DAY - MS, "2y"), (2 * YEAR + DAY, "2y1d"), (2 * YEAR + 25 * HOUR, "2y1d"),
        (5 * YEAR, "5y"), (8 * YEAR - MS, "7y364d"), (8 * YEAR, "8y"),
        (8 * YEAR + 364 * DAY, "8y"), (9 * YEAR, "9y"),
    ],
)
def test_human_duration_matches_the_apimachinery_boundary_table(seconds, text):
    assert human_duration(seconds) == text


def pod(*, phase="Running", containers=None, init=None, init_specs=None, **status) -> dict:
    containers = containers if containers is not None else [running()]
    return {
        "kind": "Pod", "apiVersion": "v1", "metadata": meta(),
        "spec": {"containers": [{"name": c["name"], "image": "nginx"} for c in containers],
                 "initContainers": init_specs or [{"name": c["name"]} for c in init or []],
                 "nodeName": "minik-node"},
        "status": {"phase": phase, "containerStatuses": containers,
                   "initContainerStatuses": init or [], "podIP": "10.0.0.5", **status},
    }


def running(name="app", ready=True, restarts=0, **extra) -> dict:
    return {"name": name, "ready": ready, "restartCount": restarts,
            "state": {"running": {"startedAt": ago(minutes=1)}}, **extra}


def waiting(reason, name="app", restarts=0, **extra) -> dict:
    return {"name": name, "ready": False, "restartCount": restarts,
            "state": {"waiting": {"reason": reason}}, **extra}


def terminated(reason="", exit_code=0, name="app", **extra) -> dict:
    state = {"exitCode": exit_code, **({"reason": reason} if reason else {})}
    return {"name": name, "ready": False, "restartCount": 0,
            "state": {"terminated": state}, **extra}


def pod_cells(obj: dict) -> list:
    return row_cells("Pod", obj, now=NOW)


def test_a_running_pod_prints_ready_status_restarts_and_age():
    assert pod_cells(pod()) == [
        "p1", "1/1", "Running", "0", "12s", "10.0.0.5", "minik-node", "<none>", "<none>",
    ]


@pytest.mark.parametrize(
    ("containers", "status"),
    [
        ([waiting("CrashLoopBackOff")], "CrashLoopBackOff"),
        ([waiting("ErrImagePull")], "ErrImagePull"),
        ([waiting("ContainerCreating")], "ContainerCreating"),
        ([terminated("Completed")], "Completed"),
        ([terminated("Error", 1)], "Error"),
        ([terminated("OOMKilled", 137)], "OOMKilled"),
        ([terminated(exit_code=3)], "ExitCode:3"),
        ([{"name": "app", "state": {"terminated": {"signal": 9, "exitCode": 137}}}], "Signal:9"),
        ([waiting("ImagePullBackOff", "b"), waiting("CrashLoopBackOff", "a")], "ImagePullBackOff"),
    ],
)
def test_container_reasons_explain_the_pod_status(containers, status):
    assert pod_cells(pod(containers=containers))[2] == status


def test_a_completed_container_beside_a_running_one_reads_running_or_not_ready():
    containers = [running("a"), terminated("Completed", name="b")]
    ready = [{"type": "Ready", "status": "True"}]
    assert pod_cells(pod(containers=containers, conditions=ready))[2] == "Running"
    assert pod_cells(pod(containers=containers))[2] == "NotReady"


def test_a_pending_pod_without_statuses_shows_its_phase():
    assert pod_cells(pod(phase="Pending", containers=[]))[1:3] == ["0/0", "Pending"]


def test_a_status_reason_overrides_the_phase():
    assert pod_cells(pod(phase="Failed", containers=[], reason="Evicted"))[2] == "Evicted"


def test_an_init_container_still_running_shows_init_progress():
    obj = pod(phase="Pending", containers=[waiting("PodInitializing")],
              init=[running("setup", ready=False)])
    assert pod_cells(obj)[1:3] == ["0/1", "Init:0/1"]


def test_a_second_init_container_counts_the_first_as_done():
    obj = pod(phase="Pending", containers=[],
              init=[terminated("Completed", name="one"), waiting("PodInitializing", "two")])
    assert pod_cells(obj)[2] == "Init:1/2"


def test_a_crashing_init_container_shows_its_reason():
    obj = pod(phase="Pending", containers=[], init=[waiting("CrashLoopBackOff", "setup")])
    assert pod_cells(obj)[2] == "Init:CrashLoopBackOff"
    failed = pod(phase="Pending", containers=[], init=[terminated("Error", 1, name="setup")])
    assert pod_cells(failed)[2] == "Init:Error"


def test_a_started_sidecar_counts_towards_ready_and_total():
    obj = pod(containers=[running("app")],
              init=[running("proxy", started=True)],
              init_specs=[{"name": "proxy", "restartPolicy": "Always"}])
    assert pod_cells(obj)[1:3] == ["2/2", "Running"]


def test_a_pod_being_deleted_is_terminating_unless_it_already_finished():
    deleting = pod()
    deleting["metadata"]["deletionTimestamp"] = ago(seconds=1)
    assert pod_cells(deleting)[2] == "Terminating"
    done = pod(phase="Succeeded", containers=[terminated("Completed")])
    done["metadata"]["deletionTimestamp"] = ago(seconds=1)
    assert pod_cells(done)[2] == "Completed"


def test_restarts_show_how_long_ago_the_last_container_finished():
    last = {"terminated": {"exitCode": 1, "finishedAt": ago(minutes=5)}}
    older = {"terminated": {"exitCode": 1, "finishedAt": ago(hours=1)}}
    obj = pod(containers=[running("a", restarts=2, lastState=last),
                          running("b", restarts=1, lastState=older)])
    assert pod_cells(obj)[3] == "3 (5m ago)"


def test_restarts_without_a_finish_time_are_just_a_count():
    assert pod_cells(pod(containers=[running(restarts=4)]))[3] == "4"


def test_readiness_gates_count_true_conditions():
    obj = pod(conditions=[{"type": "example.com/gate", "status": "True"}])
    obj["spec"]["readinessGates"] = [{"conditionType": "example.com/gate"},
                                     {"conditionType": "example.com/other"}]
    assert pod_cells(obj)[8] == "1/2"


def service(spec: dict, status: dict | None = None) -> dict:
    return {"metadata": meta("web"), "spec": spec, "status": status or {}}


def test_service_ports_show_protocol_and_node_port():
    cells = row_cells("Service", service({
        "type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
        "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                  {"port": 53, "protocol": "UDP"}],
        "selector": {"app": "web", "tier": "fe"},
    }), now=NOW)
    assert cells == ["web", "NodePort", "10.96.0.10", "<none>", "80:30080/TCP,53/UDP", "12s",
                     "app=web,tier=fe"]


def test_a_service_without_ports_or_selector_says_none():
    cells = row_cells("Service", service({"clusterIP": "None"}), now=NOW)
    assert cells == ["web", "ClusterIP", "None", "<none>", "<none>", "12s", "<none>"]


def test_a_load_balancer_is_pending_until_it_has_an_ingress():
    spec = {"type": "LoadBalancer", "clusterIP": "10.96.0.11", "ports": [{"port": 80}]}
    assert row_cells("Service", service(spec), now=NOW)[3] == "<pending>"
    ready = service(spec, {"loadBalancer": {"ingress": [{"ip": "192.0.2.7"}]}})
    assert row_cells("Service", ready, now=NOW)[3] == "192.0.2.7"


def test_a_deployment_shows_ready_of_desired_and_its_selector():
    deployment = {
        "metadata": meta("web"),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1"},
                                                      {"name": "log", "image": "busybox"}]}}},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    assert row_cells("Deployment", deployment, now=NOW) == [
        "web", "2/3", 3, 2, "12s", "nginx,log", "nginx:1,busybox", "app=web",
    ]


def test_a_job_shows_status_completions_and_duration():
    job = {
        "metadata": meta("pi"),
        "spec": {"completions": 1, "template": {"spec": {"containers": []}}},
        "status": {"succeeded": 1, "startTime": ago(minutes=3),
                   "completionTime": ago(minutes=1),
                   "conditions": [{"type": "Complete", "status": "True"}]},
    }
    assert row_cells("Job", job, now=NOW)[:4] == ["pi", "Complete", "1/1", "2m"]
    running_job = {"metadata": meta("pi"), "spec": {"parallelism": 2},
                   "status": {"startTime": ago(seconds=30)}}
    assert row_cells("Job", running_job, now=NOW)[:4] == ["pi", "Running", "0/1 of 2", "30s"]


def test_a_node_shows_readiness_scheduling_and_roles():
    node = {
        "metadata": meta("minik-node", labels={"node-role.kubernetes.io/control-plane": ""}),
        "spec": {"unschedulable": True},
        "status": {"conditions": [{"type": "Ready", "status": "True"}],
                   "nodeInfo": {"kubeletVersion": "v1.32.0"},
                   "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}]},
    }
    assert row_cells("Node", node, now=NOW) == [
        "minik-node", "Ready,SchedulingDisabled", "control-plane", "12s", "v1.32.0",
        "172.18.0.2", "<none>", "<unknown>", "<unknown>", "<unknown>",
    ]
    assert row_cells("Node", {"metadata": meta("n2")}, now=NOW)[1:3] == ["Unknown", "<none>"]


def test_an_event_names_its_object_by_lowercase_kind():
    event = {
        "metadata": meta("p1.17a"), "type": "Normal", "reason": "Pulled",
        "involvedObject": {"kind": "Pod", "name": "p1", "fieldPath": "spec.containers{app}"},
        "source": {"component": "kubelet", "host": "minik-node"}, "message": "Pulled image\n",
        "firstTimestamp": ago(minutes=4), "lastTimestamp": ago(seconds=20), "count": 2,
    }
    assert row_cells("Event", event, now=NOW) == [
        "20s", "Normal", "Pulled", "pod/p1", "spec.containers{app}", "kubelet, minik-node",
        "Pulled image", "4m", 2, "p1.17a",
    ]


def test_endpoints_list_three_addresses_then_how_many_more():
    endpoints = {"metadata": meta("web"), "subsets": [{
        "addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 6)], "ports": [{"port": 80}],
    }]}
    assert row_cells("Endpoints", endpoints, now=NOW)[1] == (
        "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more..."
    )
    assert row_cells("Endpoints", {"metadata": meta("x")}, now=NOW)[1] == "<none>"


def test_a_controller_revision_names_its_owner_with_group():
    revision = {"metadata": meta("web-5d8f", ownerReferences=[
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": True}]),
        "revision": 2}
    assert row_cells("ControllerRevision", revision, now=NOW) == [
        "web-5d8f", "statefulset.apps/web", 2, "12s",
    ]


def test_a_persistent_volume_abbreviates_access_modes_and_names_its_claim():
    spec = {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "local",
            "claimRef": {"namespace": "default", "name": "data"}}
    pv = {"metadata": meta("pv1"), "spec": spec, "status": {"phase": "Bound"}}
    assert row_cells("PersistentVolume", pv, now=NOW) == [
        "pv1", "1Gi", "RWO,RWX", "Retain", "Bound", "default/data", "local", "<unset>", "",
        "12s", "<unset>",
    ]


def test_an_hpa_shows_utilization_against_its_target():
    cpu = {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}
    spec = {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1,
            "maxReplicas": 5, "metrics": [{"type": "Resource", "resource": cpu}]}
    hpa = {"metadata": meta("web"), "spec": spec, "status": {"currentReplicas": 2}}
    assert row_cells("HorizontalPodAutoscaler", hpa, now=NOW) == [
        "web", "Deployment/web", "cpu: <unknown>/50%", "1", 5, 2, "12s",
    ]


def test_a_pdb_shows_its_budget_and_allowed_disruptions_with_na_for_the_unset_one():
    pdb = {"metadata": meta("web"), "spec": {"maxUnavailable": "25%"},
           "status": {"disruptionsAllowed": 1}}
    assert row_cells("PodDisruptionBudget", pdb, now=NOW) == ["web", "N/A", "25%", 1, "12s"]


def test_an_object_without_a_creation_time_has_unknown_age():
    assert row_cells("ConfigMap", {"metadata": {"name": "c"}, "data": {"a": "1"}}, now=NOW) == [
        "c", 1, "<unknown>",
    ]


@pytest.mark.parametrize("kind", sorted(PRINTERS))
def test_every_printer_fills_each_column_even_for_a_bare_object(kind):
    assert len(row_cells(kind, {"metadata": {"name": "x"}}, now=NOW)) == len(
        column_definitions(kind)
    )


def test_columns_mark_the_name_column_and_wide_columns():
    columns = column_definitions("Pod")
    assert [c["name"] for c in columns] == [
        "Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node",
        "Readiness Gates",
    ]
    assert [c["priority"] for c in columns] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert [c["format"] for c in columns] == ["name"] + [""] * 8
    assert all(set(c) == {"name", "type", "format", "description", "priority"} for c in columns)


def test_an_unknown_kind_prints_name_and_age():
    assert [c["name"] for c in column_definitions("Widget")] == ["Name", "Age"]
    assert row_cells("Widget", {"metadata": meta("w")}, now=NOW) == ["w", "12s"]


def test_a_table_carries_metadata_columns_and_partial_object_metadata_rows():
    obj = pod()
    table = build_table("Pod", [obj], now=NOW, resource_version="108")
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "108"}
    assert table["columnDefinitions"] == column_definitions("Pod")
    assert table["rows"] == [{
        "cells": pod_cells(obj),
        "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                   "metadata": obj["metadata"]},
    }]


def test_include_object_can_embed_the_full_object_or_nothing():
    obj = pod()
    full = build_table("Pod", [obj], now=NOW, resource_version="1", include_object="Object")
    assert full["rows"][0]["object"] is obj
    bare = build_table("Pod", [obj], now=NOW, resource_version="1", include_object="None")
    assert "object" not in bare["rows"][0]


def test_a_continue_token_is_passed_on_and_an_empty_list_has_no_rows():
    table = build_table("Pod", [], now=NOW, resource_version="5", continue_token="abc")
    assert table["metadata"] == {"resourceVersion": "5", "continue": "abc"}
    assert table["rows"] == []


def test_an_unknown_include_object_value_is_a_bad_request():
    with pytest.raises(ApiError) as caught:
        build_table("Pod", [], now=NOW, resource_version="1", include_object="Everything")
    assert caught.value.code == 400
