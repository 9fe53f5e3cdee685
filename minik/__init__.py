"""minik: a small Kubernetes that runs real Docker containers on one host.

`minik.api` holds types, validation and errors and imports nothing else of
ours; `minik.store` is the revisioned key-value store; `minik.apiserver`
serves the Kubernetes REST API; `minik.client` and `minik.cli` talk to it.
"""

__version__ = "0.1.0"
KUBERNETES_VERSION = "v1.33.0"
