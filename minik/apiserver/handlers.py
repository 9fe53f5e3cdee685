"""HTTP handlers for resource paths: get, list, create, update, patch, delete.

Each handler parses the request into a `ResourceRequest`, decodes the body,
calls `ObjectStorage`, and renders the answer. What belongs to one
subresource or patch type lives in its own module, which the handlers
dispatch to: `subresources.binding`, `subresources.eviction`,
`subresources.scale`, `patching` (what each patch type changes), `apply`
(server-side apply) and `proxy` (log, exec and attach, served by the node
agent). Watches stream from `watch`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from minik.api import errors
from minik.api.decode import decode_body, require_object
from minik.api.resources import ResourceType
from minik.apiserver import proxy, responses
from minik.apiserver.apply import server_side_apply
from minik.apiserver.authn import SIGNER_KEY
from minik.apiserver.lifecycle import DeleteOptions
from minik.apiserver.listing import Selection, list_page
from minik.apiserver.listoptions import ListOptions
from minik.apiserver.patching import APPLY_PATCH, PATCH_TYPES, guarded, patcher
from minik.apiserver.routing import ResourceRequest, resource_request
from minik.apiserver.storage import ObjectStorage, WriteOptions, WriteResult
from minik.apiserver.subresources.binding import bind
from minik.apiserver.subresources.eviction import evict
from minik.apiserver.subresources.scale import read_scale, write_scale
from minik.apiserver.subresources.token import request_token
from minik.apiserver.watch import serve_watch

STORAGE_KEY = web.AppKey("storage", ObjectStorage)


def _query(request: web.Request) -> dict[str, str]:
    return {k: request.query.getone(k) for k in request.query}


def _write_options(request: web.Request, target: ResourceRequest) -> WriteOptions:
    query = request.query
    dry = query.getall("dryRun", [])
    if any(d not in ("All", "") for d in dry):
        raise errors.bad_request(f"dryRun: Unsupported value: {dry}: supported values: \"All\"")
    validation = query.get("fieldValidation", "Strict") or "Strict"
    if validation not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(
            f'fieldValidation: Unsupported value: "{validation}": supported values: '
            '"Ignore", "Strict", "Warn"'
        )
    return WriteOptions(dry_run="All" in dry, field_validation=validation,
                        subresource=target.subresource)


async def _body(request: web.Request) -> object:
    data = await request.read()
    return decode_body(data, request.headers.get("Content-Type", "application/json"))


def _storage(request: web.Request) -> ObjectStorage:
    return request.app[STORAGE_KEY]


def _check_verb(target: ResourceRequest, verb: str) -> None:
    """A subresource answers only the verbs discovery lists for it (`finalize`: update)."""
    sub = target.rt.subresource(target.subresource) if target.subresource else None
    if sub is not None and verb not in sub.verbs:
        raise errors.method_not_served()


def _unsupported_subresource(target: ResourceRequest) -> errors.ApiError:
    return errors.ApiError(
        400, "BadRequest",
        f"{target.rt.plural}/{target.subresource} is not served by this minik yet: it needs the "
        "node agent",
    )


async def get_object(request: web.Request) -> web.StreamResponse:
    target = resource_request(request)
    storage = _storage(request)
    if target.name is None:
        return await list_objects(request, target)
    if (proxied := proxy.handler(request.method, target)) is not None:
        return await proxied(request, storage, target)
    _check_verb(target, "get")
    if target.subresource not in (None, "status", "scale"):
        raise _unsupported_subresource(target)
    if target.subresource == "scale":
        return responses.json_response(await read_scale(storage, target))
    obj = await storage.get(target.rt, target.namespace, target.name)
    return responses.object_response(request, target.rt, obj)


async def list_objects(request: web.Request, target: ResourceRequest) -> web.StreamResponse:
    query = _query(request)
    selection = Selection.parse(target.rt, target.namespace, query)
    options = ListOptions.parse(query)
    storage = _storage(request)
    if options.watch:
        return await serve_watch(request, storage, target.rt, selection, options)
    page = await list_page(storage, target.rt, selection, options)
    if responses.wants_table(request):
        body = responses.table(request, target.rt, page.items, page.resource_version,
                               page.continue_token)
    else:
        body = responses.list_body(target.rt, page.items, page.resource_version,
                                   page.continue_token)
    return responses.json_response(body)


async def create_object(request: web.Request) -> web.StreamResponse:
    target = resource_request(request)
    if target.name is not None:
        if (proxied := proxy.handler(request.method, target)) is not None:
            return await proxied(request, _storage(request), target)
        if target.rt.kind == "Pod" and target.subresource == "binding":
            binding = require_object(await _body(request))
            bound = await bind(_storage(request), target, binding,
                               _write_options(request, target))
            return responses.json_response(bound, status=201)
        if target.rt.kind == "ServiceAccount" and target.subresource == "token":
            body = require_object(await _body(request))
            token = await request_token(_storage(request), request.app[SIGNER_KEY], target, body)
            return responses.json_response(token, status=201)
        if target.rt.kind == "Pod" and target.subresource == "eviction":
            evicted = await evict(_storage(request), target, require_object(await _body(request)),
                                  _write_options(request, target))
            return responses.json_response(evicted, status=201)
        raise errors.method_not_allowed(f"POST is not supported on {target.verb_target}")
    obj = require_object(await _body(request))
    result = await _storage(request).create(
        target.rt, target.namespace, obj, _write_options(request, target)
    )
    return responses.object_response(request, target.rt, result.obj, status=201,
                                     warnings=result.warnings)


async def update_object(request: web.Request) -> web.StreamResponse:
    target = resource_request(request)
    if target.name is None:
        raise errors.method_not_allowed(f"PUT is not supported on {target.rt.plural}")
    _check_verb(target, "update")
    obj = require_object(await _body(request))
    options = _write_options(request, target)
    storage = _storage(request)
    if target.subresource == "scale":
        scale = await write_scale(storage, target, lambda _scale: obj, options)
        return responses.json_response(scale)
    if target.subresource not in (None, "status", "finalize"):
        raise _unsupported_subresource(target)
    result = await storage.update(target.rt, target.namespace, target.name, obj, options)
    return _written(request, target.rt, result)


def _written(request: web.Request, rt: ResourceType, result: WriteResult) -> web.Response:
    status = 201 if result.created else 200
    return responses.object_response(request, rt, result.obj, status=status,
                                     warnings=result.warnings)


async def patch_object(request: web.Request) -> web.StreamResponse:
    target = resource_request(request)
    if target.name is None:
        raise errors.method_not_allowed(f"PATCH is not supported on {target.rt.plural}")
    _check_verb(target, "patch")
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
    if content_type not in PATCH_TYPES:
        raise errors.unsupported_media_type(
            f"the body of the request was in an unknown format - accepted media types "
            f"include: {', '.join(PATCH_TYPES)}"
        )
    body = await _body(request)
    options = _write_options(request, target)
    change = guarded(patcher(content_type, body, target.rt.kind), target)
    storage = _storage(request)
    if target.subresource == "scale":
        return responses.json_response(await write_scale(storage, target, change, options))
    if target.subresource not in (None, "status"):
        raise _unsupported_subresource(target)
    if content_type == APPLY_PATCH:
        result = await server_side_apply(storage, target, require_object(body), options)
    else:
        result = await storage.mutate(target.rt, target.namespace, target.name, change, options)
    return _written(request, target.rt, result)


async def delete_object(request: web.Request) -> web.StreamResponse:
    target = resource_request(request)
    data = await request.read()
    body = require_object(decode_body(data, "application/json")) if data.strip() else {}
    options = DeleteOptions.parse(body, _query(request))
    storage = _storage(request)
    if target.name is None:
        return await _delete_collection(request, target, options)
    if target.subresource is not None:
        raise errors.method_not_allowed(f"DELETE is not supported on {target.verb_target}")
    deletion = await storage.delete(target.rt, target.namespace, target.name, options)
    return responses.json_response(responses.deleted(target.rt, deletion.obj, deletion.removed),
                                   status=_delete_status(deletion.removed, options))


def _delete_status(removed: bool, options: DeleteOptions) -> int:
    """200, or 202 Accepted for an object not gone yet whose delete set orphanDependents to
    false: only then, as Kubernetes' delete handler says, since clients expect 200 for a
    graceful or finalizer-held delete."""
    return 202 if not removed and options.orphan_dependents is False else 200


async def _delete_collection(
    request: web.Request, target: ResourceRequest, options: DeleteOptions
) -> web.Response:
    storage = _storage(request)
    query = _query(request)
    selection = Selection.parse(target.rt, target.namespace, query)
    page = await list_page(storage, target.rt, selection, ListOptions())
    deleted: list[dict[str, Any]] = []
    for obj in page.items:
        md = obj["metadata"]
        try:
            deleted.append((await storage.delete(target.rt, md.get("namespace"), md["name"],
                                                 options)).obj)
        except errors.ApiError as e:
            if e.code != 404:
                raise
    return responses.json_response(
        responses.list_body(target.rt, deleted, page.resource_version, None)
    )
