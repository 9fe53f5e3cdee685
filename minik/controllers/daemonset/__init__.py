"""minik.controllers.daemonset: the DaemonSet controller, after Kubernetes' `pkg/controller/daemon`.

- `nodes`: which nodes should run a daemon pod, and the pod made for a node
  (`daemon/util`: its node affinity and default tolerations).
- `manage`: what one node needs of the DaemonSet's pods (`podsShouldBeOnNode`).
- `update`: the RollingUpdate strategy's choice of old pods to delete and
  nodes to surge onto (`update.go`).
- `status`: the status counted over nodes (`updateDaemonSetStatus`).
- `controller`: `DaemonSetController`: handlers, sync, revisions, and the
  writes.
"""
