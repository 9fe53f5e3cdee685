"""The userspace Service proxy: ClusterIP, NodePort and LoadBalancer, with no iptables rule.

Driven by informers on Services and EndpointSlices (`proxier`), it owns
the ClusterIPs as addresses on `lo` (`addresses`), gives LoadBalancer
Services addresses of their own (`loadbalancer`), listens on every
frontend and forwards TCP connections (`tcp`) and UDP flows (`udp`) to
ready endpoints chosen by `balancer`, from a plan computed without a
socket (`model`), and counts what it does (`metrics`). It runs in the node
network process (`python -m cni`), never in the API server's.
"""
