"""Describing workloads: Deployments, ReplicaSets, ReplicationControllers, StatefulSets,
DaemonSets, Jobs.

kubectl's workload describers: a summary of the spec and status, the pod
template (see `describe_pod`), the counts of the controller's own pods by
phase, and for a Deployment its old and new ReplicaSets, found the way
kubectl's deploymentutil finds them (controller owner reference, then the
pod template without its `pod-template-hash` label).
"""

from __future__ import annotations

from typing import Any

from minik.api.resources import REGISTRY
from minik.cli.describe import (
    Described,
    PrefixWriter,
    annotations_multiline,
    describe_events,
    human_duration,
    labels_multiline,
    parse_time,
    rfc1123z,
)
from minik.cli.describe_pod import controller_of, describe_template

REVISION = "deployment.kubernetes.io/revision"


def selector_text(selector: dict[str, Any] | None) -> str:
    """`metav1.FormatLabelSelector`: `app=web,tier in (a,b)`, `<none>` when empty."""
    selector = selector or {}
    terms = [(k, f"{k}={v}") for k, v in (selector.get("matchLabels") or {}).items()]
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key", ""), e.get("operator", ""), sorted(e.get("values") or [])
        text = {"In": f"{key} in ({','.join(values)})",
                "NotIn": f"{key} notin ({','.join(values)})",
                "Exists": key, "DoesNotExist": f"!{key}"}.get(op, key)
        terms.append((key, text))
    return ",".join(t for _, t in sorted(terms)) or "<none>"


def selector_string(selector: dict[str, Any] | None) -> str:
    """`labels.Selector.String()`: like `selector_text`, but empty when nothing is selected."""
    text = selector_text(selector)
    return "" if text == "<none>" else text


def owned_pods(d: Described, selector: dict[str, Any] | None) -> list[dict[str, Any]]:
    pods_rt = REGISTRY.get("pods")
    assert pods_rt is not None
    text = selector_text(selector)
    pods = d.list(pods_rt, d.meta.get("namespace"),
                  labelSelector="" if text == "<none>" else text)
    uid = d.meta.get("uid")
    return [p for p in pods if any(r.get("controller") and r.get("uid") == uid
                                   for r in (p.get("metadata") or {}).get("ownerReferences")
                                   or [])]


def pods_status(d: Described, selector: dict[str, Any] | None) -> str:
    phases = [(p.get("status") or {}).get("phase") for p in owned_pods(d, selector)]
    return (f"{phases.count('Running')} Running / {phases.count('Pending')} Waiting / "
            f"{phases.count('Succeeded')} Succeeded / {phases.count('Failed')} Failed")


def header(d: Described, w: PrefixWriter, *, created: bool = False) -> None:
    w.write(0, f"Name:\t{d.meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{d.meta.get('namespace', '')}\n")
    if created:
        w.write(0, f"CreationTimestamp:\t{rfc1123z(d.meta.get('creationTimestamp'))}\n")


def _conditions(w: PrefixWriter, conditions: list[dict[str, Any]]) -> None:
    if conditions:
        w.write(0, "Conditions:\n  Type\tStatus\tReason\n")
        w.write(1, "----\t------\t------\n")
        for c in conditions:
            w.write(1, f"{c.get('type', '')} \t{c.get('status', '')}\t{c.get('reason', '')}\n")


def _strip_hash(template: dict[str, Any]) -> dict[str, Any]:
    meta = dict(template.get("metadata") or {})
    meta["labels"] = {k: v for k, v in (meta.get("labels") or {}).items()
                      if k != "pod-template-hash"}
    meta.pop("creationTimestamp", None)
    return {**template, "metadata": meta}


