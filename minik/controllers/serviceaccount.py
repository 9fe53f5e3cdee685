"""The ServiceAccount controller: every active namespace has a `default` ServiceAccount.

Kubernetes' `serviceaccounts-controller` (`pkg/controller/serviceaccount`):
clients that create pods, and tools that wait for a namespace to be usable,
expect `default` to be there. Handlers only compute keys: a namespace that
is added or changes is queued under its name, and so is the namespace of a
managed ServiceAccount that is deleted, so that it comes back.

`sync(namespace)` is level-triggered: it reads the namespace from the cache
and does nothing unless it is Active (a Terminating namespace refuses new
content, and is being emptied); then it creates each managed ServiceAccount
that the cache does not hold. A create that finds one already there (the
cache lagged) or finds the namespace terminating or gone has nothing left to
do; any other failure is raised, and the work queue retries with backoff.
Tokens and their mounting into pods are not this controller's business.
"""

from __future__ import annotations

import logging

from minik.api.errors import ApiError
from minik.api.meta import is_being_deleted, meta_of, name_of
from minik.api.objects import AnyObject, KubeObject, Namespace
from minik.api.resources import NAMESPACES, SERVICEACCOUNTS
from minik.controllers.context import ControllerContext
from minik.machinery.informer import Informer
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)

DEFAULT_SERVICE_ACCOUNTS = ("default",)
DEFAULT_WORKERS = 1
NOTHING_LEFT_TO_DO = (403, 404, 409)
"""A create answering these found the account there, or the namespace closing or gone."""


def is_active(namespace: Namespace) -> bool:
    """Active, as the namespace's phase says; a namespace being deleted is not."""
    phase = (namespace.get("status") or {}).get("phase", "Active")
    return phase == "Active" and not is_being_deleted(namespace)


class ServiceAccountsController:
    """Creates the managed ServiceAccounts (`default`) in every active namespace."""

    name = "serviceaccount"

    def __init__(
        self, ctx: ControllerContext, *, workers: int = DEFAULT_WORKERS,
        service_accounts: tuple[str, ...] = DEFAULT_SERVICE_ACCOUNTS,
    ) -> None:
        self.client = ctx.client
        self.informers = ctx.informers
        self.metrics = ctx.metrics
        self.workers = workers
        self.managed = service_accounts
        self.namespaces: Informer[Namespace] = ctx.informers.get(NAMESPACES)
        self.serviceaccounts = ctx.informers.get(SERVICEACCOUNTS)
        self.queue = WorkQueue(self.name, metrics=ctx.metrics, clock=ctx.clock)
        self.namespaces.add_handler(self._namespace_changed,
                                    lambda _old, new: self._namespace_changed(new))
        self.serviceaccounts.add_handler(on_delete=self._service_account_deleted)

    async def run(self) -> None:
        """Wait for the caches, then check every namespace and follow changes until cancelled."""
        await self.informers.wait_synced(NAMESPACES, SERVICEACCOUNTS)
        for namespace in self.namespaces.indexer.list():
            self._namespace_changed(namespace)
        await run_workers(self.queue, self.sync, workers=self.workers, metrics=self.metrics)

    def _namespace_changed(self, namespace: Namespace) -> None:
        self.queue.add(name_of(namespace))

    def _service_account_deleted(self, account: AnyObject) -> None:
        md = meta_of(account)
        if md.get("name") in self.managed and md.get("namespace"):
            self.queue.add(md["namespace"])

    async def sync(self, name: str) -> None:
        """Create the managed ServiceAccounts that an active namespace lacks."""
        namespace = self.namespaces.indexer.get(name)
        if namespace is None or not is_active(namespace):
            return
        for account in self.managed:
            if self.serviceaccounts.indexer.get_by(name, account) is None:
                await self._create(name, account)

    async def _create(self, namespace: str, account: str) -> None:
        body: KubeObject = {"apiVersion": "v1", "kind": "ServiceAccount",
                            "metadata": {"name": account, "namespace": namespace}}
        try:
            await self.client.create(SERVICEACCOUNTS, namespace, body)
        except ApiError as e:
            if e.code not in NOTHING_LEFT_TO_DO:
                raise
            return
        log.info("%s: created service account %s/%s", self.name, namespace, account)
