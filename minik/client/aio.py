"""The asynchronous client of the minik API, for everything that runs in an event loop.

The node agent, the scheduler and the controllers talk to the server only
through this client, over the same Kubernetes REST paths kubectl uses. One
`aiohttp.ClientSession` per client (created on first use, inside the loop)
carries the bearer token and trusts only the kubeconfig's CA; plain `http://`
servers are accepted for in-process tests.

Foreign errors are mapped here and nowhere else: an error answer becomes
`ApiError` (parsed from its `metav1.Status` body), a 410 inside a watch
stream becomes `WatchExpired`, and a server that cannot be reached becomes
`ApiUnavailable`, which names the server and the request.

The verbs take a typed object or a decoded one (`AnyObject`) and answer in
the shape their resource type names: `get(PODS, ...)` is a `Pod`, `list(PODS)`
an `ObjectList[Pod]`, a watch of it yields `Pod`s (`minik.api.resources`);
a type found by name in the registry answers `JsonObject`. `request` answers
whatever JSON a path serves (`Any`); each verb says what a resource path
serves, and that is the one place an answer takes a shape: the API server
validated what it stored. A delete answers the object or a `Status`, so it
stays `JsonObject`.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncGenerator
from typing import Any, Literal

import aiohttp

from minik.api.errors import ApiError
from minik.api.objects import AnyObject, JsonObject, ObjectList, ObjectT
from minik.api.resources import ResourceType
from minik.client.paths import collection_path, object_path
from minik.kubeconfig import ClusterAccess

PatchType = Literal["merge", "strategic", "json"]
PatchBody = JsonObject | list[JsonObject]
"""A merge or strategic merge patch (an object), or a JSON patch (a list of operations)."""
PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}
DEFAULT_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
WATCH_GRACE = 30.0
READ_CHUNK = 65536


class ApiUnavailable(aiohttp.ClientConnectionError, ConnectionError):
    """The API server could not be reached, or the connection broke mid-request."""


class WatchExpired(ApiError):
    """The watch's resourceVersion is older than the server keeps: list again."""


def _watch_error(status: JsonObject) -> ApiError:
    code = int(status.get("code") or 500)
    if code == 410:
        return WatchExpired.from_status(status, code=code)
    return ApiError.from_status(status, code=code)


def _delete_options(
    propagation_policy: str | None, grace_period_seconds: int | None,
    uid: str | None, resource_version: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if propagation_policy is not None:
        body["propagationPolicy"] = propagation_policy
    if grace_period_seconds is not None:
        body["gracePeriodSeconds"] = grace_period_seconds
    preconditions = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version))
                     if v is not None}
    if preconditions:
        body["preconditions"] = preconditions
    return body


def _selectors(label_selector: str | None, field_selector: str | None) -> dict[str, str]:
    params: dict[str, str] = {}
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    return params