def split_replica_sets(d: Described) -> tuple[list[dict], list[dict]]:
    """(old, new) ReplicaSets the deployment controls, as kubectl's deploymentutil finds them."""
    rs_rt = REGISTRY.get("replicasets")
    assert rs_rt is not None
    text = selector_text(d.get("spec", "selector"))
    owned = [rs for rs in d.list(rs_rt, d.meta.get("namespace"),
                                 labelSelector="" if text == "<none>" else text)
             if any(r.get("controller") and r.get("uid") == d.meta.get("uid")
                    for r in (rs.get("metadata") or {}).get("ownerReferences") or [])]
    template = _strip_hash(d.get("spec", "template", default={}))
    new = [rs for rs in owned if _strip_hash((rs.get("spec") or {}).get("template") or {})
           == template][:1]
    if not new:
        revision = (d.meta.get("annotations") or {}).get(REVISION)
        new = [rs for rs in owned if revision and ((rs.get("metadata") or {}).get(
            "annotations") or {}).get(REVISION) == revision][:1]
    return [rs for rs in owned if rs not in new], new


def _rs_list(replica_sets: list[dict[str, Any]]) -> str:
    return ", ".join(f"{rs['metadata']['name']} ({(rs.get('status') or {}).get('replicas', 0)}/"
                     f"{(rs.get('spec') or {}).get('replicas', 0)} replicas created)"
                     for rs in replica_sets) or "<none>"


def describe_deployment(d: Described, w: PrefixWriter) -> None:
    spec, status = d.get("spec", default={}), d.get("status", default={})
    header(d, w, created=True)
    labels_multiline(w, "Labels", d.meta.get("labels"))
    annotations_multiline(w, "Annotations", d.meta.get("annotations"))
    w.write(0, f"Selector:\t{selector_string(spec.get('selector'))}\n")
    w.write(0, f"Replicas:\t{spec.get('replicas', 0)} desired | "
               f"{status.get('updatedReplicas', 0)} updated | {status.get('replicas', 0)} total"
               f" | {status.get('availableReplicas', 0)} available | "
               f"{status.get('unavailableReplicas', 0)} unavailable\n")
    strategy = spec.get("strategy") or {}
    w.write(0, f"StrategyType:\t{strategy.get('type', '')}\n")
    w.write(0, f"MinReadySeconds:\t{spec.get('minReadySeconds', 0)}\n")
    if strategy.get("rollingUpdate"):
        ru = strategy["rollingUpdate"]
        w.write(0, f"RollingUpdateStrategy:\t{ru.get('maxUnavailable', 0)} max unavailable, "
                   f"{ru.get('maxSurge', 0)} max surge\n")
    describe_template(w, spec.get("template") or {})
    _conditions(w, status.get("conditions") or [])
    old, new = split_replica_sets(d)
    if old or new:
        w.write(0, f"OldReplicaSets:\t{_rs_list(old)}\n")
        w.write(0, f"NewReplicaSet:\t{_rs_list(new)}\n")
    describe_events(w, d.events or [], d.now)


def describe_replica_set(d: Described, w: PrefixWriter) -> None:
    spec = d.get("spec", default={})
    _describe_replicas(d, w, spec.get("selector"), controlled_by=True)


def describe_replication_controller(d: Described, w: PrefixWriter) -> None:
    """As a ReplicaSet, with the plain label map of its selector and no owner line."""
    selector = d.get("spec", default={}).get("selector")
    _describe_replicas(d, w, {"matchLabels": selector or {}}, controlled_by=False)


def _describe_replicas(d: Described, w: PrefixWriter, selector: dict[str, Any] | None, *,
                       controlled_by: bool) -> None:
    spec, status = d.get("spec", default={}), d.get("status", default={})
    header(d, w)
    w.write(0, f"Selector:\t{selector_text(selector)}\n")
    labels_multiline(w, "Labels", d.meta.get("labels"))
    annotations_multiline(w, "Annotations", d.meta.get("annotations"))
    if controlled_by and controller_of(d.meta):
        w.write(0, f"Controlled By:\t{controller_of(d.meta)}\n")
    w.write(0, f"Replicas:\t{status.get('replicas', 0)} current / {spec.get('replicas', 0)} "
               "desired\n")
    w.write(0, f"Pods Status:\t{pods_status(d, selector)}\n")
    describe_template(w, spec.get("template") or {})
    _conditions(w, status.get("conditions") or [])
    describe_events(w, d.events or [], d.now)


