"""Pod networking on one node: the pod bridge network (and, later, service proxy and DNS).

Owned by the node; talks to Docker only through the agent's `Runtime`.
"""
