"""Describing PersistentVolumes, PersistentVolumeClaims and StorageClasses as kubectl does.

Besides the volume's own fields, a claim's description lists the pods that
use it ("Used By"), found by reading the pods of its namespace.
"""

from __future__ import annotations

from typing import Any

from minik.api.resources import REGISTRY
from minik.api.volumes import is_default_class
from minik.cli.describe import (
    Described,
    PrefixWriter,
    annotations_multiline,
    describe_events,
    labels_multiline,
    rfc1123z,
    since,
)
from minik.cli.printing import format_labels

STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
ACCESS_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                ("ReadWriteOncePod", "RWOP"))


def access_modes(modes: list[str] | None) -> str:
    """`storageutil.GetAccessModesAsString`: `RWO,RWX` in a fixed order."""
    return ",".join(short for long, short in ACCESS_MODES if long in (modes or []))


def storage_class(obj: dict[str, Any]) -> str:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return annotations.get(STORAGE_CLASS_ANNOTATION) or \
        (obj.get("spec") or {}).get("storageClassName") or ""


def _go_list(values: list[Any] | None) -> str:
    return "[" + " ".join(str(v) for v in values or []) + "]"


def _status(d: Described, w: PrefixWriter) -> None:
    if d.meta.get("deletionTimestamp"):
        w.write(0, f"Status:\tTerminating (lasts {since(d.meta['deletionTimestamp'], d.now)})\n")
    else:
        w.write(0, f"Status:\t{d.get('status', 'phase', default='')}\n")


def describe_persistent_volume(d: Described, w: PrefixWriter) -> None:
    spec = d.get("spec", default={})
    w.write(0, f"Name:\t{d.meta.get('name', '')}\n")
    labels_multiline(w, "Labels", d.meta.get("labels"))
    annotations_multiline(w, "Annotations", d.meta.get("annotations"))
    w.write(0, f"Finalizers:\t{_go_list(d.meta.get('finalizers'))}\n")
    w.write(0, f"StorageClass:\t{storage_class(d.obj)}\n")
    _status(d, w)
    claim = spec.get("claimRef")
    w.write(0, f"Claim:\t{claim.get('namespace', '')}/{claim.get('name', '')}\n" if claim
            else "Claim:\t\n")
    w.write(0, f"Reclaim Policy:\t{spec.get('persistentVolumeReclaimPolicy', '')}\n")
    w.write(0, f"Access Modes:\t{access_modes(spec.get('accessModes'))}\n")
    if spec.get("volumeMode"):
        w.write(0, f"VolumeMode:\t{spec['volumeMode']}\n")
    w.write(0, f"Capacity:\t{(spec.get('capacity') or {}).get('storage', '0')}\n")
    _node_affinity(w, (spec.get("nodeAffinity") or {}).get("required"))
    w.write(0, f"Message:\t{d.get('status', 'message', default='')}\n")
    w.write(0, "Source:\n")
    if "hostPath" in spec:
        host = spec["hostPath"] or {}
        w.write(2, "Type:\tHostPath (bare host directory volume)\n")
        w.write(0, f"    Path:\t{host.get('path', '')}\n")
        w.write(0, f"    HostPathType:\t{host.get('type') or '<none>'}\n")
    elif "csi" in spec:
        _csi_source(w, spec["csi"] or {})
    elif "local" in spec:
        w.write(2, "Type:\tLocalVolume (a persistent volume backed by local storage on a "
                   "node)\n")
        w.write(0, f"    Path:\t{(spec['local'] or {}).get('path', '')}\n")
    else:
        w.write(1, "<unknown>\n")
    describe_events(w, d.events or [], d.now)


def _node_affinity(w: PrefixWriter, required: dict[str, Any] | None) -> None:
    """`printVolumeNodeAffinity`: each required term's expressions on one line."""
    if not required:
        w.write(0, "Node Affinity:\t<none>\n")
        return
    w.write(0, "Node Affinity:\t\n")
    w.write(1, "Required Terms:\t")
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        w.write(0, "<none>\n")
        return
    w.write(0, "\n")
    for i, term in enumerate(terms):
        expressions = [
            f"{e.get('key', '')} {str(e.get('operator', '')).lower()}"
            + (f" [{', '.join(e['values'])}]" if e.get("values") else "")
            for e in term.get("matchExpressions") or []]
        w.write(2, f"Term {i}:\t{', '.join(expressions) or '<none>'}\n")


