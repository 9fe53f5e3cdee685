"""What the agent reads of a pod's spec, with Kubernetes' defaults for what is unset.

Each field is read here once, so that the plan, the status, the sync and
the hooks agree on it: the restart policy (`Always` when unset), the
termination grace period (30 s), the pod's init and app containers, and
the kubelet's name for a pod in messages (`format.Pod`). The metadata is
read with `minik.api.meta`'s accessors.
"""

from __future__ import annotations

from minik.api.meta import name_of, namespace_of, uid_of
from minik.api.objects import Container, Pod

DEFAULT_GRACE = 30.0


def restart_policy(pod: Pod) -> str:
    return pod.get("spec", {}).get("restartPolicy", "Always")


def grace_period(pod: Pod) -> float:
    """`terminationGracePeriodSeconds`, in seconds."""
    grace = pod.get("spec", {}).get("terminationGracePeriodSeconds")
    return DEFAULT_GRACE if grace is None else float(grace)


def app_containers(pod: Pod) -> list[Container]:
    return pod.get("spec", {}).get("containers") or []


def init_containers(pod: Pod) -> list[Container]:
    return pod.get("spec", {}).get("initContainers") or []


def ephemeral_containers(pod: Pod) -> list[Container]:
    """What `kubectl debug` added: started once in the running pod, never restarted."""
    return pod.get("spec", {}).get("ephemeralContainers") or []


def init_and_app_containers(pod: Pod) -> list[Container]:
    """The containers the agent runs: init containers first (ephemeral ones are not run)."""
    return [*init_containers(pod), *app_containers(pod)]


def container_named(pod: Pod, name: str, *, init: bool, ephemeral: bool = False) -> Container:
    """The init, app or ephemeral container called `name` (it must be there)."""
    containers = (ephemeral_containers(pod) if ephemeral
                  else init_containers(pod) if init else app_containers(pod))
    return next(c for c in containers if c["name"] == name)


def pod_ref(pod: Pod) -> str:
    """The kubelet's `format.Pod`: `name_namespace(uid)`."""
    return f"{name_of(pod)}_{namespace_of(pod) or 'default'}({uid_of(pod)})"
