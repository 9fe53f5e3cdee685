"""Pod networking on one node: the pod bridge network (and, later, service proxy and DNS).

Owned by the node; talks to Docker only through the agent's `Runtime` protocol
(`agent.runtime`) and marks what it creates with the agent's instance label
(`agent.labels`). The agent does not import it: the process wiring
(`minik.server`) hands the agent its pod network.
"""
