"""minik.api: what the Kubernetes API is, independent of who serves or calls it.

It owns the resource registry, object models and validation, defaulting,
names, selectors, patches, server-side tables and printers, protobuf
decoding, revisions, and the API's errors (`metav1.Status`). It imports
nothing else of minik (an import contract in pyproject.toml says so), so
that the server, the clients, the controllers and the node agent can all
stand on it.
"""
