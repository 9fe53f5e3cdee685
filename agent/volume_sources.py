"""What each volume source holds: files of configMap, secret, downwardAPI and
projected volumes, and how they are written (hostPaths: `agent.host_paths`).

A payload maps a relative file path to its bytes and mode. Building one is
pure apart from the lookups (watch caches): it never touches the volume
on disk, so the volume manager can compare a payload's digest with the one
it last wrote and skip the disk entirely when nothing changed.

`write_atomic` puts a payload on disk the way the kubelet's AtomicWriter
does: the files live in a timestamped directory `..<ts>`, the `..data`
symlink points at it, and each top-level name is a symlink
`name -> ..data/name`. An update writes a complete new directory, then
swaps `..data` with one rename, so a reader sees all of the old files or
all of the new ones, never a mix; the previous generation stays on disk
until the next update, for readers that resolved `..data` just before.
Containers bind-mount the volume directory, not the files, so the swap
shows through into running containers. A `subPath` mount binds one
resolved file and so, as in Kubernetes, does not see updates.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agent.env import Lookup
from minik.api.meta import meta_of, namespace_of
from minik.api.models.quantity import parse_quantity
from minik.api.objects import JsonObject, Pod

DEFAULT_MODE = 0o644
DATA = "..data"
_DATA_TMP = "..data_tmp"


class SourceError(Exception):
    """A required ConfigMap, Secret or key is missing, or an item is malformed."""


@dataclass(frozen=True, slots=True)
class File:
    data: bytes
    mode: int


Payload = dict[str, File]


def digest(payload: Payload) -> str:
    h = hashlib.sha256()
    for path in sorted(payload):
        f = payload[path]
        h.update(f"{path}\0{f.mode & 0o777}\0{len(f.data)}\0".encode())
        h.update(f.data)
    return h.hexdigest()


def _check_path(path: str) -> None:
    parts = path.split("/")
    if not path or path.startswith("/") or ".." in parts or parts[0].startswith(".."):
        raise SourceError(f'invalid path "{path}": must be relative, without ".." '
                          'and not start with ".."')


def _check_payload(payload: Payload) -> None:
    for path in payload:
        _check_path(path)
        parents = path.split("/")[:-1]
        for i in range(1, len(parents) + 1):
            if "/".join(parents[:i]) in payload:
                raise SourceError(f'path "{path}" conflicts with file "{"/".join(parents[:i])}"')


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise SourceError(f"{what} is not valid base64") from e


def configmap_values(obj: JsonObject) -> dict[str, bytes]:
    values = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    for k, v in (obj.get("binaryData") or {}).items():
        values[k] = _b64(v, f"binaryData key {k}")
    return values


def secret_values(obj: JsonObject) -> dict[str, bytes]:
    return {k: _b64(v, f"data key {k}") for k, v in (obj.get("data") or {}).items()}


def keyed_files(kind: str, source: JsonObject, namespace: str, lookup: Lookup,
                default_mode: int) -> Payload:
    """Files of a configMap or secret source: every key, or the listed `items`."""
    name = source.get("name", "")
    optional = bool(source.get("optional"))
    obj = lookup(namespace, name)
    if obj is None:
        if optional:
            return {}
        raise SourceError(f'{kind.lower()} "{name}" not found')
    values = configmap_values(obj) if kind == "ConfigMap" else secret_values(obj)
    items = source.get("items")
    if not items:
        return {key: File(data, default_mode) for key, data in values.items()}
    files: Payload = {}
    for item in items:
        key = item.get("key", "")
        if key not in values:
            if optional:
                continue
            raise SourceError(f"couldn't find key {key} in {kind} {namespace}/{name}")
        files[item.get("path") or key] = File(values[key], item.get("mode", default_mode))
    return files


def format_map(values: dict[str, str]) -> str:
    """Labels or annotations as the kubelet writes them: sorted `key="value"` lines."""
    return "\n".join(f"{k}={json.dumps(values[k], ensure_ascii=False)}" for k in sorted(values))


def _field(pod: Pod, path: str) -> str:
    md = meta_of(pod)
    maps = {"metadata.labels": md.get("labels") or {},
            "metadata.annotations": md.get("annotations") or {}}
    if path in maps:
        return format_map(maps[path])
    for prefix, values in maps.items():
        if path.startswith(prefix + "['") and path.endswith("']"):
            return str(values.get(path[len(prefix) + 2:-2], ""))
    simple = {"metadata.name": "name", "metadata.namespace": "namespace", "metadata.uid": "uid"}
    if path in simple:
        return str(md.get(simple[path], ""))
    raise SourceError(f'unsupported fieldPath "{path}" in a downwardAPI volume')


def _node_capacity(resource: str) -> int:
    if resource == "cpu":
        return os.cpu_count() or 1
    if resource == "memory":
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return shutil.disk_usage("/").total


def _resource(pod: Pod, ref: JsonObject) -> str:
    """A container's limit or request, divided by `divisor` and rounded up.

    As in Kubernetes, a missing limit is the node's capacity and a missing
    request is the limit (or zero).
    """
    spec = pod.get("spec") or {}
    wanted = ref.get("containerName", "")
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    container = next((c for c in containers if c.get("name") == wanted), None)
    if container is None:
        raise SourceError(f'resourceFieldRef names unknown container "{wanted}"')
    section, _, resource = ref.get("resource", "").partition(".")
    if section not in ("limits", "requests") or resource not in (
            "cpu", "memory", "ephemeral-storage"):
        raise SourceError(f'unsupported resource "{ref.get("resource", "")}"')
    resources = container.get("resources") or {}
    limit = (resources.get("limits") or {}).get(resource)
    value = (resources.get("requests") or {}).get(resource, limit) if section == "requests" \
        else limit
    try:
        amount = parse_quantity(value) if value is not None else (
            _node_capacity(resource) if section == "limits" else 0)
        divisor = parse_quantity(ref.get("divisor") or "1")
    except ValueError as e:
        raise SourceError(str(e)) from e
    if divisor <= 0:
        raise SourceError(f'invalid divisor "{ref.get("divisor")}"')
    return str(math.ceil(amount / divisor))


def downward_files(items: list[JsonObject], pod: Pod,
                   default_mode: int) -> Payload:
    files: Payload = {}
    for item in items:
        if "fieldRef" in item:
            value = _field(pod, (item["fieldRef"] or {}).get("fieldPath", ""))
        elif "resourceFieldRef" in item:
            value = _resource(pod, item["resourceFieldRef"] or {})
        else:
            raise SourceError(f'downwardAPI item "{item.get("path", "")}" has no source')
        files[item.get("path", "")] = File(value.encode(), item.get("mode", default_mode))
    return files


TokenLookup = Callable[[Pod, JsonObject], str | None]
"""The pod's current token for a `serviceAccountToken` source (`agent.sa_tokens`)."""


