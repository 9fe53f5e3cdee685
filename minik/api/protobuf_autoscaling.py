"""Field numbers of the autoscaling/v1 and v2 HorizontalPodAutoscaler protobuf messages.

What `kubectl autoscale` sends (1.32 and older: autoscaling/v1; 1.33:
autoscaling/v2), and what a client creating an HPA with the typed client
may: k8s.io/api `autoscaling/v1` and `autoscaling/v2` `generated.proto`.
Kept apart from `protobuf_schema` (same conventions) to keep each module
one concern.
"""

from __future__ import annotations

from minik.api.protobuf_schema import Schema, i, ignore, m, many, ptr, s

MESSAGES: dict[str, Schema] = {
    "autoscaling.CrossVersionObjectReference": {1: s("kind"), 2: s("name"), 3: s("apiVersion")},
    "autoscalingv1.HorizontalPodAutoscaler": {
        1: m("metadata", "meta.ObjectMeta"),
        2: m("spec", "autoscalingv1.HorizontalPodAutoscalerSpec"), 3: ignore("status"),
    },
    "autoscalingv1.HorizontalPodAutoscalerSpec": {
        1: m("scaleTargetRef", "autoscaling.CrossVersionObjectReference"),
        2: ptr(i("minReplicas")), 3: i("maxReplicas"),
        4: ptr(i("targetCPUUtilizationPercentage")),
    },
    "autoscaling.HorizontalPodAutoscaler": {
        1: m("metadata", "meta.ObjectMeta"),
        2: m("spec", "autoscaling.HorizontalPodAutoscalerSpec"), 3: ignore("status"),
    },
    "autoscaling.HorizontalPodAutoscalerSpec": {
        1: m("scaleTargetRef", "autoscaling.CrossVersionObjectReference"),
        2: ptr(i("minReplicas")), 3: i("maxReplicas"),
        4: many("metrics", "autoscaling.MetricSpec"),
        5: m("behavior", "autoscaling.HorizontalPodAutoscalerBehavior"),
    },
    "autoscaling.MetricSpec": {
        1: s("type"), 4: m("resource", "autoscaling.ResourceMetricSource"),
        7: m("containerResource", "autoscaling.ContainerResourceMetricSource"),
    },
    "autoscaling.ResourceMetricSource": {1: s("name"), 2: m("target", "autoscaling.MetricTarget")},
    "autoscaling.ContainerResourceMetricSource": {
        1: s("name"), 2: m("target", "autoscaling.MetricTarget"), 3: s("container"),
    },
    "autoscaling.MetricTarget": {
        1: s("type"), 2: m("value", "quantity"), 3: m("averageValue", "quantity"),
        4: ptr(i("averageUtilization")),
    },
    "autoscaling.HorizontalPodAutoscalerBehavior": {
        1: m("scaleUp", "autoscaling.HPAScalingRules"),
        2: m("scaleDown", "autoscaling.HPAScalingRules"),
    },
    "autoscaling.HPAScalingRules": {
        1: ptr(s("selectPolicy")), 2: many("policies", "autoscaling.HPAScalingPolicy"),
        3: ptr(i("stabilizationWindowSeconds")), 4: m("tolerance", "quantity"),
    },
    "autoscaling.HPAScalingPolicy": {1: s("type"), 2: i("value"), 3: i("periodSeconds")},
}

ROOTS: dict[tuple[str, str], str] = {
    ("autoscaling/v1", "HorizontalPodAutoscaler"): "autoscalingv1.HorizontalPodAutoscaler",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "autoscaling.HorizontalPodAutoscaler",
}
