"""The root CA publisher keeps `kube-root-ca.crt` with the CA in every active namespace."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from minik.api.resources import CONFIGMAPS, NAMESPACES
from minik.controllers.rootcacert import ROOT_CA_CONFIGMAP, RootCACertPublisher
from tests.unit.apitest import poll, start_api
from tests.unit.test_garbagecollector import Cluster

CA = "-----BEGIN CERTIFICATE-----\nminik\n-----END CERTIFICATE-----\n"


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    env = Cluster(await start_api())
    env.start(lambda ctx: RootCACertPublisher(ctx, ca_pem=CA.encode()))
    yield env
    await env.close()


async def published(cluster: Cluster, namespace: str, *, unlike: str = "") -> dict:
    return await poll(lambda: cluster.client.get(CONFIGMAPS, namespace, ROOT_CA_CONFIGMAP),
                      lambda cm: cm["metadata"]["uid"] != unlike
                      and cm.get("data") == {"ca.crt": CA})


async def test_every_namespace_gets_the_ca_and_gets_it_back(cluster: Cluster) -> None:
    await published(cluster, "default")
    await cluster.client.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": "team"}})
    first = await published(cluster, "team")
    assert "kubernetes.io/description" in first["metadata"]["annotations"]
    await cluster.client.patch(CONFIGMAPS, "team", ROOT_CA_CONFIGMAP,
                               {"data": {"ca.crt": "tampered"}})
    await published(cluster, "team")
    await cluster.client.delete(CONFIGMAPS, "team", ROOT_CA_CONFIGMAP)
    await published(cluster, "team", unlike=first["metadata"]["uid"])
