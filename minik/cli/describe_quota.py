"""`describe` for a namespace's quota objects: kubectl's `describeQuota` and
`describeLimitRange`, and the sections `describe namespace` adds for them
(`DescribeResourceQuotas`, `DescribeLimitRanges`)."""

from __future__ import annotations

from typing import Any

from minik.api.resources import LIMITRANGES, RESOURCEQUOTAS
from minik.cli.describe import Described, PrefixWriter

LIMIT_COLUMNS = (("min", "Min"), ("max", "Max"), ("defaultRequest", "Default Request"),
                 ("default", "Default Limit"), ("maxLimitRequestRatio",
                                                "Max Limit/Request Ratio"))
LIMIT_HEADER = "Type\tResource\t" + "\t".join(title for _, title in LIMIT_COLUMNS) + "\n"
LIMIT_RULE = "----\t--------\t" + "\t".join("-" * len(title) for _, title in LIMIT_COLUMNS) + "\n"


def _quota_rows(w: PrefixWriter, level: int, quota: dict[str, Any]) -> None:
    status = quota.get("status") or {}
    hard, used = status.get("hard") or {}, status.get("used") or {}
    for name in sorted(hard):
        w.write(level, f"{name}\t{used.get(name, '0')}\t{hard[name]}\n")


def _limit_rows(w: PrefixWriter, prefix: str, limit_range: dict[str, Any]) -> None:
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        names = sorted({name for key, _ in LIMIT_COLUMNS for name in item.get(key) or {}})
        for name in names:
            cells = [str((item.get(key) or {}).get(name, "-")) for key, _ in LIMIT_COLUMNS]
            w.write(0, f"{prefix}{item.get('type', '')}\t{name}\t" + "\t".join(cells) + "\n")


def describe_resource_quota(d: Described, w: PrefixWriter) -> None:
    w.write(0, f"Name:\t{d.meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{d.meta.get('namespace', '')}\n")
    scopes = sorted(d.get("spec", "scopes", default=[]) or [])
    if scopes:
        w.write(0, f"Scopes:\t{', '.join(scopes)}\n")
    w.write(0, "Resource\tUsed\tHard\n")
    w.write(0, "--------\t----\t----\n")
    _quota_rows(w, 0, d.obj)


def describe_limit_range(d: Described, w: PrefixWriter) -> None:
    w.write(0, f"Name:\t{d.meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{d.meta.get('namespace', '')}\n")
    w.write(0, LIMIT_HEADER)
    w.write(0, LIMIT_RULE)
    _limit_rows(w, "", d.obj)


def describe_namespace_policies(d: Described, w: PrefixWriter) -> None:
    """The quota and limit sections closing `describe namespace`."""
    name = str(d.meta.get("name", ""))
    quotas = sorted(d.list(RESOURCEQUOTAS, name),
                    key=lambda q: str((q.get("metadata") or {}).get("name", "")))
    w.write(0, "\n")
    if not quotas:
        w.write(0, "No resource quota.\n")
    else:
        w.write(0, "Resource Quotas\n")
        for quota in quotas:
            w.write(1, f"Name:\t{(quota.get('metadata') or {}).get('name', '')}\n")
            scopes = sorted((quota.get("spec") or {}).get("scopes") or [])
            if scopes:
                w.write(1, f"Scopes:\t{', '.join(scopes)}\n")
            w.write(1, "Resource\tUsed\tHard\n")
            w.write(1, "--------\t---\t---\n")
            _quota_rows(w, 1, quota)
    limit_ranges = d.list(LIMITRANGES, name)
    w.write(0, "\n")
    if not limit_ranges:
        w.write(0, "No LimitRange resource.\n")
        return
    w.write(0, "Resource Limits\n " + LIMIT_HEADER)
    w.write(0, " " + LIMIT_RULE)
    for limit_range in limit_ranges:
        _limit_rows(w, " ", limit_range)
