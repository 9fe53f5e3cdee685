"""The HPA API: served as autoscaling/v1 and v2 (one object, converted as Kubernetes converts
it), defaulted, and validated with 422s that name the field."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from minik.api.conversion import CONDITIONS_ANNOTATION, hpa_v1_to_v2, hpa_v2_to_v1
from minik.api.errors import ApiError
from minik.api.resources import HORIZONTALPODAUTOSCALERS, HORIZONTALPODAUTOSCALERS_V1
from tests.unit.apitest import Api, start_api

V1 = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers"


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    started = await start_api()
    yield started
    await started.close()


def v1_hpa(name: str = "web", **spec) -> dict:
    return {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": name}, "maxReplicas": 5, **spec}}


async def test_a_v1_hpa_is_read_in_v2_with_its_cpu_target_as_a_metric(api: Api):
    created = await api.client.request("POST", V1, body=v1_hpa(targetCPUUtilizationPercentage=50))
    assert created["apiVersion"] == "autoscaling/v1"
    assert created["spec"] == {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                                  "name": "web"},
                               "minReplicas": 1, "maxReplicas": 5,
                               "targetCPUUtilizationPercentage": 50}
    v2 = await api.client.get(HORIZONTALPODAUTOSCALERS, "default", "web")
    assert v2["apiVersion"] == "autoscaling/v2"
    assert v2["spec"]["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 50}}}]
    assert "annotations" not in v2["metadata"]


async def test_a_v2_status_shows_in_v1_as_current_cpu_utilization_and_annotations(api: Api):
    await api.client.request("POST", V1, body=v1_hpa(targetCPUUtilizationPercentage=50))
    v2 = await api.client.get(HORIZONTALPODAUTOSCALERS, "default", "web")
    condition = {"type": "AbleToScale", "status": "True", "reason": "SucceededGetScale",
                 "message": "ok", "lastTransitionTime": "2024-01-01T00:00:00Z"}
    v2["status"] = {"currentReplicas": 2, "desiredReplicas": 3, "conditions": [condition],
                    "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {
                        "averageUtilization": 87, "averageValue": "87m"}}}]}
    await api.client.replace(HORIZONTALPODAUTOSCALERS, "default", "web", v2,
                             subresource="status")
    v1 = await api.client.request("GET", f"{V1}/web")
    assert v1["status"] == {"currentReplicas": 2, "desiredReplicas": 3,
                            "currentCPUUtilizationPercentage": 87}
    assert json.loads(v1["metadata"]["annotations"][CONDITIONS_ANNOTATION]) == [condition]
    listed = await api.client.request("GET", V1)
    assert listed["apiVersion"] == "autoscaling/v1"
    assert listed["items"][0]["spec"]["targetCPUUtilizationPercentage"] == 50


async def test_a_v1_patch_changes_the_one_object(api: Api):
    await api.client.request("POST", V1, body=v1_hpa(targetCPUUtilizationPercentage=50))
    patched = await api.client.request(
        "PATCH", f"{V1}/web", body={"spec": {"targetCPUUtilizationPercentage": 70}},
        content_type="application/merge-patch+json")
    assert patched["spec"]["targetCPUUtilizationPercentage"] == 70
    v2 = await api.client.get(HORIZONTALPODAUTOSCALERS, "default", "web")
    assert v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70


async def test_v2_fields_v1_cannot_hold_survive_a_v1_round_trip(api: Api):
    await api.client.create(HORIZONTALPODAUTOSCALERS, "default", {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"}, "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 4, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 15}},
            "metrics": [{"type": "Resource", "resource": {"name": "memory", "target": {
                "type": "AverageValue", "averageValue": "100Mi"}}}]}})
    v1 = await api.client.request("GET", f"{V1}/web")
    assert "targetCPUUtilizationPercentage" not in v1["spec"]
    await api.client.request("PUT", f"{V1}/web", body=v1)
    v2 = await api.client.get(HORIZONTALPODAUTOSCALERS, "default", "web")
    assert v2["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 15
    assert v2["spec"]["metrics"][0]["resource"]["name"] == "memory"
    assert "annotations" not in v2["metadata"]


async def test_discovery_serves_both_versions_with_v2_preferred(api: Api):
    group = await api.client.request("GET", "/apis/autoscaling")
    assert [v["version"] for v in group["versions"]] == ["v2", "v1"]
    assert group["preferredVersion"]["version"] == "v2"
    resources = await api.client.request("GET", "/apis/autoscaling/v1")
    assert "horizontalpodautoscalers" in {r["name"] for r in resources["resources"]}


async def test_a_v1_watch_sends_v1_objects(api: Api):
    await api.client.request("POST", V1, body=v1_hpa(targetCPUUtilizationPercentage=50))
    events = api.client.watch(HORIZONTALPODAUTOSCALERS_V1, "default", resource_version="0",
                              timeout_seconds=1)
    kind, obj = await anext(events)
    await events.aclose()
    assert (kind, obj["apiVersion"], obj["spec"]["targetCPUUtilizationPercentage"]) == (
        "ADDED", "autoscaling/v1", 50)


def test_conversion_round_trips_a_v2_object():
    v2 = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
          "metadata": {"name": "a", "annotations": {"team": "x"}},
          "spec": {"maxReplicas": 3, "minReplicas": 1, "metrics": [
              {"type": "Resource", "resource": {"name": "cpu", "target": {
                  "type": "Utilization", "averageUtilization": 60}}},
              {"type": "Resource", "resource": {"name": "memory", "target": {
                  "type": "Utilization", "averageUtilization": 70}}}]}}
    assert hpa_v1_to_v2(hpa_v2_to_v1(v2)) == v2



def hpa(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": "web"}, "maxReplicas": 5, **spec}}


def cpu(**target: Any) -> list[dict[str, Any]]:
    return [{"type": "Resource", "resource": {"name": "cpu", "target": target}}]


@pytest.mark.parametrize(("spec", "field", "message"), [
    ({"minReplicas": 0}, "spec.minReplicas",
     "Invalid value: 0: must be greater than or equal to 1"),
    ({"minReplicas": 6}, "spec.maxReplicas",
     "Invalid value: 5: must be greater than or equal to `minReplicas`"),
    ({"metrics": cpu(type="Utilization")}, "spec.metrics[0].resource.target.averageUtilization",
     "Required value: must set either a target raw value or a target utilization"),
    ({"metrics": cpu(type="Utilization", averageUtilization=0)},
     "spec.metrics[0].resource.target.averageUtilization",
     "Invalid value: 0: must be greater than 0"),
    ({"metrics": cpu(type="Percent", averageUtilization=50)},
     "spec.metrics[0].resource.target.type",
     'Invalid value: "Percent": must be either Utilization, Value, or AverageValue'),
    ({"metrics": cpu(type="AverageValue", averageValue="100m", averageUtilization=5)},
     "spec.metrics[0].resource.target.averageValue",
     "Forbidden: may not set both a target raw value and a target utilization"),
    ({"metrics": [{"type": "Resource"}]}, "spec.metrics[0].resource",
     "Required value: must populate information for the given metric source"),
    ({"metrics": [{"type": "Cpu"}]}, "spec.metrics[0].type",
     'Unsupported value: "Cpu": supported values: "ContainerResource", "External", "Object", '
     '"Pods", "Resource"'),
    ({"behavior": {"scaleDown": {"stabilizationWindowSeconds": 4000}}},
     "spec.behavior.scaleDown.stabilizationWindowSeconds",
     "Invalid value: 4000: must be less than or equal to 3600"),
    ({"behavior": {"scaleUp": {"selectPolicy": "Most"}}}, "spec.behavior.scaleUp.selectPolicy",
     'Unsupported value: "Most": supported values: "Disabled", "Max", "Min"'),
    ({"behavior": {"scaleUp": {"policies": []}}}, "spec.behavior.scaleUp.policies",
     "Required value: must specify at least one Policy"),
    ({"behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}}},
     "spec.behavior.scaleUp.policies[0].value", "Invalid value: 0: must be greater than zero"),
    ({"behavior": {"scaleUp": {"policies": [
        {"type": "Pods", "value": 1, "periodSeconds": 3600}]}}},
     "spec.behavior.scaleUp.policies[0].periodSeconds",
     "Invalid value: 3600: must be less than or equal to 1800"),
])
async def test_an_invalid_spec_is_refused_naming_the_field(api: Api, spec, field, message):
    with pytest.raises(ApiError) as refused:
        await api.client.create(HORIZONTALPODAUTOSCALERS, "default", hpa(**spec))
    assert refused.value.code == 422
    causes = refused.value.status().get("details", {}).get("causes", [])
    assert {"reason": causes[0]["reason"], "message": message, "field": field} in causes


async def test_a_behavior_gets_kubernetes_default_rules(api: Api):
    created = await api.client.create(HORIZONTALPODAUTOSCALERS, "default", hpa(
        behavior={"scaleDown": {"stabilizationWindowSeconds": 15}}))
    assert created["spec"]["minReplicas"] == 1
    assert created["spec"]["behavior"] == {
        "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15}]},
        "scaleDown": {"stabilizationWindowSeconds": 15, "selectPolicy": "Max", "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 15}]}}
