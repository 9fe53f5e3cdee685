"""How `minik describe` writes: a readable, kubectl-shaped account of objects and events.

Descriptions are written as kubectl's describers write them: `Key:\\tvalue`
lines indented two spaces per level, then aligned by `TabWriter` with
padding 2, whose column blocks end at any line without a tab. That is why
the output's alignment matches kubectl's line for line. This module holds
the writer, what every description shares (labels, annotations, events) and
the generic layout of every field, as kubectl's fallback prints it; the
kind-specific describers and the command itself live in `describers`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from minik.api.errors import ApiError
from minik.api.resources import ResourceType
from minik.cli.printing import TabWriter
from minik.client.paths import collection_path

if TYPE_CHECKING:
    from minik.client.rest import RestClient

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MAX_ANNOTATION = 140
ACRONYMS = {"API", "URL", "UID", "OSB", "GUID"}


class PrefixWriter:
    """Collects indented description lines; `flush` starts a new alignment region."""

    def __init__(self) -> None:
        self._regions: list[list[str]] = [[]]

    def write(self, level: int, text: str) -> None:
        self._regions[-1].append("  " * level + text)

    def flush(self) -> None:
        self._regions.append([])

    def render(self) -> str:
        writer = TabWriter(minwidth=0, padding=2)
        return "".join(writer.render_text("".join(region)) for region in self._regions)

    def raw(self) -> str:
        """The lines as written, tabs unaligned (kubectl's `printTemplate` for
        `rollout history --revision` writes to a plain buffer)."""
        return "".join("".join(region) for region in self._regions)


@dataclass
class Described:
    """One object being described, with what describers may need to fetch."""

    client: RestClient
    rt: ResourceType
    obj: dict[str, Any]
    events: list[dict[str, Any]] | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def meta(self) -> dict[str, Any]:
        return self.obj.get("metadata") or {}

    def get(self, *path: str, default: Any = None) -> Any:
        value: Any = self.obj
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return default
            value = value[key]
        return value

    def list(self, rt: ResourceType, namespace: str | None, **params: Any) -> list[dict]:
        try:
            listed = self.client.request("GET", collection_path(rt, namespace),
                                         params={**params, "limit": 500})
        except ApiError:
            return []
        return listed.get("items") or []


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def rfc1123z(value: str | None) -> str:
    """Go's `time.RFC1123Z` in local time; the zero time when unset."""
    moment = parse_time(value)
    if moment is None:
        return "Mon, 01 Jan 0001 00:00:00 +0000"
    return moment.astimezone().strftime("%a, %d %b %Y %H:%M:%S %z")


