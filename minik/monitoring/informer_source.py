"""The shared informers as the monitoring endpoints read them.

An `InformerSource` asks the process's shared informers for every kind
kube-state-metrics reports (`kube_state.RESOURCES`), so the controller
manager starts them with its own; a scrape then renders from their caches.
"""

from __future__ import annotations

from collections.abc import Sequence

from minik.api.objects import ObjectT
from minik.api.resources import ResourceType
from minik.machinery.shared_informers import SharedInformers
from minik.monitoring.kube_state import RESOURCES, KubeStateMetrics


class InformerSource:
    """The cached objects of the shared informers, and kube-state-metrics' series of them."""

    def __init__(self, informers: SharedInformers) -> None:
        self.informers = informers
        self.watched = [informers.get(rt) for rt in RESOURCES]
        self.metrics = KubeStateMetrics(self)

    def objects(self, rt: ResourceType[ObjectT]) -> Sequence[ObjectT]:
        return self.informers.get(rt).indexer.list()

    @property
    def synced(self) -> bool:
        return all(informer.has_synced for informer in self.watched)

    def kube_state(self) -> bytes:
        return self.metrics.render()
