"""minik.controllers.deployment: the deployment controller and the rules it rolls out by.

Laid out as Kubernetes' `pkg/controller/deployment` and its `util`:

- `controller`: `DeploymentController`, its informer handlers, the
  level-triggered sync and the claiming of ReplicaSets;
- `strategies`: RollingUpdate, Recreate, and scaling a paused or resized
  deployment, as functions of a `Rollout`;
- `rollout`: `Rollout`, one sync's working copies and every write it makes;
- the pure rules, testable without a server: `sizes` (surge,
  unavailability, proportional scaling), `history` (template hash, new
  ReplicaSet, revisions, pruning) and `progress` (status and the Available
  and Progressing conditions).

This package imports none of its modules: the manager imports `controller`.
"""
