"""The projected service-account token: requested for the pod, renewed at 80% of its life,
swapped in atomically; the ServiceAccount admission plugin that mounts it; the
`kubernetes` Service's variables in every container."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest

from agent.env import container_env
from agent.sa_tokens import ServiceAccountTokens
from agent.volumes import VolumeManager
from minik.api.errors import ApiError
from minik.apiserver.serviceaccount_admission import MOUNT_PATH, ServiceAccountAdmission
from minik.machinery.clock import ManualClock
from minik.store import MemoryStore
from tests.unit.test_volumes import make_pod, vol_dir

TOKEN_SOURCE = {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}


class TokenApi:
    """Answers TokenRequests with numbered tokens expiring as asked."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.requests: list[tuple[str, dict[str, Any]]] = []

    async def request(self, method: str, path: str, *, body: dict[str, Any]) -> dict[str, Any]:
        self.requests.append((path, body))
        expires = self.clock.wall() + dt.timedelta(seconds=body["spec"]["expirationSeconds"])
        return {"status": {"token": f"token-{len(self.requests)}",
                           "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}}


@pytest.fixture
async def setup(tmp_path: Path):
    clock = ManualClock(1_000_000.0)
    api = TokenApi(clock)
    manager = VolumeManager(tmp_path / "agent", configmaps=lambda ns, n: None,
                            secrets=lambda ns, n: None,
                            tokens=ServiceAccountTokens(api, clock))  # type: ignore[arg-type]
    yield clock, api, manager
    for uid in manager.known_pods():
        await manager.cleanup(uid)


async def test_the_token_is_requested_bound_to_the_pod_and_renewed_at_80_percent(
    setup, tmp_path: Path,
) -> None:
    clock, api, manager = setup
    pod = make_pod([{"name": "kube-api-access-x", "projected": {"sources": [TOKEN_SOURCE]}}])
    pod["spec"]["serviceAccountName"] = "robot"
    await manager.prepare(pod)
    path, body = api.requests[0]
    assert path == "/api/v1/namespaces/default/serviceaccounts/robot/token"
    assert body["spec"]["boundObjectRef"] == {"apiVersion": "v1", "kind": "Pod",
                                              "name": "web", "uid": pod["metadata"]["uid"]}
    volume = vol_dir(tmp_path, "projected", "kube-api-access-x")
    assert (volume / "token").read_text() == "token-1"
    first = os.readlink(volume / "..data")

    clock.advance(0.8 * 3607 - 1)
    assert await manager.refresh(pod) is False
    assert len(api.requests) == 1
    clock.advance(1)
    assert await manager.refresh(pod) is True
    assert (volume / "token").read_text() == "token-2"
    assert os.readlink(volume / "..data") != first
    assert os.readlink(volume / "token") == "..data/token"


async def test_a_pod_gets_the_api_access_volume_and_its_account_defaulted() -> None:
    store = MemoryStore()
    pod: dict[str, Any] = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {
        "containers": [{"name": "a"}], "initContainers": [{"name": "i"}]}}
    await store.create("/registry/serviceaccounts/ns/default",
                       {"metadata": {"name": "default", "namespace": "ns"}})
    await ServiceAccountAdmission().admit(store, None, pod)
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "default"
    (volume,) = spec["volumes"]
    assert volume["name"].startswith("kube-api-access-") and len(volume["name"]) == 21
    assert volume["projected"]["sources"][0] == {
        "serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    for c in (*spec["containers"], *spec["initContainers"]):
        assert c["volumeMounts"] == [{"name": volume["name"], "readOnly": True,
                                      "mountPath": MOUNT_PATH}]


async def test_automount_false_or_a_missing_account_is_respected() -> None:
    store = MemoryStore()
    await store.create("/registry/serviceaccounts/ns/quiet",
                       {"metadata": {"name": "quiet"}, "automountServiceAccountToken": False})
    admission = ServiceAccountAdmission()
    quiet = {"metadata": {"name": "p", "namespace": "ns"},
             "spec": {"serviceAccountName": "quiet", "containers": [{"name": "a"}]}}
    await admission.admit(store, None, quiet)
    assert "volumes" not in quiet["spec"]
    missing = {"metadata": {"name": "p", "namespace": "ns"},
               "spec": {"serviceAccountName": "ghost", "containers": [{"name": "a"}]}}
    with pytest.raises(ApiError) as refused:
        await admission.admit(store, None, missing)
    assert refused.value.code == 403
    assert refused.value.message == ('pods "p" is forbidden: error looking up service account '
                                     'ns/ghost: serviceaccount "ghost" not found')


async def test_a_pod_created_just_before_its_namespaces_default_account_is_admitted() -> None:
    store = MemoryStore()
    admission = ServiceAccountAdmission(retry_interval=(0.01, 0.01))
    pod: dict[str, Any] = {"metadata": {"name": "p", "namespace": "ns"},
                           "spec": {"containers": [{"name": "a"}]}}

    async def account_made_later() -> None:
        await asyncio.sleep(0.03)
        await store.create("/registry/serviceaccounts/ns/default",
                           {"metadata": {"name": "default", "namespace": "ns"}})

    maker = asyncio.create_task(account_made_later())
    await admission.admit(store, None, pod)
    await maker
    assert pod["spec"]["serviceAccountName"] == "default" and pod["spec"]["volumes"]
    gone: dict[str, Any] = {"metadata": {"name": "q", "namespace": "empty"},
                            "spec": {"containers": [{"name": "a"}]}}
    with pytest.raises(ApiError) as refused:
        await admission.admit(store, None, gone)
    assert 'serviceaccount "default" not found' in refused.value.message


def test_containers_get_the_kubernetes_service_variables_and_may_override_them() -> None:
    service = {"metadata": {"name": "kubernetes"},
               "spec": {"clusterIP": "10.96.0.1",
                        "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}}
    pod = make_pod([])
    env = container_env(pod, {"name": "a", "env": [{"name": "KUBERNETES_SERVICE_PORT",
                                                      "value": "1"}]},
                        configmaps=lambda ns, n: None, secrets=lambda ns, n: None,
                        services=lambda ns, n: service if (ns, n) == ("default", "kubernetes")
                        else None)
    assert env == {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "1",
                   "KUBERNETES_SERVICE_PORT_HTTPS": "443",
                   "KUBERNETES_PORT": "tcp://10.96.0.1:443",
                   "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443",
                   "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
                   "KUBERNETES_PORT_443_TCP_PORT": "443",
                   "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1"}


async def test_a_pod_that_already_has_an_api_access_volume_gets_it_mounted_not_a_second_one(
        ) -> None:
    store = MemoryStore()
    await store.create("/registry/serviceaccounts/ns/default",
                       {"metadata": {"name": "default", "namespace": "ns"}})
    copied = {"name": "kube-api-access-abcde", "projected": {"sources": [TOKEN_SOURCE]}}
    pod: dict[str, Any] = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {
        "volumes": [copied], "containers": [{"name": "a"}]}}
    await ServiceAccountAdmission().admit(store, None, pod)
    assert pod["spec"]["volumes"] == [copied]
    assert pod["spec"]["containers"][0]["volumeMounts"] == [
        {"name": "kube-api-access-abcde", "readOnly": True, "mountPath": MOUNT_PATH}]
