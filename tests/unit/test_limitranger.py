"""LimitRanger: a namespace's LimitRanges default and bound pods' and claims' resources."""

from __future__ import annotations

import pytest

from minik.api.errors import ApiError
from minik.api.resources import LIMITRANGES, PERSISTENTVOLUMECLAIMS, PODS
from minik.apiserver.storage import ObjectStorage, WriteOptions
from tests.unit.apitest import bootstrapped


def limit_range(*items: dict) -> dict:
    return {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits"},
            "spec": {"limits": list(items)}}


def pod(name: str = "x", **resources: dict) -> dict:
    container = {"name": "c", "image": "minik/busybox:1.35"}
    if resources:
        container["resources"] = resources
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [container]}}


async def with_range(*items: dict) -> ObjectStorage:
    storage = await bootstrapped()
    await storage.create(LIMITRANGES, "default", limit_range(*items), WriteOptions())
    return storage


async def test_a_container_item_is_stored_with_kubernetes_defaults():
    storage = await with_range({"type": "Container", "max": {"cpu": "1"},
                                "min": {"memory": "16Mi"}})
    stored = await storage.get(LIMITRANGES, "default", "limits")
    assert stored["spec"]["limits"][0]["default"] == {"cpu": "1"}
    assert stored["spec"]["limits"][0]["defaultRequest"] == {"cpu": "1", "memory": "16Mi"}


async def test_defaults_fill_the_requests_and_limits_a_container_leaves_unset():
    storage = await with_range({"type": "Container", "default": {"cpu": "500m", "memory": "128Mi"},
                                "defaultRequest": {"cpu": "100m", "memory": "64Mi"}})
    created = (await storage.create(PODS, "default", pod(limits={"memory": "256Mi"}),
                                    WriteOptions())).obj
    resources = created["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "100m", "memory": "256Mi"},
                         "limits": {"cpu": "500m", "memory": "256Mi"}}
    assert created["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu request for container c; cpu limit for container c")


@pytest.mark.parametrize(("item", "resources", "message"), [
    ({"type": "Container", "max": {"cpu": "500m"}}, {"limits": {"cpu": "1"}},
     "maximum cpu usage per Container is 500m, but limit is 1"),
    ({"type": "Container", "min": {"memory": "64Mi"}, "defaultRequest": {"memory": "64Mi"}},
     {"requests": {"memory": "32Mi"}},
     "minimum memory usage per Container is 64Mi, but request is 32Mi"),
    ({"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}},
     {"requests": {"cpu": "100m"}, "limits": {"cpu": "1"}},
     "cpu max limit to request ratio per Container is 2, but provided ratio is 10.000000"),
    ({"type": "Pod", "max": {"cpu": "500m"}}, {"limits": {"cpu": "600m"}},
     "maximum cpu usage per Pod is 500m, but limit is 600m"),
])
async def test_a_pod_beyond_a_bound_is_refused_with_kubernetes_message(item, resources, message):
    storage = await with_range(item)
    with pytest.raises(ApiError) as refused:
        await storage.create(PODS, "default", pod(**resources), WriteOptions())
    assert refused.value.code == 403
    assert refused.value.message == f'pods "x" is forbidden: {message}'


async def test_several_violations_are_listed_in_brackets():
    storage = await with_range({"type": "Container", "max": {"cpu": "500m", "memory": "64Mi"}})
    with pytest.raises(ApiError) as refused:
        await storage.create(PODS, "default", pod(limits={"cpu": "1", "memory": "1Gi"}),
                             WriteOptions())
    assert refused.value.message == (
        'pods "x" is forbidden: [maximum cpu usage per Container is 500m, but limit is 1, '
        "maximum memory usage per Container is 64Mi, but limit is 1Gi]")


async def test_a_claim_beyond_the_storage_bound_is_refused():
    storage = await with_range({"type": "PersistentVolumeClaim", "max": {"storage": "1Gi"}})
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "big"},
             "spec": {"accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "2Gi"}}}}
    with pytest.raises(ApiError) as refused:
        await storage.create(PERSISTENTVOLUMECLAIMS, "default", claim, WriteOptions())
    assert refused.value.message == (
        'persistentvolumeclaims "big" is forbidden: maximum storage usage per '
        "PersistentVolumeClaim is 1Gi, but request is 2Gi")


async def test_an_invalid_range_is_422():
    storage = await bootstrapped()
    with pytest.raises(ApiError) as refused:
        await storage.create(LIMITRANGES, "default", limit_range(
            {"type": "Container", "min": {"cpu": "1"}, "max": {"cpu": "500m"}}), WriteOptions())
    assert refused.value.code == 422
    assert refused.value.details["causes"][0]["field"] == "spec.limits[0].min[cpu]"
