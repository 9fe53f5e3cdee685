"""HTTP handlers for resource paths: get, list, create, update, patch, delete.

Each handler parses the request into a `ResourceRequest`, decodes the body,
calls `ObjectStorage`, and renders the answer. Watches stream from
`watch.py`; the `scale` subresource is translated here to and from the
autoscaling/v1 Scale kind.
"""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from minik.api import errors, meta, patch
from minik.api.decode import decode_body, require_object
from minik.api.resources import ResourceType
from minik.api.selectors import workload_selector
from minik.apiserver import proxy, responses
from minik.apiserver.lifecycle import DeleteOptions
from minik.apiserver.listing import Selection, list_page
from minik.apiserver.listoptions import ListOptions
from minik.apiserver.routing import ResourceRequest, resource_request
from minik.apiserver.storage import ObjectStorage, WriteOptions, WriteResult
from minik.apiserver.watch import serve_watch

STORAGE_KEY = web.AppKey("storage", ObjectStorage)
PATCH_TYPES = (
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


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


async def _body(request: web.Request) -> Any:
    data = await request.read()
    return decode_body(data, request.headers.get("Content-Type", "application/json"))


def _storage(request: web.Request) -> ObjectStorage:
    return request.app[STORAGE_KEY]


def _unsupported_subresource(target: ResourceRequest) -> errors.ApiError:
    return errors.ApiError(
        400, "BadRequest",
        f"{target.rt.plural}/{target.subresource} is not served by this minik yet: it needs the "
        "node agent",
    )


def _scale_of(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    md = obj["metadata"]
    selector = workload_selector(rt.kind, obj)
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                        "creationTimestamp") if k in md},
        "spec": {"replicas": obj.get("spec", {}).get("replicas", 0)},
        "status": {"replicas": obj.get("status", {}).get("replicas", 0),
                   "selector": str(selector)},
    }


async def get_object(request: web.Request) -> web.StreamResponse:
    target = resource_request(request)
    storage = _storage(request)
    if target.name is None:
        return await list_objects(request, target)
    if (proxied := proxy.handler(request.method, target)) is not None:
        return await proxied(request, storage, target)
    if target.subresource not in (None, "status", "scale"):
        raise _unsupported_subresource(target)
    obj = await storage.get(target.rt, target.namespace, target.name)
    if target.subresource == "scale":
        return responses.json_response(_scale_of(target.rt, obj))
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
            return await _bind(request, target)
        if target.rt.kind == "Pod" and target.subresource == "eviction":
            raise _unsupported_subresource(target)
        raise errors.method_not_allowed(f"POST is not supported on {target.verb_target}")
    obj = require_object(await _body(request))
    result = await _storage(request).create(
        target.rt, target.namespace, obj, _write_options(request, target)
    )
    return responses.object_response(request, target.rt, result.obj, status=201,
                                     warnings=result.warnings)


async def _bind(request: web.Request, target: ResourceRequest) -> web.StreamResponse:
    """pods/binding: set spec.nodeName once, as the scheduler does; a bound pod is 409."""
    from minik.api.validation import validate_body  # the models take a while to build

    binding = require_object(await _body(request))
    options = _write_options(request, target)
    validate_body("v1", "Binding", binding, field_validation=options.field_validation)
    node = (binding.get("target") or {}).get("name")
    if not node or (binding.get("target") or {}).get("kind", "Node") != "Node":
        raise errors.invalid("Binding", target.name or "", [errors.Cause(
            "target.name", "Required value: a node name to bind to", "FieldValueRequired")])
    uid = (binding.get("metadata") or {}).get("uid")

    def bind(pod: dict[str, Any]) -> dict[str, Any]:
        if uid and pod["metadata"].get("uid") != uid:
            raise errors.conflict("pods", target.name or "", why="the pod's UID has changed")
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.conflict("pods", target.name or "", why="pod is being deleted")
        if pod.get("spec", {}).get("nodeName"):
            raise errors.conflict("pods", target.name or "",
                                  why=f"pod is already assigned to node "
                                      f"\"{pod['spec']['nodeName']}\"")
        pod["spec"]["nodeName"] = node
        conditions = [c for c in pod.setdefault("status", {}).get("conditions", [])
                      if c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                           "lastTransitionTime": meta.format_time(meta.now())})
        pod["status"]["conditions"] = conditions
        return pod

    assert target.name is not None
    await _storage(request).mutate(target.rt, target.namespace, target.name, bind, options)
    return responses.json_response(
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
        status=201,
    )


async def update_object(request: web.Request) -> web.StreamResponse:
    target = resource_request(request)
    if target.name is None:
        raise errors.method_not_allowed(f"PUT is not supported on {target.rt.plural}")
    obj = require_object(await _body(request))
    options = _write_options(request, target)
    storage = _storage(request)
    if target.subresource == "scale":
        return await _write_scale(request, target, lambda _scale: obj, options)
    if target.subresource not in (None, "status"):
        raise _unsupported_subresource(target)
    result = await storage.update(target.rt, target.namespace, target.name, obj, options)
    return _written(request, target.rt, result)


def _written(request: web.Request, rt: ResourceType, result: WriteResult) -> web.Response:
    status = 201 if result.created else 200
    return responses.object_response(request, rt, result.obj, status=status,
                                     warnings=result.warnings)


