"""minik.controllers.statefulset: the StatefulSet controller and the rules it keeps.

Laid out after Kubernetes' `pkg/controller/statefulset` (its history, shared
with the DaemonSet controller, is `minik.controllers.history` and
`minik.controllers.revisioncontrol`):

- `controller`: `StatefulSetController`, its informer handlers,
  expectations, the level-triggered sync and the claiming of pods;
- `control`: `SetUpdate`, one pass of the ordered (or parallel) creation,
  deletion and rolling update of a set's pods;
- `podcontrol`: the writes, of pods and claims;
- the pure rules, testable without a server: `identity` (ordinals, names,
  labels, claims, the pod states that gate order), `retention` (the claims' owner
  references for `persistentVolumeClaimRetentionPolicy`) and `status`.

This package imports none of its modules: the manager imports `controller`.
"""
