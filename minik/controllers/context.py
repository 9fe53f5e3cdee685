"""What every controller is built with, and what the manager asks of one.

`ControllerContext` (the client, the shared informers, the controller's own
event recorder, metrics and the process's clock), the `Controller` protocol
(`name` and `run()`) and `ControllerFactory` live here rather than in
`manager`: the controllers need them, and the manager needs the
controllers, so keeping them in the manager would make the two import each
other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from minik.client.aio import AsyncClient
from minik.machinery.clock import Clock, LoopClock
from minik.machinery.events import EventRecorder
from minik.machinery.metrics import ControllerMetrics
from minik.machinery.shared_informers import SharedInformers


@dataclass(frozen=True, slots=True)
class ControllerContext:
    """What every controller is built with."""

    client: AsyncClient
    informers: SharedInformers
    events: EventRecorder
    metrics: ControllerMetrics
    clock: Clock = field(default_factory=LoopClock)
    restart_backoff: float = 10.0
    """The base of back-off delays (`minik up --restart-backoff`): the Job pod-recreation one."""


class Controller(Protocol):
    name: str

    async def run(self) -> None: ...


ControllerFactory = Callable[[ControllerContext], Controller]
