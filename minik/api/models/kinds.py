"""Which model reads which kind: "apiVersion/Kind" -> model class."""

from __future__ import annotations

from minik.api.models import apps, autoscaling, batch, cluster, core, pod, service
from minik.api.models.base import K8sModel

MODELS: dict[str, type[K8sModel]] = {
    "v1/Pod": pod.Pod,
    "v1/Namespace": core.Namespace,
    "v1/Node": core.Node,
    "v1/ConfigMap": core.ConfigMap,
    "v1/Secret": core.Secret,
    "v1/Service": service.Service,
    "v1/Endpoints": core.Endpoints,
    "v1/Event": core.Event,
    "v1/ServiceAccount": core.ServiceAccount,
    "v1/PersistentVolume": core.PersistentVolume,
    "v1/PersistentVolumeClaim": core.PersistentVolumeClaim,
    "v1/ReplicationController": apps.ReplicationController,
    "v1/Binding": cluster.Binding,
    "v1/DeleteOptions": cluster.DeleteOptions,
    "apps/v1/Deployment": apps.Deployment,
    "apps/v1/ReplicaSet": apps.ReplicaSet,
    "apps/v1/StatefulSet": apps.StatefulSet,
    "apps/v1/DaemonSet": apps.DaemonSet,
    "apps/v1/ControllerRevision": apps.ControllerRevision,
    "batch/v1/Job": batch.Job,
    "batch/v1/CronJob": batch.CronJob,
    "discovery.k8s.io/v1/EndpointSlice": cluster.EndpointSlice,
    "storage.k8s.io/v1/StorageClass": cluster.StorageClass,
    "coordination.k8s.io/v1/Lease": cluster.Lease,
    "autoscaling/v2/HorizontalPodAutoscaler": autoscaling.HorizontalPodAutoscaler,
    "autoscaling/v1/Scale": cluster.Scale,
    "policy/v1/Eviction": cluster.Eviction,
}


def model_for(api_version: str, kind: str) -> type[K8sModel] | None:
    return MODELS.get(f"{api_version}/{kind}")