class AsyncClient:
    """Requests against one API server over a single pooled aiohttp session."""

    def __init__(
        self, access: ClusterAccess, *, user_agent: str = "minik",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not access.server.startswith(("https://", "http://")):
            raise ValueError(f"not an http(s) server URL: {access.server!r}")
        self.access = access
        self.user_agent = user_agent
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _ssl(self) -> ssl.SSLContext | bool:
        if not self.access.server.startswith("https://"):
            return True
        if self.access.insecure:
            return False
        context = ssl.create_default_context()
        if self.access.ca_pem:
            context.load_verify_locations(cadata=self.access.ca_pem.decode())
        return context

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
            if self.access.token:
                headers["Authorization"] = f"Bearer {self.access.token}"
            self._session = aiohttp.ClientSession(
                base_url=self.access.server,
                headers=headers,
                connector=aiohttp.TCPConnector(ssl=self._ssl()),
            )
        return self._session

    def _unavailable(self, method: str, path: str, e: BaseException) -> ApiUnavailable:
        why = str(e) or type(e).__name__
        return ApiUnavailable(f"{method} {self.access.server}{path}: {why}")

    async def request(
        self, method: str, path: str, *, params: dict[str, str] | None = None,
        body: object = None, content_type: str = "application/json",
    ) -> Any:
        """One request; the decoded JSON (or text) answer. Raises ApiError, ApiUnavailable.

        The answer's shape is whatever `path` serves, so it is `Any` here; the
        verbs below say what a resource path answers.
        """
        data = None
        headers: dict[str, str] = {}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        timeout = aiohttp.ClientTimeout(total=self.timeout, connect=CONNECT_TIMEOUT)
        try:
            async with self._http().request(
                method, path, params=params, data=data, headers=headers, timeout=timeout
            ) as response:
                payload = await response.read()
        except (aiohttp.ClientError, TimeoutError) as e:
            raise self._unavailable(method, path, e) from e
        if response.status >= 400:
            raise ApiError.from_response(response.status, payload, response.reason or "")
        if "json" in response.headers.get("Content-Type", ""):
            return json.loads(payload) if payload else None
        return payload.decode(errors="replace")

    async def get(
        self, rt: ResourceType[ObjectT], namespace: str | None, name: str, *,
        subresource: str | None = None,
    ) -> ObjectT:
        """The object (for `subresource`, `status` say, the object as that path answers)."""
        obj: ObjectT = await self.request("GET", object_path(rt, namespace, name, subresource))
        return obj

    async def list(
        self, rt: ResourceType[ObjectT], namespace: str | None = None, *,
        label_selector: str | None = None, field_selector: str | None = None,
    ) -> ObjectList[ObjectT]:
        params = _selectors(label_selector, field_selector)
        path = collection_path(rt, namespace)
        listed: ObjectList[ObjectT] = await self.request("GET", path, params=params or None)
        return listed

    async def create(
        self, rt: ResourceType[ObjectT], namespace: str | None, obj: AnyObject
    ) -> ObjectT:
        created: ObjectT = await self.request("POST", collection_path(rt, namespace), body=obj)
        return created

    async def replace(
        self, rt: ResourceType[ObjectT], namespace: str | None, name: str, obj: AnyObject, *,
        subresource: str | None = None,
    ) -> ObjectT:
        path = object_path(rt, namespace, name, subresource)
        replaced: ObjectT = await self.request("PUT", path, body=obj)
        return replaced

    async def patch(
        self, rt: ResourceType[ObjectT], namespace: str | None, name: str, patch: PatchBody, *,
        patch_type: PatchType = "merge", subresource: str | None = None,
    ) -> ObjectT:
        patched: ObjectT = await self.request(
            "PATCH", object_path(rt, namespace, name, subresource), body=patch,
            content_type=PATCH_CONTENT_TYPES[patch_type],
        )
        return patched

    async def delete(
        self, rt: ResourceType, namespace: str | None, name: str, *,
        propagation_policy: str | None = None, grace_period_seconds: int | None = None,
        uid: str | None = None, resource_version: str | None = None,
    ) -> JsonObject:
        """Delete with a DeleteOptions body; uid/resource_version become preconditions."""
        body = _delete_options(propagation_policy, grace_period_seconds, uid, resource_version)
        deleted: JsonObject = await self.request("DELETE", object_path(rt, namespace, name),
                                                 body=body)
        return deleted

    async def watch(
        self, rt: ResourceType[ObjectT], namespace: str | None = None, *,
        resource_version: str, label_selector: str | None = None,
        field_selector: str | None = None, timeout_seconds: int | None = None,
        bookmarks: bool = True,
    ) -> AsyncGenerator[tuple[str, ObjectT], None]:
        """Yield (type, object) events after `resource_version` until the server ends the stream.

        Raises WatchExpired when the version is too old, ApiError for other ERROR
        events, ApiUnavailable when the connection fails or breaks.
        """
        params = {"watch": "true", "resourceVersion": resource_version,
                  **_selectors(label_selector, field_selector)}
        if timeout_seconds is not None:
            params["timeoutSeconds"] = str(timeout_seconds)
        if bookmarks:
            params["allowWatchBookmarks"] = "true"
        total = None if timeout_seconds is None else timeout_seconds + WATCH_GRACE
        async for line in self.lines(collection_path(rt, namespace), params=params, total=total):
            event = json.loads(line)
            kind = str(event.get("type"))
            if kind == "ERROR":
                raise _watch_error(event.get("object") or {})
            obj: ObjectT = event.get("object", {})
            yield kind, obj

    async def lines(
        self, path: str, *, params: dict[str, str] | None = None, total: float | None = None
    ) -> AsyncGenerator[bytes, None]:
        """Yield the non-blank lines of a streaming answer (a watch: one event each)."""
        buffer = b""
        async for chunk in self._chunks(path, params, total):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.strip():
                    yield line
        if buffer.strip():
            yield buffer

    async def stream(
        self, path: str, *, params: dict[str, str] | None = None
    ) -> AsyncGenerator[bytes, None]:
        """Yield the raw body of a streaming answer (`log?follow=true`) chunk by chunk."""
        async for chunk in self._chunks(path, params, None):
            yield chunk

    async def _chunks(
        self, path: str, params: dict[str, str] | None, total: float | None
    ) -> AsyncGenerator[bytes, None]:
        timeout = aiohttp.ClientTimeout(total=total, connect=CONNECT_TIMEOUT)
        try:
            async with self._http().get(path, params=params, timeout=timeout) as response:
                if response.status >= 400:
                    payload = await response.read()
                    raise ApiError.from_response(response.status, payload, response.reason or "")
                while chunk := await response.content.readany():
                    yield chunk
        except (aiohttp.ClientError, TimeoutError) as e:
            raise self._unavailable("GET", path, e) from e
