"""`minik autoscale` builds kubectl's HPA; `minik describe hpa` prints kubectl's description."""

from __future__ import annotations

from minik.api.resources import HORIZONTALPODAUTOSCALERS
from minik.cli.autoscale import autoscaler_for
from minik.cli.describe import Described, PrefixWriter
from minik.cli.describe_autoscaling import describe_horizontal_pod_autoscaler


def test_autoscale_makes_the_v2_hpa_kubectl_makes():
    assert autoscaler_for("apps/v1", "Deployment", "web", hpa_name="web", minimum=1, maximum=5,
                          cpu_percent=50) == {
        "kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v2",
        "metadata": {"name": "web", "creationTimestamp": None},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                    "name": "web"},
                 "minReplicas": 1, "maxReplicas": 5,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                     "type": "Utilization", "averageUtilization": 50}}}]},
        "status": {"currentMetrics": None, "desiredReplicas": 0}}


def test_without_min_or_cpu_percent_the_server_defaults_them():
    spec = autoscaler_for("apps/v1", "StatefulSet", "db", hpa_name="db", minimum=-1, maximum=3,
                          cpu_percent=-1)["spec"]
    assert "minReplicas" not in spec and "metrics" not in spec


HPA = {
    "metadata": {"name": "web", "namespace": "default",
                 "creationTimestamp": "2026-01-02T03:04:05Z"},
    "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
             "minReplicas": 1, "maxReplicas": 4,
             "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                 "type": "Utilization", "averageUtilization": 50}}}],
             "behavior": {"scaleDown": {"stabilizationWindowSeconds": 15, "selectPolicy": "Max",
                                        "policies": [{"type": "Percent", "value": 100,
                                                      "periodSeconds": 15}]}}},
    "status": {"currentReplicas": 2, "desiredReplicas": 3,
               "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {
                   "averageUtilization": 87, "averageValue": "87m"}}}],
               "conditions": [{"type": "AbleToScale", "status": "True",
                               "reason": "SucceededRescale",
                               "message": "the HPA controller was able to update the target "
                                          "scale to 3"}]},
}


def test_describe_shows_metrics_behavior_replicas_and_conditions_as_kubectl():
    w = PrefixWriter()
    describe_horizontal_pod_autoscaler(Described(None, HORIZONTALPODAUTOSCALERS, HPA, events=[]),
                                       w)
    lines = [line.rstrip() for line in w.render().splitlines()]
    assert "  resource cpu on pods  (as a percentage of request):  87% (87m) / 50%" in lines
    assert lines[0].startswith("Name:") and lines[0].endswith(" web")
    assert "Behavior:" in lines
    assert "  Scale Down:" in lines
    assert "    Stabilization Window: 15 seconds" in lines
    assert any(line.startswith("      - Type: Percent") and line.endswith("Period: 15 seconds")
               for line in lines)
    assert any(line.startswith("Deployment pods:") and line.endswith("2 current / 3 desired")
               for line in lines)
    assert any(line.split() == ["AbleToScale", "True", "SucceededRescale", "the", "HPA",
                                "controller", "was", "able", "to", "update", "the", "target",
                                "scale", "to", "3"] for line in lines)
