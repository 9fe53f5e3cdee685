"""The resource metrics API (`metrics.k8s.io/v1beta1`), served by minik as metrics-server serves it.

metrics-server's pipeline, in the API server's process: `scraper` reads
each Node's `/metrics/resource` from its kubelet endpoint (the agent, over
HTTPS through the kubelet client, as `nodes/proxy` does) every metric
resolution; `samples` decodes that text; `store` keeps the last two samples
of every node and container and turns them into CPU rates and working
sets; `objects` writes `NodeMetrics` and `PodMetrics` as metrics-server
does; `api` serves them read-only (get and list, label and field
selectors; watch refused) at `/apis/metrics.k8s.io/v1beta1`. Nothing here
reads the agent's memory.
"""
