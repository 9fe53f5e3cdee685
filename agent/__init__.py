"""The node agent (the kubelet): the pods bound to this node, as Docker containers.

`agent.agent` runs it (informers, pod workers, relist, node status, kubelet
API). A pod worker's sync (`agent.sync`) plans (`agent.plan`), carries the
plan out (`agent.execute`), reports the status (`agent.status`,
`agent.status_writer`) and tears deleted pods down (`agent.termination`).
The container engine is behind the `agent.runtime.Runtime` protocol: on
Docker it is `agent.docker_runtime`, calling the engine through
`agent.docker_client` (SDK clients, thread pools, the error boundary),
with its translations in `agent.docker_convert` and its exec sessions in
`agent.docker_exec`; only the first three import the Docker SDK. The agent reaches the control plane
through `minik.client`, `minik.api` and `minik.machinery` alone.
"""
