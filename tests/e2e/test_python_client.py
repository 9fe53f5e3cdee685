"""The official Python client reads every kind minik makes itself, with its typed models.

`kubernetes.client` decodes responses strictly against Kubernetes' OpenAPI
schema: a missing required field (a Node's `nodeInfo.kubeProxyVersion`, a
ReplicaSet's `status.replicas`, a container status's `imageID`) or a value
of the wrong type raises instead of returning an object. Here a Deployment
runs a real container, so that the Node, its Lease, the namespaces minik
bootstraps, the controllers' ReplicaSet, Pod, ServiceAccount and Events and
the node agent's pod status all exist, and each is listed through the typed
API.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client, config

from tests.e2e.cluster import Cluster, eventually, sleeper_template

pytestmark = pytest.mark.e2e

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: sleeper, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: sleeper}}}}
"""


@pytest.fixture
def api_client(cluster: Cluster) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        yield api
    finally:
        api.close()


def test_the_official_python_client_reads_every_kind_minik_creates(
    cluster: Cluster, namespace: str, api_client: client.ApiClient,
):
    manifest = DEPLOYMENT.format(ns=namespace) + sleeper_template("sleeper")
    cluster.kubectl("apply", "-f", "-", input=manifest)
    core = client.CoreV1Api(api_client)
    apps = client.AppsV1Api(api_client)

    def running() -> list[client.V1Pod]:
        pods = core.list_namespaced_pod(namespace, label_selector="app=sleeper").items
        return [p for p in pods if p.status.phase == "Running"]

    pod = eventually(running, timeout=60, what="a running sleeper pod")[0]
    status = pod.status.container_statuses[0]
    assert (status.name, status.ready, status.restart_count) == ("main", True, 0)
    assert status.image_id and status.state.running.started_at is not None
    assert {c.type for c in pod.status.conditions} >= {"Ready", "PodScheduled"}

    node = core.list_node().items[0]
    assert node.status.node_info.kube_proxy_version == ""
    assert node.status.node_info.kubelet_version
    assert node.status.daemon_endpoints.kubelet_endpoint.port > 0
    assert {c.type for c in node.status.conditions} >= {"Ready"}

    lease = client.CoordinationV1Api(api_client).read_namespaced_lease(
        node.metadata.name, "kube-node-lease")
    assert lease.spec.holder_identity == node.metadata.name

    names = {ns.metadata.name for ns in core.list_namespace().items}
    assert {"default", "kube-system", "kube-public", "kube-node-lease", namespace} <= names

    rs = apps.list_namespaced_replica_set(namespace).items[0]
    assert rs.status.replicas == 1
    assert rs.metadata.owner_references[0].kind == "Deployment"
    deployment = apps.read_namespaced_deployment("sleeper", namespace)
    assert deployment.spec.template.metadata.labels == {"app": "sleeper"}

    account = eventually(lambda: core.list_namespaced_service_account(namespace).items,
                         what="the namespace's default service account")
    assert [a.metadata.name for a in account] == ["default"]

    events = eventually(lambda: core.list_namespaced_event(namespace).items,
                        what="events about the deployment")
    assert all(e.involved_object.name for e in events)
    assert core.list_event_for_all_namespaces().items
