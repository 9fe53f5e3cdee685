"""Every namespace gets a `default` ServiceAccount, seen with the real kubectl."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.e2e.cluster import Cluster, eventually

pytestmark = pytest.mark.e2e


def default_uid(cluster: Cluster, namespace: str) -> str | None:
    result = cluster.kubectl("get", "sa", "default", "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout)["metadata"]["uid"] if result.returncode == 0 else None


def test_a_new_namespace_gets_a_default_service_account_that_comes_back(cluster: Cluster):
    namespace = f"sa-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "ns", namespace)
    first = eventually(lambda: default_uid(cluster, namespace), what="the default account")
    listed = cluster.kubectl("get", "sa", "-n", namespace).stdout.split()
    assert listed[:3] == ["NAME", "SECRETS", "AGE"] and listed[3] == "default"

    cluster.kubectl("delete", "sa", "default", "-n", namespace)
    again = eventually(lambda: (uid := default_uid(cluster, namespace)) != first and uid,
                       what="the default account, recreated")
    assert again != first
