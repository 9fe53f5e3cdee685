"""Subresources with rules of their own, one module each.

`binding` (pods/binding: the scheduler sets a pod's node), `eviction`
(pods/eviction: a delete that respects PodDisruptionBudgets) and `scale` (a
workload's replicas as an autoscaling/v1 Scale). `status` has no module: its
one rule, that the main resource keeps the status and the `status`
subresource keeps everything else, is `lifecycle.merge_for_update`'s. The
streaming subresources (log, exec, attach) are the node agent's, reached
through `minik.apiserver.proxy`.
"""
