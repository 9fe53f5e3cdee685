"""A namespace's pod events, in the order a watch delivers them, for tests of ordering."""

from __future__ import annotations

import http.client
import threading
from typing import Any

from tests.e2e.cluster import Cluster


class PodLog:
    """Every pod event of a namespace (`events`, with the pods listed at the start as ADDED),
    and the names ADDED and DELETED."""

    def __init__(self, cluster: Cluster, ns: str) -> None:
        self.cluster, self.ns = cluster, ns
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.added: list[str] = []
        self.deleted: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _record(self, kind: str, pod: dict[str, Any]) -> None:
        self.events.append((kind, pod))
        if kind == "ADDED":
            self.added.append(pod["metadata"]["name"])
        elif kind == "DELETED":
            self.deleted.append(pod["metadata"]["name"])

    def _run(self) -> None:
        from minik.client.rest import RestClient
        from minik.kubeconfig import load_kubeconfig

        client = RestClient(load_kubeconfig(self.cluster.kubeconfig), timeout=600)
        path = f"/api/v1/namespaces/{self.ns}/pods"
        listed = client.request("GET", path)
        for pod in listed["items"]:
            self._record("ADDED", pod)
        params = {"watch": "true", "resourceVersion": listed["metadata"]["resourceVersion"]}
        try:
            for event in client.watch(path, params=params):
                self._record(event["type"], event["object"])
        except (OSError, http.client.HTTPException):
            return  # the server went away at the end of the module
