"""The disruption controller: each PodDisruptionBudget's status, as Kubernetes' computes it.

Shaped like Kubernetes' `pkg/controller/disruption`:

- `budget`: the pure arithmetic: how many pods are expected and how many
  must stay healthy (`desired_health`), which evictions still count as
  in flight (`disrupted_pod_map`, `count_healthy`), and the status and the
  `DisruptionAllowed` condition they make (`budget_status`, `failed_status`).
- `finders`: the scale of the controllers that own a budget's pods
  (Deployment through its ReplicaSet, ReplicaSet, StatefulSet,
  ReplicationController, any other kind through its `scale` subresource),
  needed when a budget is a percentage or a `maxUnavailable`.
- `controller`: `DisruptionController`: handlers that queue budgets, the
  level-triggered sync that writes the status through the `status`
  subresource, and the fail-safe status (`SyncFailed`) when a sync fails.

The eviction subresource in the API server reads the status this
controller writes and records `disruptedPods` in it.
"""