def human_duration(seconds: float) -> str:
    """apimachinery's `duration.HumanDuration`."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def since(value: str | None, now: datetime) -> str:
    moment = parse_time(value)
    return "<unknown>" if moment is None else human_duration((now - moment).total_seconds())


def labels_multiline(w: PrefixWriter, title: str, labels: dict[str, Any] | None,
                     indent: str = "", inner: str = "\t") -> None:
    w.write(0, f"{indent}{title}:{inner}")
    if not labels:
        w.write(0, "<none>\n")
        return
    for i, key in enumerate(sorted(labels)):
        if i:
            w.write(0, indent + inner)
        w.write(0, f"{key}={labels[key]}\n")


def annotations_multiline(w: PrefixWriter, title: str, annotations: dict[str, Any] | None
                          ) -> None:
    w.write(0, f"{title}:\t")
    keys = sorted(k for k in annotations or {} if k != LAST_APPLIED)
    if not keys:
        w.write(0, "<none>\n")
        return
    for i, key in enumerate(keys):
        if i:
            w.write(0, "\t")
        value = str(annotations[key]).removesuffix("\n")  # type: ignore[index]
        if len(value) + len(key) + 2 > MAX_ANNOTATION or "\n" in value:
            w.write(0, f"{key}:\n")
            for part in value.split("\n"):
                short = part if len(part) <= MAX_ANNOTATION - 2 else \
                    part[:MAX_ANNOTATION - 2] + "..."
                w.write(0, f"\t  {short}\n")
        else:
            w.write(0, f"{key}: {value}\n")


def _event_age(e: dict[str, Any], now: datetime) -> str:
    first = since(e.get("eventTime") or e.get("firstTimestamp"), now)
    series = e.get("series") or {}
    if series:
        return f"{since(series.get('lastObservedTime'), now)} (x{series.get('count')} over {first})"
    if (e.get("count") or 0) > 1:
        return f"{since(e.get('lastTimestamp'), now)} (x{e['count']} over {first})"
    return first


def _event_time(e: dict[str, Any]) -> datetime:
    moment = parse_time(e.get("lastTimestamp") or e.get("eventTime"))
    return moment or datetime.min.replace(tzinfo=UTC)


def describe_events(w: PrefixWriter, events: list[dict[str, Any]], now: datetime) -> None:
    """kubectl's `DescribeEvents`: a table aligned on its own, oldest first."""
    if not events:
        w.write(0, "Events:\t<none>\n")
        return
    w.flush()
    w.write(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n")
    w.write(1, "----\t------\t----\t----\t-------\n")
    for e in sorted(events, key=_event_time):
        source = (e.get("source") or {}).get("component") or e.get("reportingComponent") or ""
        w.write(1, f"{e.get('type', '')}\t{e.get('reason', '')}\t{_event_age(e, now)}\t"
                   f"{source}\t{str(e.get('message', '')).strip()}\n")


def event_selectors(d: Described) -> list[tuple[str | None, str]]:
    """(events namespace, field selector) pairs kubectl's searchEvents uses; a node's
    events are looked up by its uid and by its name, as kubelets report them."""
    meta = d.meta
    namespace = meta.get("namespace", "") if d.rt.namespaced else ""
    uids = [meta.get("uid", "")] + ([meta.get("name", "")] if d.rt.kind == "Node" else [])
    selectors = []
    for uid in uids:
        terms = {"involvedObject.name": meta.get("name", ""),
                 "involvedObject.namespace": namespace}
        if d.rt.kind != "Pod":
            terms["involvedObject.kind"] = d.rt.kind
        if uid:
            terms["involvedObject.uid"] = uid
        selectors.append((namespace or None,
                          ",".join(f"{k}={v}" for k, v in sorted(terms.items()))))
    return selectors


def fetch_events(d: Described) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for namespace, selector in event_selectors(d):
        path = f"/api/v1/namespaces/{namespace}/events" if namespace else "/api/v1/events"
        try:
            listed = d.client.request("GET", path,
                                      params={"fieldSelector": selector, "limit": 500})
        except ApiError:
            continue
        events += [e for e in listed.get("items") or [] if e not in events]
    return events


def _camel_split(word: str) -> list[str]:
    runs = re.findall(r"[a-z]+|[A-Z]+|[0-9]+|[^a-zA-Z0-9]+", word)
    for i in range(len(runs) - 1):
        if runs[i][0].isupper() and runs[i + 1][0].islower():
            runs[i + 1] = runs[i][-1] + runs[i + 1]
            runs[i] = runs[i][:-1]
    return [r for r in runs if r]


def smart_label(name: str) -> str:
    """kubectl's `smartLabelFor`: `creationTimestamp` -> `Creation Timestamp`."""
    if any(not (c.isalpha() or c == "-") for c in name):
        return name
    parts = [p for p in _camel_split(name) if p != "_"]
    return " ".join(p.upper() if p.upper() in ACRONYMS else p[:1].upper() + p[1:]
                    for p in parts)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    return str(value)


def unstructured(w: PrefixWriter, level: int, content: dict[str, Any], prefix: str,
                 skip: set[str]) -> None:
    """kubectl's `printUnstructuredContent`: every field, sorted, indented by depth."""
    for key in sorted(content):
        value, path = content[key], f"{prefix}.{key}"
        if path in skip:
            continue
        if isinstance(value, dict):
            w.write(level, f"{smart_label(key)}:\n")
            unstructured(w, level + 1, value, path, skip)
        elif isinstance(value, list):
            w.write(level, f"{smart_label(key)}:\n")
            for child in value:
                if isinstance(child, dict):
                    unstructured(w, level + 1, child, path, skip)
                else:
                    w.write(level + 1, f"{_scalar(child)}\n")
        else:
            w.write(level, f"{smart_label(key)}:\t{_scalar(value)}\n")


def describe_generic(d: Described, w: PrefixWriter) -> None:
    w.write(0, f"Name:\t{d.meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{d.meta.get('namespace', '')}\n")
    labels_multiline(w, "Labels", d.meta.get("labels"))
    annotations_multiline(w, "Annotations", d.meta.get("annotations"))
    unstructured(w, 0, d.obj, "", {".metadata.managedFields", ".metadata.name",
                                   ".metadata.namespace", ".metadata.labels",
                                   ".metadata.annotations"})
    describe_events(w, d.events or [], d.now)


Describer = Callable[[Described, PrefixWriter], None]
