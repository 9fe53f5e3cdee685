"""How a delete reaches an object's dependents: the garbage collector's finalizers.

The API server and the garbage collector agree on these names, as
Kubernetes' registry and collector agree on `metav1`'s: a delete with
propagation policy Orphan or Foreground only leaves a finalizer on the
owner (`orphan`, `foregroundDeletion`), and the collector acts on it and
removes it. Kinds the collector does not watch (events, as Kubernetes
ignores them) get no such finalizer, since nothing would ever remove it.
"""

from __future__ import annotations

ORPHAN = "orphan"
"""`metav1.FinalizerOrphanDependents`: strip the owner's references from its dependents."""
FOREGROUND = "foregroundDeletion"
"""`metav1.FinalizerDeleteDependents`: delete the dependents before the owner."""
GC_FINALIZERS = frozenset({ORPHAN, FOREGROUND})
UNCOLLECTED_KINDS = frozenset({"Event"})
"""Kinds the garbage collector does not watch: no GC finalizer is set on them."""
