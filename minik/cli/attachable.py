"""The pods behind `TYPE/NAME`: what `logs` and `port-forward` act on when not given a pod.

kubectl resolves a Service or a workload (`svc/x`, `deploy/x`, `rs/x`,
`sts/x`, `ds/x`, `job/x`, `rc/x`) client-side to the pods its selector
matches (polymorphichelpers' SelectorsForObject), then picks one: `logs`
takes the first in podutils' ByLogging order and says which when there
are several; `port-forward` prefers a running, ready pod. A pod named
outright (`x`, `pod/x`) is used as it is.
"""

from __future__ import annotations

from typing import Any

import click

from minik.api.resources import REGISTRY, ResourceType
from minik.api.selectors.labels import LabelSelector, workload_selector
from minik.cli.context import CliContext, fail
from minik.client.paths import collection_path

JsonObject = dict[str, Any]
ATTACHABLE_KINDS = frozenset({"Pod", "Service", "Deployment", "ReplicaSet", "StatefulSet",
                              "DaemonSet", "Job", "ReplicationController"})
PODS = REGISTRY.get("pods")
LOGGING_PHASE_RANK = {"Running": 0, "Unknown": 1, "Pending": 2}
"""ByLogging's phase order; any other phase (Succeeded, Failed) ranks with Running."""


def attachable_type(name: str) -> ResourceType:
    """The resource type of `name`, refused as kubectl refuses a kind it cannot select pods of."""
    rt = REGISTRY.resolve(name)
    if rt is None:
        fail(f'error: the server doesn\'t have a resource type "{name}"')
    if rt.kind not in ATTACHABLE_KINDS:
        fail(f"error: cannot attach to {rt.kind}: selector for {rt.kind} not implemented")
    return rt


def pod_selector(rt: ResourceType, obj: JsonObject, arg: str) -> LabelSelector:
    """The selector of the pods a Service or workload stands for."""
    if rt.kind == "Service":
        selector = (obj.get("spec") or {}).get("selector")
        if not selector:
            fail(f"error: cannot attach to {arg}: the service has no selector")
        return LabelSelector.from_spec({"matchLabels": selector})
    return workload_selector(rt.kind, obj)


def list_pods(ctx: CliContext, selector: LabelSelector) -> tuple[list[JsonObject], str]:
    """The pods `selector` matches in the current namespace, and the list's resourceVersion."""
    listed = ctx.client().request("GET", collection_path(PODS, ctx.namespace),
                                  params={"labelSelector": str(selector)})
    return listed.get("items") or [], str((listed.get("metadata") or {}).get("resourceVersion")
                                          or "0")


def _ready_since(pod: JsonObject) -> str | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return str(condition.get("lastTransitionTime") or "") \
                if condition.get("status") == "True" else None
    return None


def by_logging(pod: JsonObject) -> tuple[bool, int, bool, str, int, str]:
    """podutils.ByLogging as a sort key: the pod whose logs `kubectl logs TYPE/NAME` prints first.

    Scheduled before unscheduled, Running before Unknown before Pending,
    ready (longest first) before unready, most restarts first, oldest first.
    """
    status = pod.get("status") or {}
    ready = _ready_since(pod)
    restarts = max((int(c.get("restartCount") or 0)
                    for c in status.get("containerStatuses") or []), default=0)
    return (not (pod.get("spec") or {}).get("nodeName"),
            LOGGING_PHASE_RANK.get(str(status.get("phase") or ""), 0), ready is None,
            ready or "", -restarts, str(pod["metadata"].get("creationTimestamp") or ""))


def first_pod_for_logs(ctx: CliContext, rt: ResourceType, obj: JsonObject, arg: str, *,
                       timeout: float) -> JsonObject:
    """The pod `kubectl logs TYPE/NAME` reads, waiting up to `timeout` for one to appear."""
    selector = pod_selector(rt, obj, arg)
    pods, rv = list_pods(ctx, selector)
    if not pods:
        pods = _first_created(ctx, selector, rv, timeout)
    pods.sort(key=by_logging)
    if len(pods) > 1:
        click.echo(f"Found {len(pods)} pods, using pod/{pods[0]['metadata']['name']}", err=True)
    return pods[0]


def _first_created(ctx: CliContext, selector: LabelSelector, rv: str,
                   timeout: float) -> list[JsonObject]:
    """Watch for the first matching pod, as kubectl's GetPodList does when it lists none."""
    params = {"labelSelector": str(selector), "resourceVersion": rv, "watch": "true",
              "timeoutSeconds": max(1, round(timeout))}
    for event in ctx.client().watch(collection_path(PODS, ctx.namespace), params=params):
        if event.get("type") in ("ADDED", "MODIFIED"):
            return [event["object"]]
    fail("error: timed out waiting for the condition")
