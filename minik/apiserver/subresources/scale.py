"""The `scale` subresource: a workload's replicas as an autoscaling/v1 Scale.

Reading builds the Scale from the object: `spec.replicas`, `status.replicas`
and the workload's selector as a string. Writing (PUT, or a PATCH of any
type) changes that Scale and stores only its `spec.replicas` into the
object, through the main resource so that `generation` moves; a
resourceVersion in the Scale is the write's precondition.
"""

from __future__ import annotations

from typing import Any

from minik.api import errors
from minik.api.resources import ResourceType
from minik.api.selectors.labels import workload_selector
from minik.apiserver.routing import ResourceRequest
from minik.apiserver.storage import Mutation, ObjectStorage, WriteOptions
from minik.apiserver.validate import validate_body

SCALE_METADATA = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")


def scale_of(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The Scale of a workload object."""
    md = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: md[k] for k in SCALE_METADATA if k in md},
        "spec": {"replicas": obj.get("spec", {}).get("replicas", 0)},
        "status": {"replicas": obj.get("status", {}).get("replicas", 0),
                   "selector": str(workload_selector(rt.kind, obj))},
    }


async def read_scale(storage: ObjectStorage, target: ResourceRequest) -> dict[str, Any]:
    assert target.name is not None
    return scale_of(target.rt, await storage.get(target.rt, target.namespace, target.name))


async def write_scale(storage: ObjectStorage, target: ResourceRequest, change: Mutation,
                      options: WriteOptions) -> dict[str, Any]:
    """Apply `change` to the object's Scale and store its replicas; the Scale written."""
    rt = target.rt
    assert target.name is not None
    if rt.subresource("scale") is None:
        raise errors.path_not_found()

    def scaled(current: dict[str, Any]) -> dict[str, Any]:
        scale = change(scale_of(rt, current))
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

    main = WriteOptions(options.dry_run, options.field_validation, subresource=None)
    result = await storage.mutate(rt, target.namespace, target.name, scaled, main)
    return scale_of(rt, result.obj)
