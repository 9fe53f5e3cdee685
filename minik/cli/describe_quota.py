"""`describe` for a namespace's quota objects: kubectl's `describeQuota` and
`describeLimitRange`."""

from __future__ import annotations

from minik.cli.describe import Described, PrefixWriter

LIMIT_COLUMNS = (("min", "Min"), ("max", "Max"), ("defaultRequest", "Default Request"),
                 ("default", "Default Limit"), ("maxLimitRequestRatio",
                                                "Max Limit/Request Ratio"))


def describe_resource_quota(d: Described, w: PrefixWriter) -> None:
    w.write(0, f"Name:\t{d.meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{d.meta.get('namespace', '')}\n")
    scopes = sorted(d.get("spec", "scopes", default=[]) or [])
    if scopes:
        w.write(0, f"Scopes:\t{', '.join(scopes)}\n")
    hard, used = d.get("status", "hard", default={}), d.get("status", "used", default={})
    w.write(0, "Resource\tUsed\tHard\n")
    w.write(0, "--------\t----\t----\n")
    for name in sorted(hard):
        w.write(0, f"{name}\t{used.get(name, '0')}\t{hard[name]}\n")


def describe_limit_range(d: Described, w: PrefixWriter) -> None:
    w.write(0, f"Name:\t{d.meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{d.meta.get('namespace', '')}\n")
    w.write(0, "Type\tResource\t" + "\t".join(title for _, title in LIMIT_COLUMNS) + "\n")
    w.write(0, "----\t--------\t" + "\t".join("-" * len(title) for _, title in LIMIT_COLUMNS)
            + "\n")
    for item in d.get("spec", "limits", default=[]) or []:
        names = sorted({name for key, _ in LIMIT_COLUMNS for name in item.get(key) or {}})
        for name in names:
            cells = [str((item.get(key) or {}).get(name, "-")) for key, _ in LIMIT_COLUMNS]
            w.write(0, f"{item.get('type', '')}\t{name}\t" + "\t".join(cells) + "\n")
