"""Clients of the minik API: the same Kubernetes REST paths kubectl uses.

`RestClient` is synchronous (the CLI); components that run inside an event
loop get an async client alongside it.
"""

from minik.client.paths import collection_path, object_path
from minik.client.rest import RestClient

__all__ = ["RestClient", "collection_path", "object_path"]
