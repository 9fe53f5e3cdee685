"""`minik rollout status|history|undo` for a StatefulSet or a DaemonSet, as kubectl does them.

Their history is their ControllerRevisions (those the object controls, by
their `revision` number); each holds the patch that restores a pod
template, and undo sends that patch as a strategic merge patch, as
kubectl's `StatefulSetRollbacker` and `DaemonSetRollbacker` do. Status
follows kubectl's `StatefulSetStatusViewer` and `DaemonSetStatusViewer`,
messages and all.
"""

from __future__ import annotations

from typing import Any

import click

from minik.api.resources import CONTROLLERREVISIONS, ResourceType
from minik.api.revisions import equal_ignore_hash
from minik.cli.apply import SMP
from minik.cli.context import fail
from minik.cli.describe import PrefixWriter
from minik.cli.describe_pod import describe_template
from minik.cli.describe_workloads import selector_string
from minik.cli.label import CHANGE_CAUSE
from minik.cli.printing import compact_json
from minik.client.paths import collection_path, object_path
from minik.client.rest import RestClient


def stateful_set_status_message(sts: dict[str, Any]) -> tuple[str, bool]:
    """kubectl's StatefulSetStatusViewer: the line to print and whether the rollout is done."""
    spec, status = sts.get("spec") or {}, sts.get("status") or {}
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        fail("error: rollout status is only available for RollingUpdate strategy type")
    observed = status.get("observedGeneration", 0)
    if not observed or sts["metadata"].get("generation", 0) > observed:
        return "Waiting for statefulset spec update to be observed...", False
    wanted = spec.get("replicas", 1)
    if status.get("readyReplicas", 0) < wanted:
        return f"Waiting for {wanted - status.get('readyReplicas', 0)} pods to be ready...", False
    rolling = strategy.get("rollingUpdate")
    if rolling is not None:
        partitioned = wanted - (rolling.get("partition") or 0)
        updated = status.get("updatedReplicas", 0)
        if rolling.get("partition") is not None and updated < partitioned:
            return (f"Waiting for partitioned roll out to finish: {updated} out of "
                    f"{partitioned} new pods have been updated..."), False
        return f"partitioned roll out complete: {updated} new pods have been updated...", True
    if status.get("updateRevision") != status.get("currentRevision"):
        return (f"waiting for statefulset rolling update to complete "
                f"{status.get('updatedReplicas', 0)} pods at revision "
                f"{status.get('updateRevision')}..."), False
    return (f"statefulset rolling update complete {status.get('currentReplicas', 0)} pods at "
            f"revision {status.get('currentRevision')}..."), True


def daemon_set_status_message(ds: dict[str, Any]) -> tuple[str, bool]:
    """kubectl's DaemonSetStatusViewer: the line to print and whether the rollout is done."""
    name = ds["metadata"]["name"]
    spec, status = ds.get("spec") or {}, ds.get("status") or {}
    if (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") != "RollingUpdate":
        fail("error: rollout status is only available for RollingUpdate strategy type")
    if ds["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
        return "Waiting for daemon set spec update to be observed...", False
    desired = status.get("desiredNumberScheduled", 0)
    waiting = f'Waiting for daemon set "{name}" rollout to finish: '
    if status.get("updatedNumberScheduled", 0) < desired:
        return (f"{waiting}{status.get('updatedNumberScheduled', 0)} out of {desired} new pods "
                "have been updated..."), False
    if status.get("numberAvailable", 0) < desired:
        return (f"{waiting}{status.get('numberAvailable', 0)} of {desired} updated pods are "
                "available..."), False
    return f'daemon set "{name}" successfully rolled out', True


def history(client: RestClient, sts: dict[str, Any]) -> list[dict[str, Any]]:
    """The ControllerRevisions the object controls, oldest revision first."""
    selector = selector_string(sts["spec"].get("selector"))
    listed = client.request("GET", collection_path(CONTROLLERREVISIONS,
                                                   sts["metadata"].get("namespace")),
                            params={"labelSelector": selector})
    uid = sts["metadata"]["uid"]
    owned = [r for r in listed.get("items") or []
             if any(ref.get("uid") == uid and ref.get("controller")
                    for ref in r["metadata"].get("ownerReferences") or [])]
    return sorted(owned, key=lambda r: r.get("revision", 0))


def _template(revision: dict[str, Any]) -> dict[str, Any]:
    template = dict(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


def show_history(client: RestClient, rt: ResourceType, sts: dict[str, Any],
                 wanted: int) -> None:
    name = sts["metadata"]["name"]
    revisions = history(client, sts)
    if not revisions:
        click.echo("No rollout history found.")
        return
    if wanted:
        revision = next((r for r in revisions if r.get("revision") == wanted), None)
        if revision is None:
            fail("error: unable to find the specified revision")
        w = PrefixWriter()
        describe_template(w, _template(revision))
        click.echo(f"{rt.qualified_kind}/{name} with revision #{wanted}")
        click.echo(w.raw())
        return
    click.echo(f"{rt.qualified_kind}/{name} ")
    rows = [("REVISION", "CHANGE-CAUSE")] + [
        (str(r.get("revision", 0)),
         (r["metadata"].get("annotations") or {}).get(CHANGE_CAUSE, "<none>"))
        for r in revisions]
    width = max(len(r[0]) for r in rows)
    for number, cause in rows:
        click.echo(f"{number.ljust(width)}  {cause}")
    click.echo("")


def undo(client: RestClient, rt: ResourceType, namespace: str, name: str,
         to_revision: int) -> None:
    """Patch the object with the chosen revision's data (by default the one before the
    latest)."""
    path = object_path(rt, namespace, name)
    sts = client.request("GET", path)
    revisions = history(client, sts)
    if not to_revision and len(revisions) <= 1:
        fail("error: no last revision to roll back to")
    if to_revision:
        revision = next((r for r in revisions if r.get("revision") == to_revision), None)
    else:
        revision = revisions[-2]
    if revision is None:
        fail(f"error: unable to find specified revision {to_revision} in history")
    if equal_ignore_hash(_template(revision), sts["spec"]["template"]):
        click.echo(f"{rt.qualified_kind}/{name} skipped rollback (current template already "
                   f"matches revision {to_revision})")
        return
    client.request("PATCH", path, body=compact_json(revision["data"]).encode(),
                   content_type=SMP)
    click.echo(f"{rt.qualified_kind}/{name} rolled back")
