"""pods/binding: set a pod's node, once, as the scheduler asks.

A Binding names the node in `target`; binding writes `spec.nodeName` and the
PodScheduled condition in one write, as Kubernetes' `BindingREST` does. A
pod that is already bound, is being deleted, or is not the pod whose uid the
binding names is 409; the answer is a `metav1.Status` with code 201.
"""

from __future__ import annotations

from typing import Any

from minik.api import errors, meta
from minik.apiserver.routing import ResourceRequest
from minik.apiserver.storage import ObjectStorage, WriteOptions
from minik.apiserver.validate import validate_body

BOUND = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


async def bind(storage: ObjectStorage, target: ResourceRequest, binding: dict[str, Any],
               options: WriteOptions) -> dict[str, Any]:
    """Bind the pod `target` names to the Binding's node; the Status to answer with."""
    assert target.name is not None
    name = target.name
    validate_body("v1", "Binding", binding, field_validation=options.field_validation)
    node = (binding.get("target") or {}).get("name")
    if not node or (binding.get("target") or {}).get("kind", "Node") != "Node":
        raise errors.invalid("Binding", name, [errors.Cause(
            "target.name", "Required value: a node name to bind to", "FieldValueRequired")])
    uid = (binding.get("metadata") or {}).get("uid")

    def assign(pod: dict[str, Any]) -> dict[str, Any]:
        if uid and pod["metadata"].get("uid") != uid:
            raise errors.conflict("pods", name, why="the pod's UID has changed")
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.conflict("pods", name, why="pod is being deleted")
        if pod.get("spec", {}).get("nodeName"):
            raise errors.conflict("pods", name, why=f"pod is already assigned to node "
                                                    f"\"{pod['spec']['nodeName']}\"")
        pod["spec"]["nodeName"] = node
        conditions = [c for c in pod.setdefault("status", {}).get("conditions", [])
                      if c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                           "lastTransitionTime": meta.format_time(meta.now())})
        pod["status"]["conditions"] = conditions
        return pod

    await storage.mutate(target.rt, target.namespace, name, assign, options)
    return dict(BOUND)
