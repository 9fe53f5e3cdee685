"""Ephemeral containers: what `kubectl debug` adds to a running pod.

Kubernetes' `validateEphemeralContainers` and
`ValidatePodEphemeralContainersUpdate`: an ephemeral container is a
container without what would make the pod rely on it (ports, probes,
resources, lifecycle hooks, a restart policy, subPath mounts: each is
"Forbidden: cannot be set for an Ephemeral Container"); its name is unique
among all the pod's containers, and its `targetContainerName` names one of
the pod's other containers. Ephemeral containers are never set on create,
and once added one is neither changed nor removed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import model_validator

from minik.api.errors import Cause
from minik.api.models.base import forbidden, not_found, raise_any
from minik.api.models.container import Container

NOT_FOR_EPHEMERAL = "cannot be set for an Ephemeral Container"
FORBIDDEN_FIELDS = ("ports", "resources", "resizePolicy", "restartPolicy", "livenessProbe",
                    "readinessProbe", "startupProbe", "lifecycle")
"""The fields of a container an ephemeral container may not set (Kubernetes lists the
allowed ones, `allowedEphemeralContainerFields`: these are the rest)."""
PATH = "spec.ephemeralContainers"


class EphemeralContainer(Container):
    target_container_name: str | None = None

    @model_validator(mode="after")
    def _ephemeral(self) -> EphemeralContainer:
        causes = [forbidden(field, NOT_FOR_EPHEMERAL) for field in FORBIDDEN_FIELDS
                  if _is_set(self.model_extra_or_field(field))]
        causes += [forbidden(f"volumeMounts[{i}].subPath", NOT_FOR_EPHEMERAL)
                   for i, mount in enumerate(self.volume_mounts or ()) if mount.sub_path]
        raise_any(causes)
        return self

    def model_extra_or_field(self, field: str) -> Any:
        """A field by its JSON name, whether the model knows it or keeps it as extra."""
        for name, info in type(self).model_fields.items():
            if (info.alias or name) == field:
                return getattr(self, name)
        return (self.model_extra or {}).get(field)


def _is_set(value: Any) -> bool:
    """Go's notion of a field being set: not absent, not empty, not a zero struct."""
    if isinstance(value, dict):
        return any(_is_set(v) for v in value.values())
    if hasattr(value, "model_dump"):
        return _is_set(value.model_dump(exclude_none=True))
    if isinstance(value, list | str):
        return bool(value)
    return value is not None and value is not False


def target_causes(ephemeral: list[EphemeralContainer], others: list[str]) -> Iterator[Cause]:
    """Each target among the pod's other containers (paths from the pod's spec; names are
    unique among all of them, as `PodSpec` checks)."""
    for i, container in enumerate(ephemeral):
        target = container.target_container_name
        if target and target not in others:
            yield not_found(f"ephemeralContainers[{i}].targetContainerName", target)


def update_causes(new: list[dict[str, Any]], old: list[dict[str, Any]]) -> list[Cause]:
    """Existing ephemeral containers may be neither removed nor changed."""
    by_name = {c.get("name"): c for c in new}
    causes = []
    for container in old:
        name = container.get("name")
        if name not in by_name:
            causes.append(forbidden(PATH, f'existing ephemeral containers "{name}" may not '
                                          "be removed\n"))
        elif by_name[name] != container:
            causes.append(forbidden(PATH, f'existing ephemeral containers "{name}" may not '
                                          "be changed\n"))
    return causes
