"""Container labels and names: how a restarted agent recognises its containers.

As in the kubelet's `kuberuntime/labels.go`, every container minik starts
carries labels naming the minik instance, the pod (namespace, name, UID),
what it is (the pod's sandbox or one of its containers), the container's
name, the hash of its spec, its restart count and its attempt. After a
restart the agent lists containers by `minik.dev/instance` and rebuilds
its whole view from these labels alone — never from names, which are
only for humans and for Docker's uniqueness rule.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from minik.api.objects import AnyObject

PREFIX = "minik.dev/"
INSTANCE = PREFIX + "instance"
POD_NAMESPACE = PREFIX + "pod-namespace"
POD_NAME = PREFIX + "pod-name"
POD_UID = PREFIX + "pod-uid"
KIND = PREFIX + "kind"
CONTAINER_NAME = PREFIX + "container-name"
CONTAINER_HASH = PREFIX + "container-hash"
RESTART_COUNT = PREFIX + "restart-count"
ATTEMPT = PREFIX + "attempt"

KIND_SANDBOX = "sandbox"
KIND_CONTAINER = "container"
SANDBOX_CONTAINER_NAME = "POD"

_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")


class PodModel(Protocol):
    """A pod as an object with attributes (the API's model), rather than decoded JSON."""

    @property
    def metadata(self) -> object: ...


@dataclass(frozen=True)
class PodRef:
    """The identity of a pod as labels record it."""

    namespace: str
    name: str
    uid: str

    @classmethod
    def of(cls, pod: PodLike) -> PodRef:
        """Accept a PodRef, a pod as a JSON dict, or a pod model with `.metadata`."""
        if isinstance(pod, PodRef):
            return pod
        meta = pod.get("metadata", {}) if isinstance(pod, Mapping) else pod.metadata

        def get(key: str) -> Any:
            return meta.get(key) if isinstance(meta, Mapping) else getattr(meta, key, None)

        namespace, name, uid = get("namespace") or "default", get("name"), get("uid")
        if not name or not uid:
            raise ValueError("a pod needs metadata.name and metadata.uid to be labelled")
        return cls(namespace=namespace, name=name, uid=uid)

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> PodRef | None:
        try:
            return cls(labels[POD_NAMESPACE], labels[POD_NAME], labels[POD_UID])
        except KeyError:
            return None


PodLike = PodRef | AnyObject | PodModel
"""Whatever names a pod: labels are made from its namespace, name and uid."""


def instance_selector(instance: str) -> dict[str, str]:
    return {INSTANCE: instance}


def pod_selector(instance: str, pod: PodLike) -> dict[str, str]:
    return {INSTANCE: instance, POD_UID: PodRef.of(pod).uid}


def _pod_labels(instance: str, ref: PodRef) -> dict[str, str]:
    return {
        INSTANCE: instance,
        POD_NAMESPACE: ref.namespace,
        POD_NAME: ref.name,
        POD_UID: ref.uid,
    }


def sandbox_labels(instance: str, pod: PodLike, *, attempt: int = 0) -> dict[str, str]:
    return {
        **_pod_labels(instance, PodRef.of(pod)),
        KIND: KIND_SANDBOX,
        CONTAINER_NAME: SANDBOX_CONTAINER_NAME,
        ATTEMPT: str(attempt),
    }


def container_labels(
    instance: str, pod: PodLike, container_name: str, spec_hash: str, restart_count: int
) -> dict[str, str]:
    """Labels of an app container; its attempt is its restart count, as in the kubelet."""
    return {
        **_pod_labels(instance, PodRef.of(pod)),
        KIND: KIND_CONTAINER,
        CONTAINER_NAME: container_name,
        CONTAINER_HASH: spec_hash,
        RESTART_COUNT: str(restart_count),
        ATTEMPT: str(restart_count),
    }


def is_sandbox(labels: Mapping[str, str]) -> bool:
    return labels.get(KIND) == KIND_SANDBOX


def restart_count(labels: Mapping[str, str]) -> int:
    return _int_label(labels, RESTART_COUNT)


def attempt(labels: Mapping[str, str]) -> int:
    return _int_label(labels, ATTEMPT)


def _int_label(labels: Mapping[str, str], key: str) -> int:
    try:
        return max(0, int(labels.get(key, "0")))
    except ValueError:
        return 0


def container_name_for(
    instance: str, pod: PodLike, container_name: str = SANDBOX_CONTAINER_NAME, attempt: int = 0
) -> str:
    """A Docker name `minik-<instance>_<pod>_<ns>_<container>_<uid8>_<attempt>`.

    Docker names match `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; Kubernetes names
    already fit, and anything else is replaced by `-`.
    """
    ref = PodRef.of(pod)
    parts = [f"minik-{instance}", ref.name, ref.namespace, container_name, ref.uid[:8],
             str(attempt)]
    return "_".join(_NAME_UNSAFE.sub("-", p) for p in parts)


def hash_container(container: Mapping[str, Any]) -> str:
    """A stable hash of a container's spec: any change to it means a new container.

    sha256 over canonical JSON (sorted keys, no whitespace), first 12 hex
    digits: equal across runs and processes, unlike `hash()`.
    """
    canonical = json.dumps(container, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]
