"""The controller manager: every controller of the server, on shared informers.

Each controller is built with a `ControllerContext` (`context`: the client,
the shared informers, metrics, the process's clock, and its own event
recorder named like Kubernetes' `<name>-controller`) and exposes `name` and
`run()`. The manager builds the ones not switched off by
`--disable-controllers`, starts the informers they asked for, and runs each
controller supervised.
"""

from __future__ import annotations

import logging

from minik.client.aio import AsyncClient
from minik.controllers.context import ControllerContext, ControllerFactory
from minik.controllers.cronjob.controller import CronJobController
from minik.controllers.daemonset.controller import DaemonSetController
from minik.controllers.deployment.controller import DeploymentController
from minik.controllers.endpoints.endpoints import EndpointsController
from minik.controllers.endpoints.endpointslice import EndpointSliceController
from minik.controllers.endpoints.mirroring import EndpointSliceMirroringController
from minik.controllers.ephemeral import EphemeralVolumeController
from minik.controllers.eventttl import EventTTLController
from minik.controllers.garbagecollector import GarbageCollector
from minik.controllers.job.controller import JobController
from minik.controllers.namespace import NamespaceController
from minik.controllers.podautoscaler.controller import HorizontalController
from minik.controllers.replicaset import replica_set_controller, replication_manager
from minik.controllers.serviceaccount import ServiceAccountsController
from minik.controllers.statefulset.controller import StatefulSetController
from minik.controllers.ttlafterfinished import TTLAfterFinishedController
from minik.controllers.volume.binder import PersistentVolumeController
from minik.controllers.volume.protection import PVCProtectionController, PVProtectionController
from minik.machinery.clock import Clock, LoopClock
from minik.machinery.events import EventRecorder
from minik.machinery.metrics import ControllerMetrics
from minik.machinery.shared_informers import SharedInformers
from minik.machinery.supervisor import Supervisor

log = logging.getLogger(__name__)

EVENT_SOURCES = {"replicationcontroller": "replication-controller",
                 "persistentvolume-binder": "persistentvolume-controller",
                 "horizontalpodautoscaling": "horizontal-pod-autoscaler"}
"""Event source components that Kubernetes does not name `<controller>-controller`."""


def default_factories() -> dict[str, ControllerFactory]:
    """Controller name -> constructor, in the order they start."""
    return {
        "replicaset": replica_set_controller,
        "replicationcontroller": replication_manager,
        "deployment": DeploymentController,
        "statefulset": StatefulSetController,
        "job": JobController,
        "cronjob": CronJobController,
        "ttl-after-finished": TTLAfterFinishedController,
        "daemonset": DaemonSetController,
        "endpoint": EndpointsController,
        "endpointslice": EndpointSliceController,
        "endpointslicemirroring": EndpointSliceMirroringController,
        "garbagecollector": GarbageCollector,
        "namespace": NamespaceController,
        "serviceaccount": ServiceAccountsController,
        "eventttl": EventTTLController,
        "ephemeral-volume": EphemeralVolumeController,
        "persistentvolume-binder": PersistentVolumeController,
        "pvc-protection": PVCProtectionController,
        "pv-protection": PVProtectionController,
        "horizontalpodautoscaling": HorizontalController,
    }


def _event_source(name: str) -> str:
    return EVENT_SOURCES.get(name, f"{name}-controller")


class ControllerManager:
    """Builds, starts and supervises the enabled controllers."""

    def __init__(self, client: AsyncClient, *, metrics: ControllerMetrics,
                 disabled: frozenset[str] = frozenset(),
                 factories: dict[str, ControllerFactory] | None = None,
                 clock: Clock | None = None, restart_backoff: float = 10.0,
                 informers: SharedInformers | None = None) -> None:
        clock = clock or LoopClock()
        self.informers = informers or SharedInformers(client, clock=clock)
        chosen = factories if factories is not None else default_factories()
        self.contexts = {
            name: ControllerContext(client=client, informers=self.informers,
                                    events=EventRecorder(client, _event_source(name),
                                                         clock=clock),
                                    metrics=metrics, clock=clock,
                                    restart_backoff=restart_backoff)
            for name in chosen if name not in disabled
        }
        self.controllers = [chosen[name](ctx) for name, ctx in self.contexts.items()]

    def start(self, supervisor: Supervisor) -> None:
        for name, ctx in self.contexts.items():
            supervisor.start(f"events:{name}-controller", ctx.events.run)
        self.informers.start(supervisor)
        for controller in self.controllers:
            supervisor.start(f"controller:{controller.name}", controller.run)
        log.info("controllers running: %s", ", ".join(c.name for c in self.controllers))
