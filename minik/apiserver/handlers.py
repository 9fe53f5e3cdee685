"""HTTP handlers for resource paths: get, list, create, update, patch, delete.

Each handler parses the request into a `ResourceRequest`, decodes the body,
calls `ObjectStorage`, and renders the answer. What belongs to one
subresource or patch type lives in its own module, which the handlers
dispatch to: `subresources.binding`, `subresources.scale`, `patching` (what
each patch type changes), `apply` (server-side apply) and `proxy` (log,
exec and attach, served by the node agent). Watches stream from `watch`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from minik.api import errors
from minik.api.decode import decode_body, require_object
from minik.apiserver import proxy, responses
from minik.apiserver.apply import server_side_apply
from minik.apiserver.lifecycle import DeleteOptions
from minik.apiserver.listing import Selection, list_page
from minik.apiserver.listoptions import ListOptions
from minik.apiserver.patching import APPLY_PATCH, PATCH_TYPES, guarded, patcher
from minik.apiserver.routing import ResourceRequest, resource_request
from minik.apiserver.storage import Mutation, ObjectStorage, WriteOptions, WriteResult
from minik.apiserver.subresources.binding import bind
from minik.apiserver.subresources.scale import read_scale, write_scale
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
    return _answer(request, target, obj)


def _answer(request: web.Request, target: ResourceRequest, obj: dict[str, Any], *,
            status: int = 200, warnings: list[str] | None = None) -> web.Response:
    """The object in the version the path names (a table row is printed from the stored one)."""
    shown = obj if responses.wants_table(request) else target.to_served(obj)
    return responses.object_response(request, target.rt, shown, status=status,
                                     warnings=warnings)


async def list_objects(request: web.Request, target: ResourceRequest) -> web.StreamResponse:
    query = _query(request)
    selection = Selection.parse(target.rt, target.namespace, query)
    options = ListOptions.parse(query)
    storage = _storage(request)
    if options.watch:
        return await serve_watch(request, storage, target, selection, options)
    page = await list_page(storage, target.rt, selection, options)
    if responses.wants_table(request):
        body = responses.table(request, target.rt, page.items, page.resource_version,
                               page.continue_token)
    else:
        body = responses.list_body(target.served_rt, [target.to_served(o) for o in page.items],
                                   page.resource_version, page.continue_token)
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
        if target.rt.kind == "Pod" and target.subresource == "eviction":
            raise _unsupported_subresource(target)
        raise errors.method_not_allowed(f"POST is not supported on {target.verb_target}")
    obj = target.to_stored(require_object(await _body(request)))
    result = await _storage(request).create(
        target.rt, target.namespace, obj, _write_options(request, target)
    )
    return _answer(request, target, result.obj, status=201, warnings=result.warnings)


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
    result = await storage.update(target.rt, target.namespace, target.name,
                                  target.to_stored(obj), options)
    return _written(request, target, result)


def _written(request: web.Request, target: ResourceRequest, result: WriteResult) -> web.Response:
    status = 201 if result.created else 200
    return _answer(request, target, result.obj, status=status, warnings=result.warnings)


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
    change = _in_served_version(guarded(patcher(content_type, body, target.rt.kind), target),
                                target)
    storage = _storage(request)
    if target.subresource == "scale":
        return responses.json_response(await write_scale(storage, target, change, options))
    if target.subresource not in (None, "status"):
        raise _unsupported_subresource(target)
    if content_type == APPLY_PATCH:
        result = await server_side_apply(storage, target,
                                         target.to_stored(require_object(body)), options)
    else:
        result = await storage.mutate(target.rt, target.namespace, target.name, change, options)
    return _written(request, target, result)


def _in_served_version(change: Mutation, target: ResourceRequest) -> Mutation:
    """A patch of a converted version applies to the object as that version shows it."""
    if target.served is None:
        return change
    return lambda current: target.to_stored(change(target.to_served(current)))


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
    answer = responses.deleted(target.rt, target.to_served(deletion.obj), deletion.removed)
    return responses.json_response(answer, status=_delete_status(deletion.removed, options))


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
        responses.list_body(target.served_rt, [target.to_served(o) for o in deleted],
                            page.resource_version, None)
    )
