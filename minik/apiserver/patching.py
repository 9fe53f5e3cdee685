"""What a PATCH does: the change each patch type makes to the object it is applied to.

A change gets the current object and returns the desired one;
`ObjectStorage.mutate` runs it on the object it read, and again after a
concurrent write. `guarded` holds what every patch shares: a patch that
fails is 422, one that leaves no object is 400, and the patched object must
keep its name and namespace (Kubernetes' `checkName`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from minik.api import errors
from minik.api.decode import require_object
from minik.api.patch.json_patch import apply_json_patch, apply_merge_patch
from minik.api.patch.json_values import PatchError
from minik.api.patch.strategic import apply_strategic_merge_patch
from minik.apiserver.routing import ResourceRequest
from minik.apiserver.storage import Mutation

APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    APPLY_PATCH,
)

Patch = Callable[[dict[str, Any]], object]
"""A patch applied to an object: what it leaves need not be an object (`guarded` checks)."""


def patcher(content_type: str, body: object, kind: str) -> Patch:
    """The patch a body of `content_type` makes (apply patches merge strategically)."""
    if content_type == "application/json-patch+json":
        return lambda current: apply_json_patch(current, body)
    fields = require_object(body)
    if content_type == "application/merge-patch+json":
        return lambda current: apply_merge_patch(current, fields)
    return lambda current: apply_strategic_merge_patch(current, fields, kind=kind)


def guarded(change: Patch, target: ResourceRequest) -> Mutation:
    """`change` as a mutation: its failures are API errors and it leaves the same object."""
    def run(current: dict[str, Any]) -> dict[str, Any]:
        try:
            result = change(current)
        except PatchError as e:
            raise errors.ApiError(422, "Invalid", str(e)) from e
        if not isinstance(result, dict):
            raise errors.bad_request("the patch must leave an object")
        check_identity(result, target)
        return result

    return run


def check_identity(obj: dict[str, Any], target: ResourceRequest) -> None:
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
