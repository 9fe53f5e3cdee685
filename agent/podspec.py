"""What the agent reads of a pod's spec, with Kubernetes' defaults for what is unset.

Each field is read here once, so that the plan, the status, the sync and
the hooks agree on it: the restart policy (`Always` when unset), the
termination grace period (30 s), the pod's init and app containers, and
the kubelet's name for a pod in messages (`format.Pod`).
"""

from __future__ import annotations

from typing import Any

DEFAULT_GRACE = 30.0


def restart_policy(pod: dict[str, Any]) -> str:
    return pod.get("spec", {}).get("restartPolicy", "Always")


def grace_period(pod: dict[str, Any]) -> float:
    """`terminationGracePeriodSeconds`, in seconds."""
    grace = pod.get("spec", {}).get("terminationGracePeriodSeconds")
    return DEFAULT_GRACE if grace is None else float(grace)


def init_and_app_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers the agent runs: init containers first (ephemeral ones are not run)."""
    spec = pod.get("spec", {})
    return [*(spec.get("initContainers") or []), *spec.get("containers", [])]


def container_named(pod: dict[str, Any], name: str, *, init: bool) -> dict[str, Any]:
    """The init or app container called `name` (it must be there)."""
    key = "initContainers" if init else "containers"
    return next(c for c in pod["spec"].get(key) or [] if c["name"] == name)
