"""What both pod-driven endpoint controllers share: which Services select a pod.

Kubernetes' `endpointutil.GetPodServiceMemberships` and the pod handlers
built on it: a pod change concerns every Service of its namespace whose
selector matches the pod before or after the change, so that a pod whose
labels stop matching leaves the Service it was in.
"""

from __future__ import annotations

from collections.abc import Callable

from minik.api.meta import labels_of, namespace_of, resource_version_of
from minik.api.objects import Pod, Service
from minik.api.selectors.labels import LabelSelector
from minik.machinery.informer import Informer, key_of

EXTERNAL_NAME = "ExternalName"


def service_selector(service: Service) -> LabelSelector | None:
    """The Service's selector; None when it has none (its endpoints are the user's)."""
    selector = (service.get("spec") or {}).get("selector")
    if not selector:
        return None
    return LabelSelector.from_spec({"matchLabels": selector})


def is_external_name(service: Service) -> bool:
    return (service.get("spec") or {}).get("type") == EXTERNAL_NAME


def selected_pods(service: Service, pods: Informer[Pod]) -> list[Pod]:
    selector = service_selector(service)
    if selector is None:
        return []
    return [p for p in pods.indexer.list(namespace_of(service) or "")
            if selector.matches(labels_of(p))]


class PodServiceMap:
    """Pod handlers that enqueue the keys of the Services selecting a pod."""

    def __init__(self, services: Informer[Service], enqueue: Callable[[str], None]) -> None:
        self.services = services
        self.enqueue = enqueue

    def keys_for(self, pod: Pod) -> set[str]:
        labels = labels_of(pod)
        return {key_of(s) for s in self.services.indexer.list(namespace_of(pod) or "")
                if (selector := service_selector(s)) is not None and selector.matches(labels)}

    def added(self, pod: Pod) -> None:
        for key in self.keys_for(pod):
            self.enqueue(key)

    def updated(self, old: Pod, new: Pod) -> None:
        if resource_version_of(old) == resource_version_of(new):
            return
        keys = self.keys_for(new)
        if labels_of(old) != labels_of(new):
            keys |= self.keys_for(old)
        for key in keys:
            self.enqueue(key)

    def deleted(self, pod: Pod) -> None:
        self.added(pod)
