"""Making a container's image present, per its pull policy.

`Never` only checks; `IfNotPresent` pulls when absent; `Always` pulls every
time (Kubernetes' default for `:latest` and untagged images, which is why
minik's images carry versioned tags). A failed pull leaves the container
waiting with `ErrImagePull`, then `ImagePullBackOff` while the per-pod,
per-image backoff (10 s doubling to 300 s, `agent.plan.container_backoff`)
runs; other pods are unaffected.

An image seen present is remembered for `PRESENT_TTL` seconds, and pods
starting together share one check, so fifty replicas cost one image
inspect, not fifty. A create that fails forgets the image (it may have
been removed behind minik's back), so the next attempt looks again.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from agent.events import EventSink
from agent.runtime import ImagePullFailed, Runtime, RuntimeFailure
from minik.api.meta import uid_of
from minik.api.objects import Container, Pod
from minik.machinery.backoff import Backoff

Waiting = tuple[str, str]
PRESENT_TTL = 60.0


class ImageManager:
    """Ensures images before containers are created; reports pulls as events."""

    def __init__(self, runtime: Runtime, events: EventSink, backoff: Backoff) -> None:
        self.runtime = runtime
        self.events = events
        self.backoff = backoff
        self.clock = backoff.clock
        self._failed_at: dict[str, dt.datetime] = {}
        self._present: dict[str, float] = {}
        self._checks: dict[str, asyncio.Lock] = {}

    async def ensure(self, pod: Pod, container: Container) -> Waiting | None:
        """None when the image is ready; else the waiting reason and message."""
        image = container["image"]
        policy = container.get("imagePullPolicy", "IfNotPresent")
        if policy == "Always":
            return await self._pull(pod, image)
        if await self._is_present(image):
            return None
        if policy == "IfNotPresent":
            return await self._pull(pod, image)
        message = f'Container image "{image}" is not present with pull policy of Never'
        self.events.record(pod, "Warning", "ErrImageNeverPull", message)
        return "ErrImageNeverPull", message

    async def _is_present(self, image: str) -> bool:
        async with self._checks.setdefault(image, asyncio.Lock()):
            seen = self._present.get(image)
            if seen is not None and self.clock.now() - seen < PRESENT_TTL:
                return True
            if await self.runtime.image(image) is None:
                self._present.pop(image, None)
                return False
            self._present[image] = self.clock.now()
            return True

    def invalidate(self, image: str) -> None:
        """Look at the engine again next time (a create with this image failed)."""
        self._present.pop(image, None)

    async def _pull(self, pod: Pod, image: str) -> Waiting | None:
        key = f"{uid_of(pod)}/{image}"
        if key in self._failed_at and self.backoff.remaining(key, self._failed_at[key]) > 0:
            message = f'Back-off pulling image "{image}"'
            self.events.record(pod, "Normal", "BackOff", message)
            return "ImagePullBackOff", message
        self.events.record(pod, "Normal", "Pulling", f'Pulling image "{image}"')
        started = self.clock.now()
        try:
            await self.runtime.pull(image)
        except (ImagePullFailed, RuntimeFailure) as e:
            self.backoff.next(key)
            self._failed_at[key] = self.clock.wall()
            message = f'Failed to pull image "{image}": {e}'
            self.events.record(pod, "Warning", "Failed", message)
            return "ErrImagePull", message
        self.backoff.reset(key)
        self._failed_at.pop(key, None)
        self._present[image] = self.clock.now()
        self.events.record(pod, "Normal", "Pulled",
                           f'Successfully pulled image "{image}" in '
                           f"{self.clock.now() - started:.3f}s")
        return None

    def forget(self, uid: str) -> None:
        self.backoff.forget_prefix(f"{uid}/")
        for key in [k for k in self._failed_at if k.startswith(f"{uid}/")]:
            del self._failed_at[key]
