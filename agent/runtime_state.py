"""The runtime state a pod's sync plans on, learnt at the least cost to the engine.

A sync plans on what the runtime holds for its pod, acts, and plans again
(`agent.sync`). Learning that state is engine time the raw containers do
not pay, so each look is as small as it can be while staying true:

- Before acting, the pod's containers from a list of the instance that
  began after the sync asked (`agent.lister`, shared by everyone asking
  at once). A pod's first sync here need not wait for one: nothing of
  this agent has touched the pod yet, so its containers can only be ones
  an earlier agent left, and every list begun since this object was made
  shows those; the last such list will do. Should an earlier agent's
  create still be in flight meanwhile, the engine's name uniqueness stops
  a duplicate (`DockerRuntime.create` reclaims a stale name or refuses a
  running one).
- After acting, when the plan only added containers (a first sandbox,
  containers started in it): the state before plus an inspect of each
  container the sync made, as the kubelet asks for its new sandbox's
  status instead of relisting. Anything else (kills, removals, a sandbox
  replaced) lists again. What others did to the pod meanwhile (a crash,
  a `docker rm`) the relist sees: the pod settles on the fingerprint of
  what it knows, and the relist wakes it when the engine says otherwise.

Measured with `bench/pod_startup.py` on a 2-core machine with 50-200 of
the instance's containers: a list took 7-80 ms (more under load) and a
pod's start had three of them on its path, each waiting for any list
already under way; an inspect of one container takes a few ms.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from agent.lister import ContainerLister
from agent.plan import PodActions
from agent.podstate import PodRuntimeState, group_by_pod
from agent.runtime import ContainerInfo, ContainerNotFound, Runtime


class RuntimeStates:
    """What the runtime holds for each pod, as its syncs need to know it."""

    def __init__(self, runtime: Runtime, lister: ContainerLister) -> None:
        self.runtime = runtime
        self.lister = lister
        self._since = lister.mark()
        self._seen: set[str] = set()

    async def current(self, uid: str) -> PodRuntimeState:
        """From a list that started after this call."""
        return await self.lister.pod(uid)

    async def first(self, uid: str) -> PodRuntimeState:
        """As a sync begins: for a pod never seen here, from the last list begun since."""
        if uid not in self._seen:
            self._seen.add(uid)
            if (infos := self.lister.latest(self._since)) is not None:
                return _pod(infos, uid)
        return await self.current(uid)

    async def after(self, state: PodRuntimeState, actions: PodActions,
                    made: list[str]) -> PodRuntimeState:
        """After carrying out `actions` on `state`, which made the containers `made`."""
        if actions.remove or actions.kill or actions.kill_all or (
                actions.create_sandbox and state.sandboxes):
            return await self.current(state.uid)
        try:
            infos = await asyncio.gather(*(self.runtime.inspect(cid) for cid in made))
        except ContainerNotFound:
            return await self.current(state.uid)
        return _pod([*state.all(), *infos], state.uid)

    def forget(self, uid: str) -> None:
        """The pod's containers are gone: it need not be remembered."""
        self._seen.discard(uid)


def _pod(infos: Iterable[ContainerInfo], uid: str) -> PodRuntimeState:
    return group_by_pod(infos).get(uid, PodRuntimeState(uid))
