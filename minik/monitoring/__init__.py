"""What minik serves for Prometheus: kube-state-metrics' series and scrape-target discovery.

kube-state-metrics is, on Kubernetes, a client of the API that keeps
informer caches and renders `kube_*` series from them at each scrape; here
it is the same, on the server process's shared informers (`kube_state`,
read through `informer_source`), so a scrape costs one pass over cached
objects and no store read. Prometheus'
HTTP service discovery (`targets`) is answered from the same caches, so the
target lists follow watches. Both are served on the API server's own port,
behind its token (`endpoints`); `minik prometheus-config` writes the
Prometheus configuration that reads them.
"""
