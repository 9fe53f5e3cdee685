"""ReplicationControllers: served as Kubernetes serves them, managed by the ReplicaSet logic.

The API half runs over HTTP against a memory store; the controller half runs
the ReplicationController manager (the ReplicaSet controller given the
core/v1 kind) on shared informers against a real in-process API server, with
pod status simulated through the `status` subresource.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from minik.api.printers import PRINTERS
from minik.api.resources import REGISTRY
from minik.api.tables import row_cells
from minik.controllers.garbagecollector import GarbageCollector
from minik.controllers.podcontrol import is_pod_active
from minik.controllers.replica_kinds import REPLICA_SET, REPLICATION_CONTROLLER, selector_of
from minik.controllers.replicaset import replica_set_controller, replication_manager
from tests.unit.apitest import poll, start_api
from tests.unit.test_apiserver import api, call
from tests.unit.test_garbagecollector import Cluster

__all__ = ["api"]
RCS = REGISTRY.get("replicationcontrollers")
RSS = REGISTRY.get("replicasets")
PODS = REGISTRY.get("pods")
RC_PATH = "/api/v1/namespaces/default/replicationcontrollers"
NOW = dt.datetime(2030, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def rc_body(name: str = "web", replicas: int | None = 2, *, labels: dict | None = None,
            selector: dict | None = None, restart: str | None = None) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {"containers": [{"name": "c", "image": "minik/busybox:1.35"}]}
    if restart:
        pod_spec["restartPolicy"] = restart
    spec: dict[str, Any] = {"template": {"metadata": {"labels": labels or {"app": name}},
                                         "spec": pod_spec}}
    if replicas is not None:
        spec["replicas"] = replicas
    if selector is not None:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": name},
            "spec": spec}


# ------------------------------------------------------------------- the API


async def test_a_created_rc_gets_kubernetes_defaults(api: TestClient):
    labels = {"app": "web", "tier": "front"}
    created = await call(api, "POST", RC_PATH, rc_body(replicas=None, labels=labels), expect=201)
    assert created["spec"]["selector"] == labels
    assert created["spec"]["replicas"] == 1
    assert created["metadata"]["labels"] == labels
    assert created["spec"]["template"]["metadata"]["creationTimestamp"] is None
    assert created["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    assert created["status"] == {"replicas": 0}


async def test_an_rc_keeps_its_own_selector_and_labels(api: TestClient):
    body = rc_body(labels={"app": "web", "tier": "front"}, selector={"app": "web"})
    body["metadata"]["labels"] = {"team": "a"}
    created = await call(api, "POST", RC_PATH, body, expect=201)
    assert created["spec"]["selector"] == {"app": "web"}
    assert created["metadata"]["labels"] == {"team": "a"}


@pytest.mark.parametrize(("body", "field", "message"), [
    (rc_body(selector={"app": "other"}), "spec.template.metadata.labels",
     "`selector` does not match template `labels`"),
    ({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "web"},
      "spec": {"selector": {"app": "web"}}}, "spec.template", "Required value"),
    (rc_body(restart="Never"), "spec.template.spec.restartPolicy", "Unsupported value"),
    (rc_body(replicas=-1), "spec.replicas", "must be greater than or equal to 0"),
], ids=["selector-mismatch", "no-template", "restart-never", "negative-replicas"])
async def test_an_invalid_rc_is_refused_naming_the_field(api: TestClient, body: dict,
                                                         field: str, message: str):
    answer = await call(api, "POST", RC_PATH, body, expect=422)
    causes = answer["details"]["causes"]
    assert [c["field"] for c in causes] == [field]
    assert message in causes[0]["message"]
    assert answer["details"]["kind"] == "ReplicationController"


async def test_the_scale_subresource_reads_and_writes_replicas_with_an_equality_selector(
    api: TestClient,
):
    await call(api, "POST", RC_PATH, rc_body(labels={"app": "web", "tier": "front"}),
               expect=201)
    scale = await call(api, "GET", f"{RC_PATH}/web/scale", expect=200)
    assert (scale["kind"], scale["apiVersion"]) == ("Scale", "autoscaling/v1")
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 0, "selector": "app=web,tier=front"}
    scale["spec"]["replicas"] = 5
    await call(api, "PUT", f"{RC_PATH}/web/scale", scale, expect=200)
    assert (await call(api, "GET", f"{RC_PATH}/web"))["spec"]["replicas"] == 5


async def test_discovery_names_rc_with_its_short_name_and_subresources(api: TestClient):
    resources = {r["name"]: r for r in (await call(api, "GET", "/api/v1"))["resources"]}
    rc = resources["replicationcontrollers"]
    assert (rc["kind"], rc["namespaced"], rc["shortNames"]) == ("ReplicationController", True,
                                                                ["rc"])
    assert rc["categories"] == ["all"]
    assert resources["replicationcontrollers/scale"]["kind"] == "Scale"
    assert "replicationcontrollers/status" in resources


def test_a_selector_is_read_as_the_kind_writes_it():
    rc = rc_body(labels={"app": "web", "tier": "front"})
    rc["spec"]["selector"] = {"app": "web"}
    selector = selector_of(rc, REPLICATION_CONTROLLER)
    assert selector is not None and str(selector) == "app=web"
    assert selector_of(rc, REPLICA_SET) is None  # a label map is not a LabelSelector


def test_rc_rows_print_as_kubectl_prints_them():
    rc = {"kind": "ReplicationController", "apiVersion": "v1",
          "metadata": {"name": "web", "creationTimestamp": "2030-01-01T11:59:00Z"},
          "spec": {"replicas": 3, "selector": {"tier": "front", "app": "web"},
                   "template": {"spec": {"containers": [{"name": "c", "image": "i:1"},
                                                        {"name": "d", "image": "j:2"}]}}},
          "status": {"replicas": 2, "readyReplicas": 1}}
    names = [c.name for c in PRINTERS["ReplicationController"].columns]
    assert names == ["Name", "Desired", "Current", "Ready", "Age", "Containers", "Images",
                     "Selector"]
    assert row_cells("ReplicationController", rc, now=NOW) == [
        "web", 3, 2, 1, "60s", "c,d", "i:1,j:2", "app=web,tier=front"]


# ------------------------------------------------------------ the controller


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    env = Cluster(await start_api())
    yield env
    await env.close()


async def owned(cluster: Cluster, owner: dict) -> list[dict]:
    uid = owner["metadata"]["uid"]
    pods = (await cluster.client.list(PODS, "default"))["items"]
    return [p for p in pods if is_pod_active(p) and any(
        r.get("uid") == uid and r.get("controller") for r in
        p["metadata"].get("ownerReferences") or [])]


async def wait_owned(cluster: Cluster, owner: dict, count: int) -> list[dict]:
    return await poll(lambda: owned(cluster, owner), lambda pods: len(pods) == count)


async def orphan(cluster: Cluster, name: str, labels: dict[str, str]) -> dict:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "minik/busybox:1.35"}]}}
    return await cluster.client.create(PODS, "default", body)


async def test_the_manager_keeps_replicas_of_pods_owned_as_a_replication_controller(
    cluster: Cluster,
):
    [manager] = cluster.start(replication_manager)
    assert manager.name == "replicationcontroller"
    rc = await cluster.client.create(RCS, "default", rc_body(replicas=3))
    pods = await wait_owned(cluster, rc, 3)
    ref = pods[0]["metadata"]["ownerReferences"][0]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == ("v1", "ReplicationController", "web")
    assert all(p["metadata"]["generateName"] == "web-" for p in pods)
    # The first status is written from the pods listed before the creates (replicas 0, as
    # Kubernetes' does); the one after the new pods are seen counts them.
    status = (await poll(lambda: cluster.client.get(RCS, "default", "web"),
                         lambda obj: obj["status"].get("observedGeneration") == 1
                         and obj["status"].get("replicas") == 3))["status"]
    assert status == {"replicas": 3, "fullyLabeledReplicas": 3, "readyReplicas": 0,
                      "availableReplicas": 0, "observedGeneration": 1}
    await cluster.client.delete(PODS, "default", pods[0]["metadata"]["name"])
    replaced = await poll(lambda: owned(cluster, rc), lambda now: len(now) == 3 and pods[0][
        "metadata"]["uid"] not in {p["metadata"]["uid"] for p in now})
    assert len(replaced) == 3


async def test_the_selector_map_adopts_only_pods_carrying_every_selected_label(
    cluster: Cluster,
):
    matching = await orphan(cluster, "match", {"app": "web", "tier": "front", "extra": "x"})
    await orphan(cluster, "partial", {"app": "web"})
    cluster.start(replication_manager)
    rc = await cluster.client.create(RCS, "default", rc_body(
        replicas=2, labels={"app": "web", "tier": "front"}))
    pods = await wait_owned(cluster, rc, 2)
    assert matching["metadata"]["uid"] in {p["metadata"]["uid"] for p in pods}
    partial = await cluster.client.get(PODS, "default", "partial")
    assert "ownerReferences" not in partial["metadata"]


async def test_scaling_down_removes_pods_and_replica_sets_keep_their_own(cluster: Cluster):
    cluster.start(replica_set_controller, replication_manager)
    rc = await cluster.client.create(RCS, "default", rc_body(replicas=3))
    rs_body = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "api"},
               "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}},
                        "template": rc_body(labels={"app": "api"})["spec"]["template"]}}
    rs = await cluster.client.create(RSS, "default", rs_body)
    await wait_owned(cluster, rc, 3)
    await wait_owned(cluster, rs, 2)
    await cluster.client.patch(RCS, "default", "web", {"spec": {"replicas": 1}})
    await wait_owned(cluster, rc, 1)
    assert len(await owned(cluster, rs)) == 2


async def test_deleting_an_rc_deletes_its_pods(cluster: Cluster):
    cluster.start(replication_manager, GarbageCollector)
    rc = await cluster.client.create(RCS, "default", rc_body(replicas=2))
    await wait_owned(cluster, rc, 2)
    await cluster.client.delete(RCS, "default", "web", propagation_policy="Background")
    await poll(lambda: cluster.client.list(PODS, "default"), lambda pods: not pods["items"])


async def test_an_orphaning_delete_leaves_the_pods_without_an_owner(cluster: Cluster):
    cluster.start(replication_manager, GarbageCollector)
    rc = await cluster.client.create(RCS, "default", rc_body(replicas=2))
    pods = await wait_owned(cluster, rc, 2)
    await cluster.client.delete(RCS, "default", "web", propagation_policy="Orphan")
    name = pods[0]["metadata"]["name"]
    kept = await poll(lambda: cluster.client.get(PODS, "default", name),
                      lambda pod: not pod["metadata"].get("ownerReferences"))
    assert kept["metadata"]["labels"] == {"app": "web"}