def describe_stateful_set(d: Described, w: PrefixWriter) -> None:
    spec, status = d.get("spec", default={}), d.get("status", default={})
    header(d, w, created=True)
    w.write(0, f"Selector:\t{selector_string(spec.get('selector'))}\n")
    labels_multiline(w, "Labels", d.meta.get("labels"))
    annotations_multiline(w, "Annotations", d.meta.get("annotations"))
    w.write(0, f"Replicas:\t{spec.get('replicas', 0)} desired | {status.get('replicas', 0)} "
               "total\n")
    strategy = spec.get("updateStrategy") or {}
    w.write(0, f"Update Strategy:\t{strategy.get('type', '')}\n")
    if (strategy.get("rollingUpdate") or {}).get("partition") is not None:
        w.write(1, f"Partition:\t{strategy['rollingUpdate']['partition']}\n")
    w.write(0, f"Pods Status:\t{pods_status(d, spec.get('selector'))}\n")
    describe_template(w, spec.get("template") or {})
    claims = spec.get("volumeClaimTemplates") or []
    w.write(0, "Volume Claims:\n" if claims else "Volume Claims:\t<none>\n")
    for pvc in claims:
        pvc_spec = pvc.get("spec") or {}
        w.write(1, f"Name:\t{(pvc.get('metadata') or {}).get('name', '')}\n")
        w.write(1, f"StorageClass:\t{pvc_spec.get('storageClassName', '')}\n")
        labels_multiline(w, "Labels", (pvc.get("metadata") or {}).get("labels"), "  ")
        labels_multiline(w, "Annotations", (pvc.get("metadata") or {}).get("annotations"), "  ")
        storage = ((pvc_spec.get("resources") or {}).get("requests") or {}).get("storage")
        w.write(1, f"Capacity:\t{storage or '<default>'}\n")
        w.write(1, f"Access Modes:\t[{' '.join(pvc_spec.get('accessModes') or [])}]\n")
    describe_events(w, d.events or [], d.now)


def describe_daemon_set(d: Described, w: PrefixWriter) -> None:
    spec, status = d.get("spec", default={}), d.get("status", default={})
    header(d, w)
    w.write(0, f"Selector:\t{selector_string(spec.get('selector'))}\n")
    node_selector = d.get("spec", "template", "spec", "nodeSelector", default={}) or {}
    w.write(0, "Node-Selector:\t" + (",".join(f"{k}={v}" for k, v in sorted(
        node_selector.items())) or "<none>") + "\n")
    labels_multiline(w, "Labels", d.meta.get("labels"))
    annotations_multiline(w, "Annotations", d.meta.get("annotations"))
    for key, title in (("desiredNumberScheduled", "Desired Number of Nodes Scheduled"),
                       ("currentNumberScheduled", "Current Number of Nodes Scheduled"),
                       ("updatedNumberScheduled",
                        "Number of Nodes Scheduled with Up-to-date Pods"),
                       ("numberAvailable", "Number of Nodes Scheduled with Available Pods"),
                       ("numberMisscheduled", "Number of Nodes Misscheduled")):
        w.write(0, f"{title}: {status.get(key, 0)}\n")
    w.write(0, f"Pods Status:\t{pods_status(d, spec.get('selector'))}\n")
    describe_template(w, spec.get("template") or {})
    describe_events(w, d.events or [], d.now)


