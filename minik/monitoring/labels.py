"""Label names as Prometheus makes them from Kubernetes' keys.

Prometheus' Kubernetes discovery and kube-state-metrics both turn a label or
annotation key into a label name by replacing every character that is not
a letter, digit or underscore with `_` (`strutil.SanitizeLabelName`):
`app.kubernetes.io/name` becomes `app_kubernetes_io_name`.
"""

from __future__ import annotations

import re

_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def sanitize_label_name(key: str) -> str:
    return _INVALID.sub("_", key)