def volume_payload(kind: str, source: JsonObject, pod: Pod, *,
                   configmaps: Lookup, secrets: Lookup,
                   tokens: TokenLookup | None = None) -> Payload:
    """The files of a configMap, secret, downwardAPI or projected volume."""
    namespace = namespace_of(pod) or "default"
    mode = source.get("defaultMode", DEFAULT_MODE)
    if kind == "configMap":
        files = keyed_files("ConfigMap", source, namespace, configmaps, mode)
    elif kind == "secret":
        files = keyed_files("Secret", {**source, "name": source.get("secretName", "")},
                            namespace, secrets, mode)
    elif kind == "downwardAPI":
        files = downward_files(source.get("items") or [], pod, mode)
    else:
        files = {}
        for part in source.get("sources") or []:
            files.update(_projection(part, pod, namespace, configmaps, secrets, mode, tokens))
    _check_payload(files)
    return files


def _projection(part: JsonObject, pod: Pod, namespace: str,
                configmaps: Lookup, secrets: Lookup, mode: int,
                tokens: TokenLookup | None) -> Payload:
    """One source of a projected volume; trust-bundle sources (and token sources when no
    one gives tokens) yield no file."""
    if "configMap" in part:
        return keyed_files("ConfigMap", part["configMap"] or {}, namespace, configmaps, mode)
    if "secret" in part:
        return keyed_files("Secret", part["secret"] or {}, namespace, secrets, mode)
    if "downwardAPI" in part:
        return downward_files((part["downwardAPI"] or {}).get("items") or [], pod, mode)
    if "serviceAccountToken" in part and tokens is not None:
        source = part["serviceAccountToken"] or {}
        token = tokens(pod, source)
        if token is None:
            raise SourceError("the service account token is not available yet")
        return {source.get("path") or "token": File(token.encode(), mode)}
    return {}