def describe_job(d: Described, w: PrefixWriter) -> None:
    spec, status = d.get("spec", default={}), d.get("status", default={})
    header(d, w)
    w.write(0, f"Selector:\t{selector_string(spec.get('selector'))}\n")
    labels_multiline(w, "Labels", d.meta.get("labels"))
    annotations_multiline(w, "Annotations", d.meta.get("annotations"))
    if controller_of(d.meta):
        w.write(0, f"Controlled By:\t{controller_of(d.meta)}\n")
    if spec.get("parallelism") is not None:
        w.write(0, f"Parallelism:\t{spec['parallelism']}\n")
    w.write(0, f"Completions:\t{spec.get('completions', '<unset>')}\n")
    for key, title in (("completionMode", "Completion Mode"), ("suspend", "Suspend"),
                       ("backoffLimit", "Backoff Limit"),
                       ("ttlSecondsAfterFinished", "TTL Seconds After Finished")):
        if spec.get(key) is not None:
            value = spec[key]
            w.write(0, f"{title}:\t{str(value).lower() if isinstance(value, bool) else value}\n")
    start, done = status.get("startTime"), status.get("completionTime")
    if start:
        w.write(0, f"Start Time:\t{rfc1123z(start)}\n")
    if done:
        w.write(0, f"Completed At:\t{rfc1123z(done)}\n")
    started, finished = parse_time(start), parse_time(done)
    if started and finished:
        w.write(0, f"Duration:\t{human_duration((finished - started).total_seconds())}\n")
    if spec.get("activeDeadlineSeconds") is not None:
        w.write(0, f"Active Deadline Seconds:\t{spec['activeDeadlineSeconds']}s\n")
    counts = f"{status.get('active', 0)} Active"
    if status.get("ready") is not None:
        counts += f" ({status['ready']} Ready)"
    w.write(0, f"Pods Statuses:\t{counts} / {status.get('succeeded', 0)} Succeeded / "
               f"{status.get('failed', 0)} Failed\n")
    if spec.get("completionMode") == "Indexed":
        w.write(0, f"Completed Indexes:\t{capped_indexes(status.get('completedIndexes'))}\n")
    describe_template(w, spec.get("template") or {})
    describe_events(w, d.events or [], d.now)


def capped_indexes(indexes: str | None, soft_limit: int = 50) -> str:
    """kubectl's capIndexesListOrNone: the ranges up to the first comma past `soft_limit`."""
    if not indexes:
        return "<none>"
    cut = indexes.find(",", soft_limit)
    return indexes if cut < 0 else indexes[:cut + 1] + "..."


def describe_cron_job(d: Described, w: PrefixWriter) -> None:
    spec, status = d.get("spec", default={}), d.get("status", default={})
    header(d, w)
    labels_multiline(w, "Labels", d.meta.get("labels"))
    annotations_multiline(w, "Annotations", d.meta.get("annotations"))
    w.write(0, f"Schedule:\t{spec.get('schedule', '')}\n")
    w.write(0, f"Concurrency Policy:\t{spec.get('concurrencyPolicy', '')}\n")
    suspend = spec.get("suspend")
    w.write(0, f"Suspend:\t{'<unset>' if suspend is None else ('True' if suspend else 'False')}\n")
    for key, title in (("successfulJobsHistoryLimit", "Successful Job History Limit"),
                       ("failedJobsHistoryLimit", "Failed Job History Limit")):
        w.write(0, f"{title}:\t{spec.get(key, '<unset>')}\n")
    deadline = spec.get("startingDeadlineSeconds")
    w.write(0, "Starting Deadline Seconds:\t"
               f"{'<unset>' if deadline is None else f'{deadline}s'}\n")
    job = (spec.get("jobTemplate") or {}).get("spec") or {}
    w.write(0, "Selector:\t" + (selector_text(job["selector"]) if job.get("selector")
                                else "<unset>") + "\n")
    for key, title in (("parallelism", "Parallelism"), ("completions", "Completions")):
        w.write(0, f"{title}:\t{job.get(key, '<unset>')}\n")
    if job.get("activeDeadlineSeconds") is not None:
        w.write(0, f"Active Deadline Seconds:\t{job['activeDeadlineSeconds']}s\n")
    describe_template(w, job.get("template") or {})
    last = status.get("lastScheduleTime")
    w.write(0, f"Last Schedule Time:\t{rfc1123z(last) if last else '<unset>'}\n")
    active = [ref.get("name", "") for ref in status.get("active") or []]
    w.write(0, f"Active Jobs:\t{', '.join(active) or '<none>'}\n")
    describe_events(w, d.events or [], d.now)
