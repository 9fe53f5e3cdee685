"""Server-side apply, as minik serves it: an upsert that merges like a strategic patch.

minik keeps no managed fields, so applying creates the object when it is
absent and otherwise merges the applied fields into it as a strategic merge
patch would. The body is a plain object: a strategic-merge directive in it
is an unknown field, 400 as Kubernetes words it. Two appliers may both find
the object absent; the one whose create loses merges into the winner's
object instead of failing with AlreadyExists.
"""

from __future__ import annotations

import copy
from typing import Any

from minik.api import errors
from minik.api.patch.strategic import apply_strategic_merge_patch, find_directive
from minik.apiserver.patching import check_identity, guarded
from minik.apiserver.routing import ResourceRequest
from minik.apiserver.storage import ObjectStorage, WriteOptions, WriteResult


async def server_side_apply(
    storage: ObjectStorage, target: ResourceRequest, body: dict[str, Any], options: WriteOptions
) -> WriteResult:
    """Create the object `body` describes, or merge `body` into the one there is."""
    assert target.name is not None
    name, rt = target.name, target.rt
    if (directive := find_directive(body)) is not None:
        raise errors.bad_request(
            f"failed to create typed patch object ({rt.api_version}, Kind={rt.kind}): "
            f"{directive}: field not declared in schema")
    given = body.get("metadata")
    if isinstance(given, dict) and given.get("name") not in (None, name):
        check_identity(body, target)
    merge = guarded(lambda cur: apply_strategic_merge_patch(cur, body, kind=rt.kind),
                    target)
    try:
        return await storage.mutate(rt, target.namespace, name, merge, options)
    except errors.ApiError as e:
        if e.code != 404:
            raise
    obj = copy.deepcopy(body)
    obj.setdefault("metadata", {}).setdefault("name", name)
    try:
        return await storage.create(rt, target.namespace, obj, options)
    except errors.ApiError as exists:
        if exists.reason != "AlreadyExists":
            raise
    return await storage.mutate(rt, target.namespace, name, merge, options)
