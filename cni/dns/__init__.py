"""Cluster DNS: the node's DNS server for pods, fed by Service and EndpointSlice watches.

`server.ClusterDns` serves the cluster zone (`records.Zone`: Services,
headless endpoints, SRV, PTR, ExternalName CNAMEs, as the Kubernetes DNS
specification and CoreDNS's `kubernetes` plugin answer) on the pod
network's gateway, UDP and TCP port 53, and forwards every other name to
the upstreams (`upstream`). The node network process (`python -m cni`)
runs it beside the service proxy; `metrics` counts its questions.
"""
