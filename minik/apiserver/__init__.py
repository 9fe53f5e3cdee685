"""minik.apiserver: the HTTPS API over the store, as kube-apiserver serves it.

It owns routing, authentication, content negotiation, the REST verbs and
subresources, watch and its caches, discovery, OpenAPI, metrics, and the
proxy to kubelets. It serves HTTP and knows nothing of the scheduler, the
controllers or the node agent: `minik.server` starts those beside it (an
import contract in pyproject.toml keeps it so).
"""
