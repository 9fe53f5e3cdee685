"""Carrying out a `SlicePlan` through the API, remembering each write in the tracker.

Deletes go first (a slice emptied by the plan frees its endpoints), then
updates, then creates. An update or delete that finds the slice gone has
nothing left to do; any other failure is raised, and the work queue retries
the Service with backoff after its cache has caught up.
"""

from __future__ import annotations

from minik.api.errors import ApiError
from minik.api.meta import name_of, resource_version_of
from minik.api.objects import EndpointSlice
from minik.api.resources import ENDPOINTSLICES
from minik.client.aio import AsyncClient
from minik.controllers.endpoints.slices import SlicePlan
from minik.controllers.endpoints.tracker import SliceTracker


class SliceWriter:
    def __init__(self, client: AsyncClient, tracker: SliceTracker) -> None:
        self.client = client
        self.tracker = tracker

    async def apply(self, service_key: str, namespace: str, plan: SlicePlan) -> None:
        for slice_ in plan.delete:
            await self._delete(service_key, namespace, slice_)
        for slice_ in plan.update:
            try:
                written = await self.client.replace(ENDPOINTSLICES, namespace, name_of(slice_),
                                                    slice_)
            except ApiError as e:
                if e.code != 404:
                    raise
                continue
            self.tracker.wrote(service_key, written)
        for slice_ in plan.create:
            self.tracker.wrote(service_key,
                               await self.client.create(ENDPOINTSLICES, namespace, slice_))

    async def _delete(self, service_key: str, namespace: str, slice_: EndpointSlice) -> None:
        try:
            await self.client.delete(ENDPOINTSLICES, namespace, name_of(slice_),
                                     resource_version=resource_version_of(slice_) or None)
        except ApiError as e:
            if e.code != 404:
                raise
        self.tracker.deleted(service_key, slice_)