def read_current(target: Path) -> Payload | None:
    """The payload under `..data`, or None when the volume was never written."""
    data = target / DATA
    if not data.is_dir():
        return None
    files: Payload = {}
    for dirpath, _, names in os.walk(data):
        for name in names:
            path = Path(dirpath, name)
            files[path.relative_to(data).as_posix()] = File(
                path.read_bytes(), path.stat().st_mode & 0o777)
    return files


def _same(a: Payload, b: Payload) -> bool:
    return a.keys() == b.keys() and all(
        a[p].data == b[p].data and a[p].mode & 0o777 == b[p].mode & 0o777 for p in a)


def _write_dir(target: Path, payload: Payload) -> Path:
    # The kubelet's atomic writer names each version of the data after the moment it was
    # written; only a name (mkdtemp makes it unique), which no one reads as a time.
    stamp = datetime.now(UTC).strftime("..%Y_%m_%d_%H_%M_%S.")
    new = Path(tempfile.mkdtemp(prefix=stamp, dir=target))
    new.chmod(0o755)
    for path, f in payload.items():
        file = new / path
        for parent in reversed(file.relative_to(new).parents[:-1]):
            (new / parent).mkdir(exist_ok=True)
            (new / parent).chmod(0o755)
        file.write_bytes(f.data)
        file.chmod(f.mode & 0o777)
    return new


def _replace_link(link: Path, points_to: str) -> None:
    tmp = link.with_name(_DATA_TMP if link.name == DATA else f"..{link.name}_tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(points_to, tmp)
    os.replace(tmp, link)


def swap(target: Path, new_dir: str) -> None:
    """Point `..data` at `new_dir` in one rename: the moment the update becomes visible."""
    _replace_link(target / DATA, new_dir)


def _link_visible(target: Path, payload: Payload) -> None:
    tops = {path.split("/")[0] for path in payload}
    for top in tops:
        link = target / top
        wanted = f"{DATA}/{top}"
        if link.is_symlink() and os.readlink(link) == wanted:
            continue
        if link.is_dir() and not link.is_symlink():
            shutil.rmtree(link)
        _replace_link(link, wanted)
    for entry in target.iterdir():
        if not entry.name.startswith("..") and entry.name not in tops and entry.is_symlink():
            entry.unlink()


def _remove_stale(target: Path, keep: set[str]) -> None:
    for entry in target.iterdir():
        if entry.name.startswith("..") and entry.name not in keep | {DATA}:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def write_atomic(target: Path, payload: Payload) -> bool:
    """Make `target` hold exactly `payload`; True when the content changed.

    The generation `..data` pointed at before the swap is kept until the
    next change: a reader that resolved `..data` just before the swap
    still finds its file. Older generations and leftovers of an
    interrupted write are removed.
    """
    _check_payload(payload)
    current = read_current(target)
    if current is not None and _same(current, payload):
        _link_visible(target, payload)
        return False
    previous = os.readlink(target / DATA) if (target / DATA).is_symlink() else ""
    new = _write_dir(target, payload)
    swap(target, new.name)
    _link_visible(target, payload)
    _remove_stale(target, {new.name, previous})
    return True
