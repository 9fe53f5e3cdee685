"""Per-kind table printers: the columns and cells `kubectl get` shows.

kubectl has no printers of its own any more: it prints the cells of the
server's Table verbatim. So each kind here has one small function, registered
with its columns by `@printer`, that turns an object into finished cells,
following upstream `pkg/printers/internalversion/printers.go`. The server
prints wide (priority 1) cells too; kubectl drops them unless `-o wide`.
Where server-side defaulting would have filled a field (a Service's type, a
Deployment's replicas), a missing field prints as its Kubernetes default.

One module per kind family (`pods`, `workloads`, `services`, `storage`,
`cluster`, `metrics`, `quota`, `rbac`); `base` holds the registry and the cells they share, and
`formatting` the conventions (ages, `<none>`, labels) they all follow.
Importing this package registers every printer.
"""

from __future__ import annotations

from minik.api.printers import cluster, metrics, pods, quota, rbac, services, storage, workloads
from minik.api.printers.base import DEFAULT, PRINTERS, Printer

__all__ = ["DEFAULT", "PRINTERS", "Printer", "cluster", "metrics", "pods", "quota", "rbac",
           "services", "storage", "workloads"]