def _patcher(content_type: str, body: Any, kind: str) -> Any:
    if content_type == "application/json-patch+json":
        return lambda current: patch.apply_json_patch(current, body)
    body = require_object(body)
    if content_type == "application/merge-patch+json":
        return lambda current: patch.apply_merge_patch(current, body)
    return lambda current: patch.apply_strategic_merge_patch(current, body, kind=kind)


def _guarded(change: Any, target: ResourceRequest) -> Any:
    def run(current: dict[str, Any]) -> dict[str, Any]:
        try:
            result = change(current)
        except patch.PatchError as e:
            raise errors.ApiError(422, "Invalid", str(e)) from e
        if not isinstance(result, dict):
            raise errors.bad_request("the patch must leave an object")
        _check_identity(result, target)
        return result

    return run


def _check_identity(obj: dict[str, Any], target: ResourceRequest) -> None:
    """`checkName` and the namespace rule of Kubernetes' patch handler, on the patched object.

    A patch may not rename an object or move it; nor may it leave it without a
    name, which is how Kubernetes refuses `$patch: delete` or `replace` on
    `metadata` or the whole object (and `"metadata": null`): they would wipe
    the labels, annotations and finalizers along with the name.
    """
    md = obj.get("metadata")
    name = md.get("name") if isinstance(md, dict) else None
    if not name:
        raise errors.bad_request(f"the name of the object ({target.name} based on URL) was "
                                 "undeterminable: name must be provided")
    if name != target.name:
        raise errors.bad_request(f"the name of the object ({name}) does not match the name on "
                                 f"the URL ({target.name})")
    namespace = md.get("namespace") if isinstance(md, dict) else None
    if namespace and target.namespace and namespace != target.namespace:
        raise errors.bad_request("the namespace of the provided object does not match the "
                                 "namespace sent on the request")


async def patch_object(request: web.Request) -> web.StreamResponse:
    target = resource_request(request)
    if target.name is None:
        raise errors.method_not_allowed(f"PATCH is not supported on {target.rt.plural}")
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
    if content_type not in PATCH_TYPES:
        raise errors.unsupported_media_type(
            f"the body of the request was in an unknown format - accepted media types "
            f"include: {', '.join(PATCH_TYPES)}"
        )
    body = await _body(request)
    options = _write_options(request, target)
    change = _guarded(_patcher(content_type, body, target.rt.kind), target)
    if target.subresource == "scale":
        return await _write_scale(request, target, change, options)
    if target.subresource not in (None, "status"):
        raise _unsupported_subresource(target)
    storage = _storage(request)
    if content_type == "application/apply-patch+yaml":
        return await _server_side_apply(request, target, require_object(body), options)
    result = await storage.mutate(target.rt, target.namespace, target.name, change, options)
    return _written(request, target.rt, result)


async def _server_side_apply(
    request: web.Request, target: ResourceRequest, body: dict[str, Any], options: WriteOptions
) -> web.Response:
    """Upsert: create when absent, else merge the applied fields like a strategic patch.

    Two appliers may both find the object absent; the one whose create loses
    merges into the winner's object instead of failing with AlreadyExists.
    """
    storage = _storage(request)
    assert target.name is not None
    name = target.name
    if (directive := patch.find_directive(body)) is not None:
        raise errors.bad_request(
            f"failed to create typed patch object ({target.rt.api_version}, "
            f"Kind={target.rt.kind}): {directive}: field not declared in schema")
    given = body.get("metadata")
    if isinstance(given, dict) and given.get("name") not in (None, name):
        _check_identity(body, target)

    async def merge() -> WriteResult:
        return await storage.mutate(
            target.rt, target.namespace, name,
            _guarded(lambda cur: patch.apply_strategic_merge_patch(cur, body, kind=target.rt.kind),
                     target),
            options,
        )

    try:
        result = await merge()
    except errors.ApiError as e:
        if e.code != 404:
            raise
        obj = copy.deepcopy(body)
        obj.setdefault("metadata", {}).setdefault("name", name)
        try:
            result = await storage.create(target.rt, target.namespace, obj, options)
        except errors.ApiError as exists:
            if exists.reason != "AlreadyExists":
                raise
            result = await merge()
    return _written(request, target.rt, result)


async def _write_scale(
    request: web.Request, target: ResourceRequest, change: Any, options: WriteOptions
) -> web.Response:
    rt = target.rt
    if rt.subresource("scale") is None:
        raise errors.path_not_found()

    def scaled(current: dict[str, Any]) -> dict[str, Any]:
        from minik.api.validation import validate_body  # the models take a while to build

        scale = change(_scale_of(rt, current))
        validate_body("autoscaling/v1", "Scale", scale, field_validation=options.field_validation)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid("Scale", target.name or "", [errors.Cause(
                "spec.replicas", f"Invalid value: {replicas!r}: must be greater than or equal "
                "to 0")], group="autoscaling")
        asked = scale.get("metadata", {}).get("resourceVersion")
        current.setdefault("spec", {})["replicas"] = replicas
        if asked:
            current["metadata"]["resourceVersion"] = asked
        return current

    options = WriteOptions(options.dry_run, options.field_validation, subresource=None)
    assert target.name is not None
    result = await _storage(request).mutate(rt, target.namespace, target.name, scaled, options)
    return responses.json_response(_scale_of(rt, result.obj))


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
    return responses.json_response(responses.deleted(target.rt, deletion.obj, deletion.removed))


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
