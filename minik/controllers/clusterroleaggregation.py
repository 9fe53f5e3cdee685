"""The ClusterRole aggregation controller: an aggregated role holds its parts' rules.

Kubernetes' `pkg/controller/clusterroleaggregation`: a ClusterRole with an
`aggregationRule` gets, as its `rules`, the rules of every other
ClusterRole one of its `clusterRoleSelectors` matches, in the order of
their names, each rule once. That is how `admin`, `edit` and `view`
grow when a ClusterRole labelled `rbac.authorization.k8s.io/aggregate-to-view:
"true"` appears (and shrink when it goes). Any ClusterRole change may
change any aggregate, so every change enqueues every aggregated role;
`sync` is level-triggered and writes only when the rules differ.
"""

from __future__ import annotations

import logging
from typing import Any

from minik.api.errors import ApiError
from minik.api.meta import meta_of, name_of
from minik.api.objects import AnyObject
from minik.api.resources import CLUSTERROLES
from minik.api.selectors.labels import LabelSelector
from minik.controllers.context import ControllerContext
from minik.controllers.serviceaccount import NOTHING_LEFT_TO_DO
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)


def aggregated_rules(role: dict[str, Any], roles: list[dict[str, Any]]) -> list[Any]:
    """The rules `role`'s aggregation rule selects from `roles`, each once, by role name."""
    selectors = [LabelSelector.from_spec(s) for s in
                 (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []]
    rules: list[Any] = []
    for other in sorted(roles, key=name_of):
        if name_of(other) == name_of(role):
            continue
        labels = meta_of(other).get("labels") or {}
        if any(selector.matches(labels) for selector in selectors):
            rules += [r for r in other.get("rules") or [] if r not in rules]
    return rules


class ClusterRoleAggregationController:
    """Fills the `rules` of every ClusterRole that has an `aggregationRule`."""

    name = "clusterrole-aggregation"

    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.informers = ctx.informers
        self.metrics = ctx.metrics
        self.roles = ctx.informers.get(CLUSTERROLES)
        self.queue = WorkQueue(self.name, metrics=ctx.metrics, clock=ctx.clock)
        self.roles.add_handler(self._changed, lambda _old, new: self._changed(new),
                               self._changed)

    async def run(self) -> None:
        await self.informers.wait_synced(CLUSTERROLES)
        self._changed(None)
        await run_workers(self.queue, self.sync, workers=1, metrics=self.metrics)

    def _changed(self, _role: AnyObject | None) -> None:
        for role in self.roles.indexer.list():
            if role.get("aggregationRule") is not None:
                self.queue.add(name_of(role))

    async def sync(self, name: str) -> None:
        role = self.roles.indexer.get(name)
        if role is None or role.get("aggregationRule") is None:
            return
        rules = aggregated_rules(role, self.roles.indexer.list())
        if rules == (role.get("rules") or []):
            return
        try:
            await self.client.patch(CLUSTERROLES, None, name, {"rules": rules},
                                    patch_type="merge")
        except ApiError as e:
            if e.code not in NOTHING_LEFT_TO_DO:
                raise
        log.info("%s: %s now aggregates %d rules", self.name, name, len(rules))