def _csi_source(w: PrefixWriter, csi: dict[str, Any]) -> None:
    """`printCSIPersistentVolumeSource`."""
    w.write(2, "Type:\tCSI (a Container Storage Interface (CSI) volume source)\n")
    w.write(0, f"    Driver:\t{csi.get('driver', '')}\n")
    w.write(0, f"    FSType:\t{csi.get('fsType', '')}\n")
    w.write(0, f"    VolumeHandle:\t{csi.get('volumeHandle', '')}\n")
    w.write(0, f"    ReadOnly:\t{str(bool(csi.get('readOnly'))).lower()}\n")
    attributes = csi.get("volumeAttributes") or {}
    if not attributes:
        w.write(0, "    VolumeAttributes:\t<none>\n")
    for i, (key, value) in enumerate(sorted(attributes.items())):
        w.write(0, ("    VolumeAttributes:\t" if i == 0 else "    \t") + f"{key}={value}\n")


def describe_storage_class(d: Described, w: PrefixWriter) -> None:
    """`StorageClassDescriber`."""
    annotations = d.meta.get("annotations") or {}
    w.write(0, f"Name:\t{d.meta.get('name', '')}\n")
    w.write(0, f"IsDefaultClass:\t{'Yes' if is_default_class(d.obj) else 'No'}\n")
    w.write(0, f"Annotations:\t{format_labels(annotations)}\n")
    w.write(0, f"Provisioner:\t{d.obj.get('provisioner', '')}\n")
    w.write(0, f"Parameters:\t{format_labels(d.obj.get('parameters'))}\n")
    expansion = d.obj.get("allowVolumeExpansion")
    w.write(0, f"AllowVolumeExpansion:\t{'<unset>' if expansion is None else expansion}\n")
    options = d.obj.get("mountOptions") or []
    w.write(0, "MountOptions:\t<none>\n" if not options else "MountOptions:\n")
    for option in options:
        w.write(1, f"{option}\n")
    if d.obj.get("reclaimPolicy"):
        w.write(0, f"ReclaimPolicy:\t{d.obj['reclaimPolicy']}\n")
    if d.obj.get("volumeBindingMode"):
        w.write(0, f"VolumeBindingMode:\t{d.obj['volumeBindingMode']}\n")
    describe_events(w, d.events or [], d.now)


def _users(d: Described) -> list[str]:
    pods_rt = REGISTRY.get("pods")
    assert pods_rt is not None
    pods = d.list(pods_rt, d.meta.get("namespace"))
    name = d.meta.get("name")
    users = [p for p in pods
             if any((v.get("persistentVolumeClaim") or {}).get("claimName") == name
                    for v in (p.get("spec") or {}).get("volumes") or [])]
    owners = {r.get("uid") for r in d.meta.get("ownerReferences") or [] if r.get("kind") == "Pod"}
    users += [p for p in pods if (p.get("metadata") or {}).get("uid") in owners
              and p not in users]
    return sorted((p.get("metadata") or {}).get("name", "") for p in users)


def describe_persistent_volume_claim(d: Described, w: PrefixWriter) -> None:
    spec, status = d.get("spec", default={}), d.get("status", default={})
    w.write(0, f"Name:\t{d.meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{d.meta.get('namespace', '')}\n")
    w.write(0, f"StorageClass:\t{storage_class(d.obj)}\n")
    _status(d, w)
    w.write(0, f"Volume:\t{spec.get('volumeName', '')}\n")
    labels_multiline(w, "Labels", d.meta.get("labels"))
    annotations_multiline(w, "Annotations", d.meta.get("annotations"))
    w.write(0, f"Finalizers:\t{_go_list(d.meta.get('finalizers'))}\n")
    bound = bool(spec.get("volumeName"))
    capacity = (status.get("capacity") or {}).get("storage", "0") if bound else ""
    w.write(0, f"Capacity:\t{capacity}\n")
    w.write(0, f"Access Modes:\t{access_modes(status.get('accessModes')) if bound else ''}\n")
    if spec.get("volumeMode"):
        w.write(0, f"VolumeMode:\t{spec['volumeMode']}\n")
    users = _users(d)
    w.write(0, "Used By:\t" + ("\n\t".join(users) or "<none>") + "\n")
    conditions = status.get("conditions") or []
    if conditions:
        w.write(0, "Conditions:\n")
        w.write(1, "Type\tStatus\tLastProbeTime\tLastTransitionTime\tReason\tMessage\n")
        w.write(1, "----\t------\t-----------------\t------------------\t------\t-------\n")
        for c in conditions:
            w.write(1, f"{c.get('type', '')} \t{c.get('status', '')} \t"
                       f"{rfc1123z(c.get('lastProbeTime'))} \t"
                       f"{rfc1123z(c.get('lastTransitionTime'))} \t{c.get('reason', '')} \t"
                       f"{c.get('message', '')}\n")
    describe_events(w, d.events or [], d.now)
