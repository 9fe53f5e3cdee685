"""What runs beside the API server in its process: scheduler, controllers, node agent.

(And one child process: once the agent has the pod network, the node
network process, `minik.server.node_network`, with the Service proxy and the
cluster DNS.)

Each is a client of the API like any other (through `AsyncClient`, with the
instance's token and CA), on one clock, and runs under a supervisor of its
own: `start` starts them in that order, `stop` stops their tasks in the
reverse order and then removes the node's containers. They start once the
API serves, and this module is imported then, so the API does not wait for
the Docker SDK or the controllers to load.

The node agent's runtime, metrics and `Agent` itself are made once, here:
the supervised agent task may crash and run again, and must neither
register its metrics twice nor leak a Docker client per attempt. `stop`
removes the instance's containers through them even when the agent task
never got to run, and a purge removes the agent's state only through it
(never a recursive delete that could cross a mount into the host's files).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Awaitable, Callable

from agent.agent import Agent, AgentConfig, default_state_dir
from agent.docker_runtime import DockerRuntime
from agent.kubelet_server import serving_context
from agent.metrics import AgentMetrics
from agent.probes import ProbeMetrics
from agent.runtime import NetworkInfo, Runtime
from cni.network import ensure_pod_network, remove_pod_network
from minik.api.meta import node_condition, parse_time
from minik.api.objects import Node
from minik.api.resources import NODES
from minik.apiserver.metrics import ApiMetrics
from minik.client.aio import AsyncClient, WatchExpired
from minik.controllers.manager import ControllerManager
from minik.kubeconfig import ClusterAccess
from minik.machinery.clock import LoopClock
from minik.machinery.events import EventRecorder
from minik.machinery.metrics import ControllerMetrics
from minik.machinery.supervisor import Supervisor
from minik.scheduler.scheduler import Scheduler
from minik.server.config import ServerConfig
from minik.server.node_network import NodeNetworkProcess

log = logging.getLogger(__name__)


def ready_since(node: Node, since: dt.datetime) -> bool:
    """The node is Ready, by a heartbeat at `since` or later (times have whole seconds)."""
    ready = node_condition(node, "Ready")
    if ready is None or ready.get("status") != "True":
        return False
    beat = parse_time(ready.get("lastHeartbeatTime"))
    return beat is not None and beat >= since


class Components:
    """The scheduler, the controllers and the node agent: clients of the API like any other."""

    def __init__(self, config: ServerConfig, url: str, token: str, metrics: ApiMetrics, *,
                 on_pod_network: Callable[[str], Awaitable[None]] | None = None) -> None:
        self.config = config
        self.on_pod_network = on_pod_network
        access = ClusterAccess(server=url, ca_pem=config.home.ca_cert.read_bytes(), token=token)
        self.client = AsyncClient(access, user_agent="minik-components")
        self.metrics = metrics
        self.token = token
        self.agent: Agent | None = None
        self.pod_network: NetworkInfo | None = None
        self.node_network: NodeNetworkProcess | None = None
        self.clock = LoopClock()
        self.started = self.clock.wall().replace(microsecond=0)
        self._running: list[Supervisor] = []

    def start(self) -> None:
        """Start the scheduler, the controllers and the agent, in that order."""
        controller_metrics = ControllerMetrics(self.metrics.registry)
        if self.config.enabled("scheduler"):
            events = EventRecorder(self.client, "default-scheduler", clock=self.clock)
            scheduler = Scheduler(self.client, events=events, metrics=controller_metrics,
                                  clock=self.clock)
            supervisor = self._supervisor()
            supervisor.start("scheduler-events", events.run)
            supervisor.start("scheduler", scheduler.run)
        ControllerManager(self.client, metrics=controller_metrics,
                          disabled=self.config.disabled_controllers,
                          clock=self.clock,
                          restart_backoff=self.config.restart_backoff).start(self._supervisor())
        if self.config.enabled("agent"):
            self.agent = self._build_agent()
            self._supervisor().start("agent", self._run_agent)

    def _supervisor(self) -> Supervisor:
        supervisor = Supervisor(clock=self.clock)
        self._running.append(supervisor)
        return supervisor

    def _build_agent(self) -> Agent:
        home = self.config.home
        registry = self.metrics.registry
        metrics = AgentMetrics(registry)
        runtime = DockerRuntime(observer=metrics.observe_runtime)
        return Agent(
            AgentConfig(
                instance=self.config.name, state_dir=default_state_dir(home.agent_dir),
                node_name=self.config.node or "",
                restart_backoff=self.config.restart_backoff, token=self.token,
                stats_interval=self.config.metric_resolution,
                kubelet_ssl=serving_context(home.server_cert, home.server_key),
            ),
            client=self.client, runtime=runtime,
            network=functools.partial(self._pod_network, runtime),
            metrics=metrics,
            probe_metrics=ProbeMetrics(registry), clock=self.clock,
        )

    async def _pod_network(self, runtime: Runtime) -> NetworkInfo:
        """Make sure the pod network exists; its gateway, the node's address for pods, is
        passed on (the API server listens there too), and the node network process (Service
        proxy, cluster DNS on the gateway) runs on it."""
        network = await ensure_pod_network(runtime, self.config.name, self.config.pod_subnet)
        self.pod_network = network
        if network.gateway and self.on_pod_network is not None:
            await self.on_pod_network(network.gateway)
        if self.node_network is None:
            self.node_network = NodeNetworkProcess(self.config, node_ip=network.gateway)
            self._supervisor().start("node-network", self.node_network.run)
        return network

    @property
    def dns_address(self) -> str | None:
        """Where the cluster DNS listens: the pod network's gateway (once it is known)."""
        return self.pod_network.gateway if self.pod_network is not None else None

    async def wait_node_ready(self) -> None:
        """Until this process's node reports Ready by a heartbeat of this run (a Node
        kept from an earlier run may still say Ready): list, then watch that one Node."""
        selector = f"metadata.name={self.config.node}"
        while True:
            listed = await self.client.list(NODES, field_selector=selector)
            if any(ready_since(node, self.started) for node in listed["items"]):
                return
            try:
                async for kind, node in self.client.watch(
                        NODES, resource_version=listed["metadata"]["resourceVersion"],
                        field_selector=selector, timeout_seconds=60):
                    if kind != "BOOKMARK" and ready_since(node, self.started):
                        return
            except WatchExpired:
                continue

    async def _run_agent(self) -> None:
        agent = self.agent
        assert agent is not None
        try:
            await agent.run()
        finally:
            await agent.shutdown(remove_containers=False)

    async def stop_tasks(self) -> None:
        """Stop every component's tasks, the last started first."""
        for supervisor in reversed(self._running):
            await supervisor.stop()

    async def stop(self, *, purge: bool) -> bool:
        """A clean stop: the components' tasks, then the node's containers (their pods
        stay in the store).

        With `purge`, the pod network and the agent's state directory go
        too; False when that directory had to be kept (logged), so that
        the caller keeps the store as well.
        """
        await self.stop_tasks()
        if self.node_network is not None:
            await self.node_network.remove_addresses()
        try:
            if self.agent is not None:
                return await self._stop_agent(self.agent, purge=purge)
            return True
        finally:
            await self.client.close()

    async def _stop_agent(self, agent: Agent, *, purge: bool) -> bool:
        try:
            try:
                await agent.shutdown(remove_containers=True)
                if purge:
                    await remove_pod_network(agent.runtime, self.config.name)
            except Exception:
                log.exception("removing the node's containers failed")
            return await agent.purge() if purge else True
        finally:
            await agent.runtime.close()
